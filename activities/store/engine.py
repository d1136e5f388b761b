"""The CRM store's engine set-up, its one unit-of-work helper and its migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.store.errors import store_failure

SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for PostgreSQL (psycopg 3) or SQLite (WAL, busy timeout, FKs on)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                               **_engine_options(kwargs))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Readers never wait for the writer in WAL; the busy timeout makes a
            # second writer queue instead of failing with "database is locked".
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "savepoint")
        def _sqlite_begin_before_savepoint(connection: Any, _name: str | None) -> None:
            # pysqlite begins a transaction only before a write, so a SAVEPOINT
            # taken after reads alone became the outermost transaction and its
            # RELEASE committed: a unit of work that failed later kept those rows.
            dbapi_connection = connection.connection.driver_connection
            if not dbapi_connection.in_transaction:
                dbapi_connection.execute("BEGIN IMMEDIATE")

        return engine
    return create_engine(parsed, pool_pre_ping=True, **_engine_options(kwargs))


def _engine_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    # An error's text then shows the statement without its values (customer data).
    return {"hide_parameters": True, **kwargs}


class Store:
    """Holds the engine; `unit_of_work()` is the only way activities reach the store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session that commits if the block completes and rolls back otherwise.

        Inside an activity a store error leaves as a short `ApplicationError`:
        `StoreRefused`, non-retryable, for a statement that can never succeed (a
        value too long or too large for its column, a NUL character, a check or
        not-null violation); `StoreError`, retried, for the rest (the store
        down or restarting, a serialization failure, a deadlock, a conflicting
        concurrent write). Elsewhere (the CLI, scripts) the SQLAlchemy error
        itself, which those callers catch.
        """
        try:
            with self._sessions() as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except Exception as exc:
            failure = store_failure(exc) if activity.in_activity() else None
            if failure is not None:
                # Without its cause: the SQLAlchemy error carries the statement.
                raise failure from None
            raise

    @staticmethod
    def serialise(session: Session, *keys: str) -> None:
        """Makes concurrent units of work that name the same keys run one after
        the other from here on (a check-then-insert, such as de-duplication).

        PostgreSQL: transaction-scoped advisory locks on the keys, taken in a
        fixed order so two callers cannot deadlock. SQLite has one writer: the
        write lock is taken now (BEGIN IMMEDIATE) instead of at the first write.
        """
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            for key in sorted(set(keys)):
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                {"k": key})
        elif dialect == "sqlite":
            driver = session.connection().connection.driver_connection
            if driver is not None and not driver.in_transaction:
                driver.execute("BEGIN IMMEDIATE")

    def dispose(self) -> None:
        self.engine.dispose()


def migrate(url: str, revision: str = "head") -> None:
    """Bring the store's schema to `revision` with the Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)
