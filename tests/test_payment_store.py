"""Payment activities against the store, on SQLite and PostgreSQL: amounts
round-trip exactly, allocation is idempotent by reference."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.payments import PaymentActivities
from activities.store import Store
from domain import schema
from domain.payments import (
    ContractInput,
    MilestoneRule,
    OverdueEscalation,
    PaymentPolicy,
    PaymentRequest,
    SignRequest,
)
from tests.harness import seed_staff

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


def sign(store: Store, contract_id: str, amount: str, currency: str = "CNY",
         plan: list[MilestoneRule] | None = None) -> PaymentActivities:
    payments = PaymentActivities(store=store, policy=PaymentPolicy(),
                                 default_timezone="Asia/Shanghai")
    payments.sign_contract(SignRequest(
        contract=ContractInput(contract_id=contract_id, customer_id="cust-1", owner_id="rep-a",
                               amount=Decimal(amount), currency=currency, signed_at=NOW),
        plan=plan or PaymentPolicy().default_plan, policy=PaymentPolicy(),
        workflow_id=f"contract-{contract_id}", now=NOW))
    return payments


def pay(payments: PaymentActivities, contract_id: str, amount: str, reference: str,
        currency: str = "CNY") -> object:
    return payments.record_payment(PaymentRequest(
        contract_id=contract_id, workflow_id=f"contract-{contract_id}", amount=Decimal(amount),
        currency=currency, paid_at=NOW, reference=reference, now=NOW + timedelta(hours=1)))


@pytest.mark.parametrize(("amount", "currency", "parts"), [
    ("999.99", "CNY", ("300.00", "699.99")),
    ("123456789012.34", "CNY", ("37037036703.70", "86419752308.64")),
    ("1001", "JPY", ("300", "701")),
])
def test_amounts_round_trip_exactly(store: Store, amount: str, currency: str,
                                    parts: tuple[str, str]) -> None:
    seed_staff(store)
    payments = sign(store, "S1", amount, currency)
    with store.unit_of_work() as session:
        contract = session.get(schema.Contract, "S1")
        assert contract is not None
        milestones = sorted(contract_rows(session, "S1"), key=lambda m: m.seq)
    from domain.money import from_minor

    assert from_minor(contract.amount_minor, currency) == Decimal(amount)
    assert tuple(str(from_minor(m.amount_minor, currency)) for m in milestones) == parts
    result = pay(payments, "S1", parts[0], "R1", currency)
    assert result.milestones[0].paid == Decimal(parts[0])  # type: ignore[attr-defined]


def contract_rows(session: object, contract_id: str) -> list[schema.PaymentMilestone]:
    from sqlalchemy import select

    return list(session.scalars(  # type: ignore[attr-defined]
        select(schema.PaymentMilestone).where(schema.PaymentMilestone.contract_id == contract_id)))


def test_a_reference_is_recorded_once(store: Store) -> None:
    seed_staff(store)
    payments = sign(store, "S2", "1000")
    first = pay(payments, "S2", "100", "BANK-1")
    again = pay(payments, "S2", "100", "BANK-1")
    assert not first.duplicate and again.duplicate  # type: ignore[attr-defined]
    with store.unit_of_work() as session:
        contract = session.get(schema.Contract, "S2")
        assert contract is not None and contract.paid_minor == 10000
        value = session.get(schema.CustomerValue, ("cust-1", "CNY"))
        assert value is not None and value.lifetime_value_minor == 10000


def test_due_dates_are_customer_local_calendar_dates(store: Store) -> None:
    seed_staff(store)
    sign(store, "S3", "1000")
    with store.unit_of_work() as session:
        deposit = next(m for m in contract_rows(session, "S3") if m.seq == 1)
        # signed 09:30 on 2 March in Shanghai: due 9 March, overdue from 10 March 00:00 local
        assert deposit.due_date == "2026-03-09"
        assert deposit.overdue_at == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


def test_an_amount_finer_than_the_currency_is_refused_without_writing(store: Store) -> None:
    seed_staff(store)
    payments = sign(store, "S4", "1000")
    with pytest.raises(ApplicationError) as refused:
        pay(payments, "S4", "0.001", "R9")
    assert refused.value.non_retryable and "more than 2 decimal places" in refused.value.message
    with store.unit_of_work() as session:
        assert session.get(schema.Contract, "S4").paid_minor == 0  # type: ignore[union-attr]


def attempt_of(call_id: str, attempt: int, contract_id: str) -> ActivityEnvironment:
    """An activity context: attempt `attempt` of the journey's call `call_id`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"contract-{contract_id}",
                                   workflow_run_id="run-1", activity_id=call_id,
                                   attempt=attempt)
    return env


def payment(contract_id: str, amount: str, reference: str) -> PaymentRequest:
    return PaymentRequest(contract_id=contract_id, workflow_id=f"contract-{contract_id}",
                          amount=Decimal(amount), currency="CNY", paid_at=NOW,
                          reference=reference, now=NOW + timedelta(hours=1))


def test_a_retry_after_the_payment_was_recorded_answers_what_the_first_attempt_did(
        store: Store) -> None:
    seed_staff(store)
    payments = sign(store, "S7", "1000")
    # Attempt 1 commits, then the worker dies before the journey hears of it.
    first = attempt_of("12", 1, "S7").run(payments.record_payment,
                                          payment("S7", "400", "BANK-7"))
    retried = attempt_of("12", 2, "S7").run(payments.record_payment,
                                            payment("S7", "400", "BANK-7"))

    assert not retried.duplicate
    assert retried == first
    assert retried.applied == {1: Decimal("300.00"), 2: Decimal("100.00")}
    with store.unit_of_work() as session:
        contract = session.get(schema.Contract, "S7")
        assert contract is not None
        assert (contract.paid_minor, contract.finance_status) == (40000, "partially_paid")
        assert len(session.scalars(select(schema.Payment)
                                   .where(schema.Payment.contract_id == "S7")).all()) == 1


def test_the_same_reference_sent_again_by_another_signal_stays_a_duplicate(
        store: Store) -> None:
    seed_staff(store)
    payments = sign(store, "S8", "1000")
    attempt_of("12", 1, "S8").run(payments.record_payment, payment("S8", "400", "BANK-8"))

    again = attempt_of("15", 1, "S8").run(payments.record_payment,
                                          payment("S8", "400", "BANK-8"))
    keyed = payments.record_payment(payment("S8", "400", "BANK-8").model_copy(
        update={"key": "contract-S8:payment:2"}))

    assert again.duplicate and keyed.duplicate
    assert again.applied == {} and again.milestones[0].paid == Decimal("300.00")
    with store.unit_of_work() as session:
        contract = session.get(schema.Contract, "S8")
        assert contract is not None and contract.paid_minor == 40000


def test_a_journey_s_own_key_names_the_call_across_its_retries(store: Store) -> None:
    seed_staff(store)
    payments = sign(store, "S9", "1000")
    request = payment("S9", "1000", "BANK-9").model_copy(
        update={"key": "contract-S9:payment:1"})

    first = payments.record_payment(request)
    retried = payments.record_payment(request)

    assert not retried.duplicate and retried == first
    assert all(m.state.value == "paid" for m in retried.milestones)


def test_a_retried_overdue_escalation_names_whom_the_first_attempt_escalated_to(
        store: Store) -> None:
    seed_staff(store)
    payments = sign(store, "S10", "1000")
    request = OverdueEscalation(contract_id="S10", workflow_id="contract-S10", seq=1, level=1,
                                now=NOW + timedelta(days=14))
    first = payments.escalate_overdue(request)
    # Between the attempts the finance desk and the owner's manager change.
    with store.unit_of_work() as session:
        session.execute(update(schema.Staff).where(schema.Staff.id == "fin-1")
                        .values(active=False))
        session.execute(update(schema.Staff).where(schema.Staff.id == "rep-a")
                        .values(manager_id=None))

    again = payments.escalate_overdue(request)

    assert (first.manager_id, first.finance_ids) == ("mgr-east", ["fin-1"])
    assert again == first
    with store.unit_of_work() as session:
        assert len(session.scalars(select(schema.Escalation)
                                   .where(schema.Escalation.entity_id == "S10")).all()) == 2
