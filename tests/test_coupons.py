"""Win-back coupons in the store, on SQLite and PostgreSQL: a code nobody can
compute, the same code for a retried issue, one credited order per coupon, and
a refused coupon kept with its reason."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from activities.lifecycle import LifecycleActivities
from activities.store import Store, migrate
from domain import schema
from domain.lifecycle import (
    CouponRequest,
    LifecyclePolicy,
    Purchase,
    PurchaseRequest,
    customer_workflow_id,
)

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def add_customers(store: Store, *ids: str) -> None:
    with store.unit_of_work() as session:
        for customer_id in ids:
            session.add(schema.Customer(id=customer_id, name=customer_id, created_at=NOW))


def activities(store: Store) -> LifecycleActivities:
    return LifecycleActivities(store=store, policy=LifecyclePolicy(), zone="Asia/Shanghai")


def issue(lifecycle: LifecycleActivities, customer_id: str, n: int = 1,
          valid_for: timedelta = timedelta(days=14)) -> str:
    return lifecycle.issue_coupon(CouponRequest(
        customer_id=customer_id, key=f"{customer_workflow_id(customer_id)}:winback_first:{n}",
        campaign="winback", percent=10, valid_for=valid_for, now=NOW)).code


def buy(lifecycle: LifecycleActivities, customer_id: str, order_id: str, *,
        coupon: str | None = None, campaign: list[str] | None = None,
        at: datetime = NOW + timedelta(days=1)) -> str | None:
    return lifecycle.record_purchase(PurchaseRequest(
        customer_id=customer_id, workflow_id=customer_workflow_id(customer_id),
        purchase=Purchase(order_id=order_id, amount=Decimal("120"), category="tea", at=at,
                          coupon_code=coupon),
        currency="CNY", campaign=campaign or [], now=at)).credited_coupon


def rejections(store: Store, customer_id: str) -> list[str]:
    with store.unit_of_work() as session:
        return list(session.scalars(
            select(schema.SignalRejection.reason)
            .where(schema.SignalRejection.entity_id == customer_id,
                   schema.SignalRejection.signal == "purchase")
            .order_by(schema.SignalRejection.id)))


def credited_orders(store: Store, code: str) -> list[str]:
    with store.unit_of_work() as session:
        return list(session.scalars(
            select(schema.Order.id).where(schema.Order.credited_coupon == code)))


def test_a_coupon_code_cannot_be_computed_from_the_customer_id(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, "cust-1")
    code = issue(activities(store), "cust-1")
    key = f"{customer_workflow_id('cust-1')}:winback_first:1"
    derived = "C" + base64.b32encode(hashlib.sha256(key.encode()).digest())[:11].decode()
    assert code != derived
    # Another install issuing the same touch gets another code.
    other = Store.from_url(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        migrate(f"sqlite:///{tmp_path / 'other.db'}")
        add_customers(other, "cust-1")
        assert issue(activities(other), "cust-1") != code
    finally:
        other.dispose()
    assert len(code) >= 16 and code.startswith("C")


def test_a_retried_issue_gives_the_same_coupon(store: Store) -> None:
    add_customers(store, "cust-1")
    lifecycle = activities(store)
    first = issue(lifecycle, "cust-1")
    assert issue(lifecycle, "cust-1") == first
    assert issue(lifecycle, "cust-1", n=2) != first
    with store.unit_of_work() as session:
        assert session.scalar(select(schema.CouponRecord.key)
                              .where(schema.CouponRecord.code == first)).endswith(":1")


def test_a_campaign_coupon_credits_one_order_and_is_refused_on_the_next(store: Store) -> None:
    add_customers(store, "cust-1")
    lifecycle = activities(store)
    code = issue(lifecycle, "cust-1")
    # Order A revives the customer without the coupon: the campaign is credited.
    assert buy(lifecycle, "cust-1", "A", campaign=[code]) == code
    # Order B presents the coupon: already redeemed, refused with the reason.
    assert buy(lifecycle, "cust-1", "B", coupon=code, campaign=[code]) is None
    assert credited_orders(store, code) == ["A"]
    assert rejections(store, "cust-1") == [f"coupon {code} was already redeemed on order A"]


def test_a_presented_coupon_credits_its_order_once(store: Store) -> None:
    add_customers(store, "cust-1")
    lifecycle = activities(store)
    code = issue(lifecycle, "cust-1")
    assert buy(lifecycle, "cust-1", "A", coupon=code) == code
    assert buy(lifecycle, "cust-1", "A", coupon=code) is None  # the same order again
    assert buy(lifecycle, "cust-1", "B", coupon=code) is None
    assert credited_orders(store, code) == ["A"]
    assert rejections(store, "cust-1") == [f"coupon {code} was already redeemed on order A"]


def test_someone_else_s_expired_or_unknown_coupon_is_refused_with_the_reason(
    store: Store,
) -> None:
    add_customers(store, "cust-1", "cust-2")
    lifecycle = activities(store)
    theirs = issue(lifecycle, "cust-2")
    expired = issue(lifecycle, "cust-1", valid_for=timedelta(hours=1))
    assert buy(lifecycle, "cust-1", "A", coupon=theirs) is None
    assert buy(lifecycle, "cust-1", "B", coupon=expired) is None
    assert buy(lifecycle, "cust-1", "C", coupon="CNOSUCHCOUPON") is None
    expiry = (NOW + timedelta(hours=1)).isoformat()
    assert rejections(store, "cust-1") == [
        f"coupon {theirs} was issued to another customer",
        f"coupon {expired} expired at {expiry}",
        "coupon CNOSUCHCOUPON does not exist",
    ]
    # The orders themselves stand.
    with store.unit_of_work() as session:
        assert set(session.scalars(select(schema.Order.id)
                                   .where(schema.Order.customer_id == "cust-1"))) \
            == {"A", "B", "C"}
    assert credited_orders(store, theirs) == [] and credited_orders(store, expired) == []


def test_the_store_refuses_a_second_order_credited_to_one_coupon(store: Store) -> None:
    add_customers(store, "cust-1")
    code = issue(activities(store), "cust-1")
    with store.unit_of_work() as session:
        session.add(schema.Order(id="A", customer_id="cust-1", amount_minor=100, currency="CNY",
                                 at=NOW, recorded_at=NOW, credited_coupon=code))
    with pytest.raises(IntegrityError), store.unit_of_work() as session:
        session.add(schema.Order(id="B", customer_id="cust-1", amount_minor=100, currency="CNY",
                                 at=NOW, recorded_at=NOW, credited_coupon=code))
        session.flush()
    with store.unit_of_work() as session:  # orders without a coupon are many
        for order_id in ("C", "D"):
            session.add(schema.Order(id=order_id, customer_id="cust-1", amount_minor=100,
                                     currency="CNY", at=NOW, recorded_at=NOW))
    assert credited_orders(store, code) == ["A"]
