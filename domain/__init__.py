"""Pure CRM rules and the typed models that cross every Temporal boundary.

Nothing here performs I/O or reads a clock: `now` is always passed in, so the
same rule runs in a workflow, an activity and a unit test.
"""
