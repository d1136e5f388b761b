"""How a store error, or a value the store cannot keep, leaves an activity:
a short `ApplicationError` of type `StoreRefused` (non-retryable), `StoreError`
(retried) or `InvalidInput` (non-retryable)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from temporalio.exceptions import ApplicationError

from domain import schema

# A failure travels in workflow history and must stay under Temporal's failure
# size limit; it names the problem, never the statement's values.
MAX_FAILURE_MESSAGE = 300

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
