"""Alembic environment: the URL comes from the caller (`activities.store.migrate`)
or from CRM_DATABASE_URL when run as `alembic -c alembic.ini upgrade head`."""

from __future__ import annotations

from alembic import context

from activities.store import make_engine
from domain.schema import Base

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from domain.settings import Settings

        url = Settings().database_url
    return url


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
