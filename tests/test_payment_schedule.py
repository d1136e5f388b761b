"""The payment plan on the customer's calendar: reminders and escalations on
the customer's days, the balance dated from acceptance, exact rounding, a plan
that does not add up, and cancelling.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from domain import schema
from domain.payments import Accept, ContractInput, ContractStage, MilestoneRule, MilestoneState
from tests import payment_support
from tests.harness import Harness, eventually
from tests.payment_support import DAY, SHANGHAI, at_ten, contract_when, signed

# Fixtures shared with the other modules split from the same subject.
env = payment_support.env
harness = payment_support.harness


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
