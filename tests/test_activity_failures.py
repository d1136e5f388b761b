"""How failures leave an activity, without a database: what retrying can fix
stays retryable, a driver's message is cut short and never tells a password,
anything else an activity raises leaves with a short message.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.failures import MAX_MESSAGE, ShortFailures
from activities.store import MAX_FAILURE_MESSAGE, Store, store_failure
from domain import limits
from tests.refusals import refusal


def test_a_store_that_cannot_be_reached_is_retried_and_its_password_is_not_told() -> None:
    down = Store.from_url("postgresql://crm:s3cret-pw@127.0.0.1:1/crm?connect_timeout=2")

    @activity.defn(name="read")
    def read() -> None:
        with down.unit_of_work() as session:
            session.execute(text("SELECT 1"))

    error = refusal(read)
    down.dispose()
    assert error.type == "StoreError" and not error.non_retryable
    assert "s3cret" not in error.message and len(error.message) <= MAX_FAILURE_MESSAGE


@pytest.mark.parametrize("orig", [
    psycopg.errors.SerializationFailure("could not serialize access"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.OperationalError("server closed the connection unexpectedly"),
])
def test_transient_store_errors_stay_retryable(orig: Exception) -> None:
    error = store_failure(OperationalError("UPDATE leads SET stage=%(stage)s",
                                           {"stage": "secret"}, orig))
    assert error is not None and error.type == "StoreError" and not error.non_retryable
    assert "secret" not in error.message


def test_a_long_driver_message_is_cut_to_the_failure_limit() -> None:
    error = store_failure(OperationalError("SELECT 1", {}, psycopg.OperationalError(
        "connection failed: " + "x" * 100_000)))
    assert error is not None and len(error.message) <= MAX_FAILURE_MESSAGE
    assert error.message.endswith("(truncated)")


def test_an_error_from_outside_the_store_leaves_as_raised() -> None:
    assert store_failure(KeyError("x")) is None
    assert store_failure(ApplicationError("unknown lead", type="UnknownLead")) is None


def test_money_one_minor_unit_over_the_limit_is_refused() -> None:
    over = Decimal(limits.MAX_MINOR + 1).scaleb(-2)
    assert limits.amount_problem(over, "CNY") is not None
    assert limits.amount_problem(over - Decimal("0.01"), "CNY") is None


class _Raises(ActivityInboundInterceptor):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        raise self.error


async def leaves(error: BaseException) -> BaseException:
    inbound = ShortFailures().intercept_activity(_Raises(error))
    with pytest.raises(BaseException) as left:
        await inbound.execute_activity(None)  # type: ignore[arg-type]
    return left.value


async def test_a_long_application_error_leaves_short_with_its_type_and_retry_choice() -> None:
    left = await leaves(ApplicationError("unknown staff " + "x" * 50_000, type="UnknownStaff",
                                         non_retryable=True))
    assert isinstance(left, ApplicationError)
    assert (left.type, left.non_retryable) == ("UnknownStaff", True)
    assert len(left.message) <= MAX_MESSAGE and left.message.startswith("unknown staff x")


async def test_any_other_long_error_leaves_as_a_short_retryable_failure_without_its_cause(
        ) -> None:
    try:
        try:
            raise ValueError("row " + "customer data " * 10_000)
        except ValueError as cause:
            raise RuntimeError("render failed") from cause
    except RuntimeError as error:
        left = await leaves(error)
    assert isinstance(left, ApplicationError)
    assert left.type == "RuntimeError" and not left.non_retryable
    assert left.message == "render failed" and left.__cause__ is None


async def test_a_short_error_leaves_untouched() -> None:
    error = ApplicationError("unknown lead 'L9'", type="UnknownLead", non_retryable=True)
    assert await leaves(error) is error
    error2 = KeyError("first_touch_due")
    assert await leaves(error2) is error2
