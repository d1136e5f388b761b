"""PaymentJourney on the time-skipping server: the reminder and escalation days
for a contract signed at a known local time, acceptance-relative dates,
allocation, idempotent references, rounding, completion and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.payments import (
    Accept,
    ContractInput,
    ContractStage,
    MilestoneRule,
    MilestoneState,
    RecordPayment,
)
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = timedelta(days=1)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def signed(h: Harness, env: WorkflowEnvironment, contract_id: str, *,
                 amount: str = "10000.00", **overrides: Any) -> tuple[WorkflowHandle, datetime]:
    now = await env.get_current_time()
    values: dict[str, Any] = {"contract_id": contract_id, "customer_id": "cust-1",
                              "owner_id": "rep-a", "amount": amount, "currency": "CNY",
                              "signed_at": now}
    values.update(overrides)
    handle = await h.journeys.sign_contract(ContractInput.model_validate(values))
    await contract_when(h, contract_id, lambda s: len(s.milestones) > 0)
    return handle, now


async def contract_when(h: Harness, contract_id: str, predicate: Any) -> Any:
    latest = None
    for _ in range(400):
        latest = await h.journeys.contract_status(contract_id)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{contract_id}: condition never held; last {latest}")


def at_ten(day: date) -> datetime:
    return datetime.combine(day, time(10), tzinfo=SHANGHAI).astimezone(UTC)


def close_to(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(seconds=2)


async def test_reminders_and_escalations_fall_on_the_customers_days(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    _, signed_at = await signed(harness, env, "C1")
    d0 = signed_at.astimezone(SHANGHAI).date()
    due = d0 + timedelta(days=7)
    status = await harness.journeys.contract_status("C1")
    deposit, balance = status.milestones
    assert (deposit.due_date, deposit.amount, balance.amount) == (
        due, Decimal("3000.00"), Decimal("7000.00"))
    assert deposit.overdue_at == datetime.combine(due + DAY, time(0), SHANGHAI).astimezone(UTC)
    assert balance.state is MilestoneState.awaiting_acceptance and balance.due_date is None

    end = at_ten(due + timedelta(days=21)) + timedelta(minutes=1)
    await env.sleep(end - signed_at)
    await contract_when(harness, "C1", lambda s: s.next_action and s.next_action.level == 4)

    reminders = harness.touches(step="payment_reminder")
    expected = [at_ten(due - timedelta(days=n)) for n in (7, 1, 0)]
    expected = [t for t in expected if t > signed_at]  # today's 10:00 may have passed
    assert len(reminders) == len(expected)
    assert all(close_to(r.created_at, t) for r, t in zip(reminders, expected, strict=True))
    assert all(r.recipient_id == "cust-1" for r in reminders)
    notices = harness.touches(step="payment_due_notice")
    assert [n.recipient_id for n in notices] == ["rep-a"] * len(expected)
    [overdue] = harness.touches(step="payment_overdue")
    assert close_to(overdue.created_at, at_ten(due + DAY))
    escalations = harness.rows(schema.Escalation, entity_id="C1", to_staff_id="mgr-east")
    assert [e.level for e in escalations] == [1, 2, 3]  # weekly while unpaid
    for escalation, days in zip(escalations, (7, 14, 21), strict=True):
        assert close_to(escalation.at, at_ten(due + timedelta(days=days)))
    assert len(harness.rows(schema.Escalation, entity_id="C1", to_staff_id="fin-1")) == 3
    await eventually(lambda: len(harness.touches(step="payment_escalated")) == 6)
    status = await harness.journeys.contract_status("C1")
    assert status.stage is ContractStage.overdue
    assert status.milestones[0].state is MilestoneState.overdue
    # nothing for the balance, which waits for acceptance
    assert {t.key.split(":")[1] for t in harness.touches()} <= {
        "payment_reminder", "payment_due_notice", "payment_overdue", "payment_escalated"}


async def test_acceptance_dates_the_balance_30_days_on(harness: Harness,
                                                       env: WorkflowEnvironment) -> None:
    handle, signed_at = await signed(harness, env, "C2")
    await env.sleep(3 * DAY)
    accepted_at = await env.get_current_time()
    await handle.signal("accept", Accept(accepted_at=accepted_at))
    status = await contract_when(harness, "C2", lambda s: s.accepted_at is not None)
    balance = status.milestones[1]
    assert balance.due_date == accepted_at.astimezone(SHANGHAI).date() + timedelta(days=30)
    assert balance.state is MilestoneState.scheduled
    await handle.signal("accept", Accept())
    status = await contract_when(harness, "C2", lambda s: len(s.rejections) == 1)
    assert "already accepted" in status.rejections[0].reason


async def test_payments_allocate_in_order_with_credit_and_complete(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle, _ = await signed(harness, env, "C3")
    await handle.signal("accept", Accept())
    pay = harness.journeys.record_payment
    assert (await pay("C3", RecordPayment(amount=Decimal("1000"), reference="P1"))).accepted
    status = await harness.journeys.contract_status("C3")
    assert [m.paid for m in status.milestones] == [Decimal("1000.00"), Decimal("0.00")]
    assert status.stage is ContractStage.partially_paid
    # one payment settles the rest of the deposit and part of the balance
    assert (await pay("C3", RecordPayment(amount=Decimal("5000"), reference="P2"))).accepted
    status = await harness.journeys.contract_status("C3")
    assert [m.paid for m in status.milestones] == [Decimal("3000.00"), Decimal("3000.00")]
    assert status.milestones[0].state is MilestoneState.paid
    # the same reference again is ignored
    again = await pay("C3", RecordPayment(amount=Decimal("5000"), reference="P2"))
    assert again.accepted and again.reason == "already recorded"
    # overpayment is kept as credit and completes the contract
    assert (await pay("C3", RecordPayment(amount=Decimal("4500.50"), reference="P3"))).accepted
    result = await handle.result()
    assert result.stage is ContractStage.paid and result.credit == Decimal("500.50")
    assert result.ignored_duplicates == 1 and result.references == ["P1", "P2", "P3"]
    [contract] = harness.rows(schema.Contract, id="C3")
    assert (contract.finance_status, contract.paid_minor, contract.credit_minor) == (
        "paid", 1000000, 50050)
    [value] = harness.rows(schema.CustomerValue, customer_id="cust-1")
    assert value.lifetime_value_minor == 1050050
    [sales] = harness.rows(schema.SalesFigure, staff_id="rep-a")
    assert sales.collected_minor == 1050050
    assert len(harness.rows(schema.Payment, contract_id="C3")) == 3
    await eventually(lambda: len(harness.touches(step="payment_receipt", status="sent")) == 3)


async def test_wrong_currency_and_non_positive_amounts_are_rejected(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle, _ = await signed(harness, env, "C4")
    await handle.signal("record_payment", RecordPayment(amount=Decimal("100"), reference="X1",
                                                        currency="USD"))
    await handle.signal("record_payment", RecordPayment(amount=Decimal("0"), reference="X2"))
    await handle.signal("record_payment", RecordPayment(amount=Decimal("-5"), reference="X3"))
    await handle.signal("record_payment", RecordPayment(amount=Decimal("1.001"), reference="X4"))
    await handle.signal("record_payment", {"amount": "lots", "reference": "X5"})
    status = await contract_when(harness, "C4", lambda s: len(s.rejections) == 5)
    reasons = [r.reason for r in status.rejections]
    assert "currency USD does not match the contract's CNY" in reasons[0]
    assert "must be positive" in reasons[1] and "must be positive" in reasons[2]
    assert "more than 2 decimal places" in reasons[3]
    assert reasons[4].startswith("malformed: amount")
    assert not harness.rows(schema.Payment, contract_id="C4")
    assert all(m.paid == 0 for m in status.milestones)


async def test_rounding_is_exact_and_the_last_milestone_takes_the_remainder(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await signed(harness, env, "C5", amount="999.99")
    status = await harness.journeys.contract_status("C5")
    assert [m.amount for m in status.milestones] == [Decimal("300.00"), Decimal("699.99")]
    await signed(harness, env, "C6", amount="100", milestones=[
        MilestoneRule(percent=Decimal("33.33"), due_days=1),
        MilestoneRule(percent=Decimal("33.33"), due_days=2),
        MilestoneRule(percent=Decimal("33.34"), due_days=3)])
    status = await harness.journeys.contract_status("C6")
    assert [m.amount for m in status.milestones] == [
        Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]


async def test_cancel_stops_the_journey(harness: Harness, env: WorkflowEnvironment) -> None:
    handle, _ = await signed(harness, env, "C7")
    await harness.journeys.cancel_contract("C7", "")
    await harness.journeys.cancel_contract("C7", "customer withdrew")
    result = await handle.result()
    assert result.stage is ContractStage.cancelled
    assert [r.reason for r in result.rejections] == ["a reason is required to cancel a contract"]
    assert all(m.state is MilestoneState.cancelled for m in result.milestones)
    [contract] = harness.rows(schema.Contract, id="C7")
    assert contract.finance_status == "cancelled" and contract.close_reason == "customer withdrew"


async def test_a_plan_that_does_not_add_up_fails_the_contract_at_once(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    now = await env.get_current_time()
    handle = await harness.journeys.sign_contract(ContractInput(
        contract_id="C8", customer_id="cust-1", owner_id="rep-a", amount=Decimal("100"),
        signed_at=now, milestones=[MilestoneRule(percent=Decimal(60), due_days=1),
                                   MilestoneRule(percent=Decimal(30), due_days=2)]))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "percentages add up to 90, not 100" in str(failure.value.cause)
    assert not harness.rows(schema.Contract, id="C8")
