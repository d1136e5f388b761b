"""Payment and lifecycle signal values the store can never keep, on SQLite and
PostgreSQL: refused before any write (InvalidInput, non-retryable, naming the
field), nothing written, and a legitimate value still goes through.

Activities run in Temporal's activity environment, as on a worker."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from activities.lifecycle import LifecycleActivities
from activities.payments import PaymentActivities
from activities.store import Store
from domain import limits, schema
from domain.lifecycle import (
    AdvisorHandoverRequest,
    LifecyclePolicy,
    OptOutRequest,
    Purchase,
    PurchaseRequest,
    customer_workflow_id,
)
from domain.payments import (
    AcceptRequest,
    ContractClosed,
    ContractInput,
    PaymentPolicy,
    PaymentRequest,
    SignRequest,
)
from tests.harness import seed_staff
from tests.refusals import FAR, HOUR, NOW, NUL, assert_invalid, refusal, run, snapshot

# -- payments ---------------------------------------------------------------------------


@pytest.fixture
def payments(store: Store) -> PaymentActivities:
    seed_staff(store)
    activities = PaymentActivities(store=store, policy=PaymentPolicy(),
                                   default_timezone="Asia/Shanghai")
    run(activities.sign_contract, SignRequest(
        contract=ContractInput(contract_id="K1", customer_id="cust-1", owner_id="rep-a",
                               amount=Decimal("1000"), signed_at=NOW),
        plan=PaymentPolicy().default_plan, policy=PaymentPolicy(), workflow_id="contract-K1",
        now=NOW))
    return activities


def payment(**values: Any) -> PaymentRequest:
    return PaymentRequest.model_validate({
        "contract_id": "K1", "workflow_id": "contract-K1", "amount": "300", "currency": "CNY",
        "paid_at": NOW + HOUR, "reference": "BANK-1", "now": NOW + 2 * HOUR, **values})


@pytest.mark.parametrize(("values", "field", "problem"), [
    ({"reference": "r" * (limits.REFERENCE + 1)}, "reference",
     f"the store keeps at most {limits.REFERENCE}"),
    ({"reference": NUL}, "reference", "contains a NUL character"),
    ({"currency": "ZZZZ"}, "currency", "'ZZZZ' is not an ISO 4217 currency code"),
    ({"currency": "ZZZ", "amount": "1e30"}, "currency", "'ZZZ' is not an ISO 4217"),
    ({"amount": "1e30"}, "amount", "1E+30 is beyond what the store can keep in CNY"),
    ({"amount": "0.001"}, "amount", "0.001 has more than 2 decimal places for CNY"),
    ({"paid_at": FAR}, "paid_at", "is outside the years 1900-2999"),
])
def test_a_payment_the_store_cannot_keep_is_refused_and_writes_nothing(
        payments: PaymentActivities, store: Store, values: dict[str, Any], field: str,
        problem: str) -> None:
    before = snapshot(store)
    assert_invalid(refusal(payments.record_payment, payment(**values)), field, problem)
    assert snapshot(store) == before
    result = run(payments.record_payment, payment(reference="r" * limits.REFERENCE))
    assert not result.duplicate and result.applied == {1: Decimal("300.00")}


def test_an_acceptance_outside_the_calendar_is_refused(payments: PaymentActivities,
                                                       store: Store) -> None:
    def accept(at: datetime) -> AcceptRequest:
        return AcceptRequest(contract_id="K1", workflow_id="contract-K1", accepted_at=at,
                             milestones=[], policy=PaymentPolicy(), now=NOW + HOUR)

    before = snapshot(store)
    assert_invalid(refusal(payments.accept_contract, accept(FAR)), "accepted_at",
                   "is outside the years")
    assert snapshot(store) == before
    run(payments.accept_contract, accept(NOW + HOUR))
    with store.unit_of_work() as session:
        contract = session.get(schema.Contract, "K1")
        assert contract is not None and contract.accepted_at == NOW + HOUR


@pytest.mark.parametrize(("reason", "problem"), [
    (NUL, "contains a NUL character"),
    ("x" * (limits.TEXT + 1), f"the store keeps at most {limits.TEXT}"),
])
def test_a_cancellation_reason_the_store_cannot_keep_is_refused(
        payments: PaymentActivities, store: Store, reason: str, problem: str) -> None:
    def cancel(why: str) -> ContractClosed:
        return ContractClosed(contract_id="K1", workflow_id="contract-K1", status="cancelled",
                              reason=why, now=NOW + HOUR)

    before = snapshot(store)
    assert_invalid(refusal(payments.close_contract, cancel(reason)), "reason", problem)
    assert snapshot(store) == before
    run(payments.close_contract, cancel("客户取消 — budget cut"))
    with store.unit_of_work() as session:
        contract = session.get(schema.Contract, "K1")
        assert contract is not None
        assert (contract.finance_status, contract.close_reason) == ("cancelled",
                                                                    "客户取消 — budget cut")


# -- lifecycle --------------------------------------------------------------------------


WF = customer_workflow_id("cust-1")


@pytest.fixture
def lifecycle(store: Store) -> LifecycleActivities:
    seed_staff(store)
    return LifecycleActivities(store=store, policy=LifecyclePolicy(), zone="Asia/Shanghai")


def purchase(currency: str = "CNY", **values: Any) -> PurchaseRequest:
    return PurchaseRequest(
        customer_id="cust-1", workflow_id=WF,
        purchase=Purchase.model_validate({"order_id": "O-1", "amount": "120",
                                          "category": "tea", "at": NOW, **values}),
        currency=currency, now=NOW + HOUR)


@pytest.mark.parametrize(("values", "field", "problem"), [
    ({"order_id": "o" * (limits.ID + 1)}, "order_id", f"the store keeps at most {limits.ID}"),
    ({"order_id": NUL}, "order_id", "contains a NUL character"),
    ({"amount": "1e30"}, "amount", "1E+30 is beyond what the store can keep in CNY"),
    ({"amount": "0.001"}, "amount", "0.001 has more than 2 decimal places for CNY"),
    ({"currency": "C\x00Y"}, "currency", "is not an ISO 4217 currency code"),
    ({"category": "c" * (limits.CATEGORY + 1)}, "category",
     f"the store keeps at most {limits.CATEGORY}"),
    ({"category": NUL}, "category", "contains a NUL character"),
    ({"coupon_code": "C" * (limits.COUPON + 1)}, "coupon_code",
     f"the store keeps at most {limits.COUPON}"),
    ({"coupon_code": NUL}, "coupon_code", "contains a NUL character"),
    ({"at": FAR}, "at", "is outside the years 1900-2999"),
])
def test_a_purchase_the_store_cannot_keep_is_refused_and_writes_nothing(
        lifecycle: LifecycleActivities, store: Store, values: dict[str, Any], field: str,
        problem: str) -> None:
    before = snapshot(store)
    assert_invalid(refusal(lifecycle.record_purchase, purchase(**values)), field, problem)
    assert snapshot(store) == before
    result = run(lifecycle.record_purchase, purchase(order_id="o" * limits.ID,
                                                     category="c" * limits.CATEGORY))
    assert not result.duplicate and result.orders == 1


def test_a_purchase_in_a_currency_that_does_not_exist_is_refused(
        lifecycle: LifecycleActivities, store: Store) -> None:
    before = snapshot(store)
    assert_invalid(refusal(lifecycle.record_purchase, purchase(currency="ZZZ", amount="1e30")),
                   "currency", "'ZZZ' is not an ISO 4217 currency code")
    assert snapshot(store) == before


@pytest.mark.parametrize(("channel", "problem"), [
    ("c" * 17, "is 17 characters long; the store keeps at most 16"),
    ("sms\x00", "contains a NUL character"),
])
def test_an_opt_out_channel_the_store_cannot_keep_is_refused(
        lifecycle: LifecycleActivities, store: Store, channel: str, problem: str) -> None:
    def opt_out(on: str | None) -> OptOutRequest:
        return OptOutRequest(customer_id="cust-1", channel=on, now=NOW)

    before = snapshot(store)
    assert_invalid(refusal(lifecycle.record_opt_out, opt_out(channel)), "channel", problem)
    assert snapshot(store) == before
    run(lifecycle.record_opt_out, opt_out("c" * 16))
    run(lifecycle.record_opt_out, opt_out(None))
    with store.unit_of_work() as session:
        assert sorted(session.scalars(select(schema.Consent.channel))) == ["all", "c" * 16]


@pytest.mark.parametrize(("values", "field", "problem"), [
    ({"staff_id": "s" * (limits.ID + 1)}, "staff_id", f"the store keeps at most {limits.ID}"),
    ({"staff_id": NUL}, "staff_id", "contains a NUL character"),
    ({"tier": "t" * 17}, "tier", "the store keeps at most 16"),
    ({"tier": "core\x00"}, "tier", "contains a NUL character"),
])
def test_an_advisor_handover_naming_what_the_store_cannot_keep_is_refused(
        lifecycle: LifecycleActivities, store: Store, values: dict[str, Any], field: str,
        problem: str) -> None:
    def handover(**given: Any) -> AdvisorHandoverRequest:
        return AdvisorHandoverRequest.model_validate({
            "customer_id": "cust-1", "workflow_id": WF, "staff_id": "adv-1", "tier": "core",
            "n": 1, "now": NOW, **given})

    with store.unit_of_work() as session:
        customer = session.get(schema.Customer, "cust-1")
        assert customer is not None
        customer.advisor_id = "adv-1"
    before = snapshot(store)
    assert_invalid(refusal(lifecycle.hand_over_exclusive_advisor, handover(**values)),
                   field, problem)
    assert snapshot(store) == before
    done = run(lifecycle.hand_over_exclusive_advisor, handover())
    assert done.held and done.advisor_id == "adv-2"
