"""PaymentJourney on the time-skipping server: the reminder and escalation days
for a contract signed at a known local time, acceptance-relative dates,
allocation, idempotent references, rounding, completion and cancellation, and
the handover of a contract whose owner is deactivated."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.payments import PaymentActivities
from activities.store import Store
from activities.store.staff import StaffMember, deactivate_staff
from domain import schema
from domain.payments import (
    Accept,
    ContractInput,
    ContractStage,
    MilestoneRule,
    MilestoneState,
    OwnerCandidate,
    PaymentPolicy,
    PaymentRequest,
    RecordPayment,
    choose_contract_owner,
)
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff
from workflows.common import CRM_OWNER_ID

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


# -- a deactivated owner hands the contract on ------------------------------------------


def open_contract(h: Harness, contract_id: str, owner_id: str, *,
                  finance_status: str = "unpaid") -> None:
    """A contract some other rep already carries (only its load matters here)."""
    with h.store.unit_of_work() as session:
        session.add(schema.Contract(
            id=contract_id, customer_id="cust-2", owner_id=owner_id, currency="CNY",
            amount_minor=100000, paid_minor=0, credit_minor=0, finance_status=finance_status,
            signed_at=datetime(2026, 1, 1, tzinfo=UTC), timezone="Asia/Shanghai"))


def owner_events(h: Harness, contract_id: str) -> list[schema.JourneyEvent]:
    return [e for e in h.rows(schema.JourneyEvent, entity_id=contract_id, journey="payment")
            if e.step in ("owner_changed", "owner_unassigned")]


def test_the_successor_is_the_least_loaded_active_rep_on_the_same_patch() -> None:
    east = frozenset({"east"}), frozenset({"erp"})
    reps = [OwnerCandidate("rep-b", *east, open_contracts=2),
            OwnerCandidate("rep-c", *east, open_contracts=1),
            OwnerCandidate("rep-d", *east, open_contracts=1),
            OwnerCandidate("rep-e", *east, open_contracts=0, active=False),
            OwnerCandidate("rep-west", frozenset({"west"}), frozenset({"erp"}), 0)]
    choose = choose_contract_owner
    assert choose(reps, regions=["east"], product_lines=["erp"], exclude=["rep-a"]) == "rep-c"
    assert choose(reps, regions=["east"], product_lines=["erp"], exclude=["rep-c"]) == "rep-d"
    assert choose(reps, regions=["north"], product_lines=["erp"]) == "rep-west"
    assert choose(reps[:2], regions=["north"], product_lines=["erp"]) == "rep-c"
    assert choose([reps[3]], regions=[], product_lines=[]) is None


async def test_a_deactivated_owner_hands_the_contract_to_the_least_loaded_rep(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    seed_staff(h.store, [
        StaffMember(id="mgr-north", name="Manager North", role="manager", chat="mgr-north"),
        StaffMember(id="rep-d", name="Rep D", role="rep", regions=["east"],
                    product_lines=["erp"], manager_id="mgr-north", chat="rep-d")])
    open_contract(h, "X-b", "rep-b")
    open_contract(h, "X-c", "rep-c")
    open_contract(h, "X-d", "rep-d", finance_status="paid")  # paid: no load
    handle, signed_at = await signed(h, env, "C20")
    pay = h.journeys.record_payment
    assert (await pay("C20", RecordPayment(amount=Decimal("500"), reference="P1"))).accepted

    ids = deactivate_staff(h.store, "rep-a", now=await env.get_current_time())
    assert ids == ["contract-C20"]
    await h.journeys.tell_staff_deactivated(ids, "rep-a")
    status = await contract_when(h, "C20", lambda s: s.owner_id != "rep-a")
    # rep-west carries nothing either, but rep-d shares rep-a's region and product line
    assert (status.owner_id, status.previous_owners, status.rejections) == ("rep-d", ["rep-a"],
                                                                           [])
    [contract] = h.rows(schema.Contract, id="C20")
    assert contract.owner_id == "rep-d"
    [event] = owner_events(h, "C20")
    assert (event.step, event.detail["owner_id"], event.detail["how"]) == (
        "owner_changed", "rep-d", "rep")
    described = await handle.describe()
    assert described.typed_search_attributes.get(CRM_OWNER_ID) == "rep-d"
    [notice] = await eventually(lambda: h.touches(step="payment_owner_changed", status="sent"))
    assert notice.recipient_id == "rep-d"
    [message] = [m for m in h.outbox_messages() if m["key"] == notice.key]
    assert message["title"] == "合同转交给您：C20" and "rep-a" in message["body"]

    # the deposit's reminders and its first escalation follow the new owner
    due = signed_at.astimezone(SHANGHAI).date() + timedelta(days=7)
    await env.sleep(at_ten(due + timedelta(days=7)) + timedelta(minutes=1) - signed_at)
    await contract_when(h, "C20", lambda s: s.next_action and s.next_action.level == 2)
    notices = h.touches(step="payment_due_notice")
    assert notices and {n.recipient_id for n in notices} == {"rep-d"}
    [escalation] = h.rows(schema.Escalation, entity_id="C20", level=1, to_staff_id="mgr-north")
    assert escalation.from_staff_id == "rep-d"
    assert not h.rows(schema.Escalation, entity_id="C20", to_staff_id="mgr-east")
    await eventually(lambda: {t.recipient_id for t in h.touches(step="payment_escalated")}
                     == {"mgr-north", "fin-1"})

    # collected money already credited stays with rep-a; later payments count for rep-d
    assert (await pay("C20", RecordPayment(amount=Decimal("1000"), reference="P2"))).accepted
    [old] = h.rows(schema.SalesFigure, staff_id="rep-a")
    [new] = h.rows(schema.SalesFigure, staff_id="rep-d")
    assert (old.collected_minor, new.collected_minor) == (50000, 100000)


async def test_a_broadcast_about_someone_else_changes_nothing(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    handle, _ = await signed(h, env, "C21")
    assert deactivate_staff(h.store, "rep-b", now=await env.get_current_time()) == []
    await h.journeys.tell_staff_deactivated(["contract-C21"], "rep-b")
    await handle.signal("staff_deactivated", {})
    await handle.signal("staff_deactivated", "rep-a")
    # the inbox is handled in order: once both malformed ones are rejected, so is rep-b's
    status = await contract_when(h, "C21", lambda s: len(s.rejections) == 2)
    assert [(r.signal, r.reason) for r in status.rejections] == [
        ("staff_deactivated", "staff_id is required"),
        ("staff_deactivated", "expected a JSON object, got str")]
    assert (status.owner_id, status.previous_owners) == ("rep-a", [])
    await eventually(lambda: len(h.rows(schema.SignalRejection, workflow_id="contract-C21")) == 2)
    assert h.rows(schema.Contract, id="C21")[0].owner_id == "rep-a"
    assert not owner_events(h, "C21")
    assert not h.touches(step="payment_owner_changed")


async def test_with_no_active_rep_left_the_owners_manager_takes_the_contract(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    _, signed_at = await signed(h, env, "C22")
    now = await env.get_current_time()
    for rep in ("rep-b", "rep-c", "rep-west"):
        assert deactivate_staff(h.store, rep, now=now) == []
    ids = deactivate_staff(h.store, "rep-a", now=now)
    await h.journeys.tell_staff_deactivated(ids, "rep-a")
    status = await contract_when(h, "C22", lambda s: s.owner_id != "rep-a")
    assert (status.owner_id, status.previous_owners) == ("mgr-east", ["rep-a"])
    assert h.rows(schema.Contract, id="C22")[0].owner_id == "mgr-east"
    [event] = owner_events(h, "C22")
    assert (event.detail["owner_id"], event.detail["how"]) == ("mgr-east", "manager")
    [notice] = await eventually(lambda: h.touches(step="payment_owner_changed", status="sent"))
    assert notice.recipient_id == "mgr-east"
    # the reminder a day before the deposit falls due goes to the manager
    due = signed_at.astimezone(SHANGHAI).date() + timedelta(days=7)
    await env.sleep(at_ten(due - DAY) + timedelta(minutes=1) - signed_at)
    await eventually(lambda: h.touches(step="payment_due_notice", recipient_id="mgr-east"))
    assert not h.touches(step="payment_due_notice", recipient_id="rep-a")


async def test_with_nobody_left_the_contract_stays_put_and_finance_is_told(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    await signed(h, env, "C23")
    now = await env.get_current_time()
    for staff_id in ("rep-b", "rep-c", "rep-west", "mgr-east"):
        deactivate_staff(h.store, staff_id, now=now)
    await h.journeys.tell_staff_deactivated(deactivate_staff(h.store, "rep-a", now=now), "rep-a")
    await eventually(lambda: owner_events(h, "C23"))
    [event] = owner_events(h, "C23")
    assert (event.step, event.detail["how"], event.detail["finance_ids"]) == (
        "owner_unassigned", "unassigned", ["fin-1"])
    [notice] = await eventually(lambda: h.touches(step="payment_owner_changed", status="sent"))
    assert notice.recipient_id == "fin-1"
    status = await h.journeys.contract_status("C23")
    assert (status.owner_id, status.previous_owners, status.rejections) == ("rep-a", [], [])


async def test_a_payment_the_store_holds_but_the_journey_missed_is_taken_in_when_sent_again(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    """A journey that once took its own retried payment for a duplicate is
    repaired by sending the payment again: the store says it is recorded, the
    journey takes the store's milestones, thanks the customer and completes."""
    handle, now = await signed(harness, env, "C40", amount="1000.00")
    await handle.signal("accept", Accept())
    await contract_when(harness, "C40", lambda s: s.accepted_at is not None)
    # the payment is in the store under a call the journey never heard back from
    recorded = PaymentActivities(store=harness.store, policy=PaymentPolicy(),
                                 default_timezone="Asia/Shanghai")
    lost_call = ActivityEnvironment()
    lost_call.info = dataclasses.replace(lost_call.info, activity_id="lost", workflow_run_id="r0")
    lost_call.run(recorded.record_payment, PaymentRequest(
        contract_id="C40", workflow_id="contract-C40", amount=Decimal("1000"), currency="CNY",
        paid_at=now, reference="BANK-1", now=now))
    status = await harness.journeys.contract_status("C40")
    assert status.stage is not ContractStage.paid

    answer = await harness.journeys.record_payment(
        "C40", RecordPayment(amount=Decimal("1000"), reference="BANK-1"))
    assert answer.accepted
    status = await contract_when(harness, "C40", lambda s: s.stage is ContractStage.paid)
    assert status.references == ["BANK-1"]
    assert all(m.state is MilestoneState.paid for m in status.milestones)
    await eventually(lambda: harness.touches(step="payment_receipt"))
    assert len(harness.rows(schema.Payment, contract_id="C40")) == 1


async def test_a_settled_milestone_shows_no_pending_action(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    """The next action a status shows belongs to a milestone still owed: a paid
    deposit's reminders disappear when it is paid, not when they fall due."""
    handle, _ = await signed(harness, env, "C41")
    before = await harness.journeys.contract_status("C41")
    assert before.next_action is not None and before.next_action.seq == 1
    assert (await harness.journeys.record_payment(
        "C41", RecordPayment(amount=Decimal("3000"), reference="D1"))).accepted
    await handle.signal("accept", Accept())
    after = await contract_when(harness, "C41", lambda s: s.accepted_at is not None)
    assert after.milestones[0].state is MilestoneState.paid
    assert after.next_action is not None and after.next_action.seq == 2
