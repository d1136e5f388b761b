"""Payments taken in by the journey: allocated in order with credit, wrong
currencies and amounts rejected, a payment sent again after the journey missed
it, and settled milestones.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.payments import PaymentActivities
from domain import schema
from domain.payments import (
    Accept,
    ContractStage,
    MilestoneState,
    PaymentPolicy,
    PaymentRequest,
    RecordPayment,
)
from tests import payment_support
from tests.harness import Harness, eventually
from tests.payment_support import contract_when, signed

# Fixtures shared with the other modules split from the same subject.
env = payment_support.env
harness = payment_support.harness


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
