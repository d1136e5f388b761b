"""CRM rules, policies and the typed models that cross every Temporal boundary;
also the store's schema and the settings.

Every module here is pure except `schema` and `settings`: no I/O and no clock
read (`now` is always passed in), so the same rule runs in a workflow, an
activity and a unit test. `journeys` holds the types every journey shares;
each journey has its own module beside it.

The two that are not pure are never imported by workflows:
- `schema` is the store's SQLAlchemy models, imported by activities,
  migrations and the starter;
- `settings` reads the environment, once, at a composition root (`worker.py`,
  the starter), which hands its policies down.
"""
