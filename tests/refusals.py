"""What the store-refusal tests share: hostile values, running an activity as a
worker runs it, the shape of a refusal, and a snapshot of every table to show
that a refusal wrote nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.store import Store
from domain import schema

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
NUL = "before\x00after"
FAR = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)


def run(fn: Callable[..., Any], *args: Any) -> Any:
    """The activity as a worker runs it."""
    return ActivityEnvironment().run(fn, *args)


def refusal(fn: Callable[..., Any], *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        run(fn, *args)
    return refused.value


def assert_invalid(error: ApplicationError, field: str, problem: str) -> None:
    assert error.type == "InvalidInput", error
    assert error.non_retryable is True
    assert f"invalid input: {field} " in error.message, error.message
    assert problem in error.message, error.message
    assert "\x00" not in error.message and len(error.message) <= 500


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refusal wrote nothing."""
    with store.unit_of_work() as session:
        return {name: sorted((tuple(map(repr, row)) for row in session.execute(
                    select(table))), key=repr)
                for name, table in schema.Base.metadata.tables.items()}
