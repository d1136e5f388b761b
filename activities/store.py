"""The CRM store: engine set-up, the one unit-of-work helper, and how a store
error or a value the store cannot keep leaves an activity."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Engine, Integer, String, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain import schema

SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# A failure travels in workflow history and must stay under Temporal's failure
# size limit; it names the problem, never the statement's values.
MAX_FAILURE_MESSAGE = 300


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


# -- errors that leave an activity -------------------------------------------------

# SQLSTATEs of writes that fail the same way every time: class 22 (data
# exceptions: value too long, numeric out of range, invalid text), not-null and
# check violations. Unique and foreign-key violations are left to retry: a
# concurrent writer or a row written meanwhile can make the next attempt pass.
_REFUSED_STATES = ("22", "23502", "23514")
_SQLITE_REFUSED = ("NOT NULL constraint failed", "CHECK constraint failed",
                   "string or blob too big")
_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


def truncated(message: str, limit: int = MAX_FAILURE_MESSAGE) -> str:
    """`message` cut to `limit` characters, saying so."""
    message = message.replace("\x00", "\\x00")
    cut = " ... (truncated)"
    return message if len(message) <= limit else message[: limit - len(cut)] + cut


def store_failure(exc: BaseException) -> ApplicationError | None:
    """The activity failure a store error becomes, or None for an error that
    did not come from the store (it leaves as raised)."""
    if isinstance(exc, ApplicationError):
        return None
    if isinstance(exc, OverflowError):
        # SQLite binding an integer wider than 64 bits; date arithmetic past year 9999.
        return _refused("", f"a number or date out of range ({_first_line(exc)})")
    if not isinstance(exc, StatementError):
        return None
    orig = exc.orig
    target = _target(exc)
    if not isinstance(exc, DBAPIError):
        # A value the statement could not even bind (a naive time, a wrong type).
        return _refused(target, f"{type(orig).__name__}: {_first_line(orig)}")
    state = getattr(orig, "sqlstate", None) or ""
    problem = _driver_message(orig)
    if (state.startswith(_REFUSED_STATES)
            or (isinstance(exc, DataError) and not state)
            or (isinstance(exc, IntegrityError)
                and any(problem.startswith(m) for m in _SQLITE_REFUSED))):
        return _refused(target, problem)
    return ApplicationError(
        truncated(f"store error on {target or 'a statement'}, to be retried: "
                  f"{type(orig).__name__}: {problem}"),
        type="StoreError",
    )


def refuse_invalid(problems: Mapping[str, str | None]) -> None:
    """Raises a non-retryable `InvalidInput` naming each field whose value the
    store cannot keep (`problems` maps a field to its problem, or to None).

    For values that reach an activity from a signal: signal models stay lenient
    (replay decodes old signals with new code), so their values are checked
    here, before the unit of work, and nothing is written."""
    found = [f"{field} {problem}" for field, problem in problems.items() if problem]
    if found:
        raise ApplicationError(truncated("invalid input: " + "; ".join(found), 500),
                               type="InvalidInput", non_retryable=True)


def _refused(target: str, problem: str) -> ApplicationError:
    return ApplicationError(truncated(f"the store refused {target or 'the statement'}: {problem}"),
                            type="StoreRefused", non_retryable=True)


def _driver_message(orig: BaseException | None) -> str:
    """The driver's message without its detail lines (PostgreSQL's DETAIL
    repeats the row, customer data and all)."""
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or _first_line(orig)


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__


def _target(exc: StatementError) -> str:
    """"table.column" for the column a value does not fit, as far as the
    statement and its parameters tell; the table, or "" otherwise."""
    match = _TABLE.match(exc.statement or "")
    if not match:
        return ""
    table = schema.Base.metadata.tables.get(match.group(1))
    if table is None:
        return match.group(1)
    rows = exc.params if isinstance(exc.params, list | tuple) else [exc.params]
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        for name, value in row.items():
            column = table.columns.get(name)
            if column is not None and _misfit(column.type, value):
                return f"{table.name}.{column.name}"
    return table.name


def _misfit(column_type: Any, value: Any) -> bool:
    if isinstance(value, str):
        length = getattr(column_type, "length", None)
        return "\x00" in value or (isinstance(column_type, String) and length is not None
                                     and len(value) > length)
    if isinstance(value, int) and not isinstance(value, bool):
        bits = 32 if isinstance(column_type, Integer) and not isinstance(
            column_type, BigInteger) else 64
        return not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    return False
