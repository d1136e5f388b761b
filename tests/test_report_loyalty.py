"""Loyalty in `crm report` (both engines): points issued, redeemed, reversed
and expired in the period; members per level as they stand; joins, level
changes, 保级 offers taken up and referral conversions in the period."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from activities.journal import record_event
from activities.loyalty import LoyaltyActivities
from activities.store import Store
from domain.loyalty import (
    LoyaltyPolicy,
    MemberPurchase,
    Refund,
)
from domain.loyalty_requests import (
    EnrolRequest,
    LevelRequest,
    OrderPoints,
    PointsChange,
    ReferralReward,
    RefundRequest,
)
from starter.report import build_report, render_text
from tests.report_support import MAY


def t(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 4, tzinfo=UTC)


def test_the_report_counts_points_levels_offers_taken_up_and_referrals(store: Store) -> None:
    acts = LoyaltyActivities(store=store, policy=LoyaltyPolicy(member_weekdays=[]))
    code = acts.enrol_member(EnrolRequest(customer_id="a", workflow_id="membership-a",
                                          joined_at=t(4, 20), now=t(4, 20))).referral_code
    acts.enrol_member(EnrolRequest(customer_id="b", workflow_id="membership-b",
                                   joined_at=t(5, 2), referral_code=code, now=t(5, 2)))
    for customer, order, amount, at in (("a", "A1", "2800", t(4, 25)), ("a", "A2", "300", t(5, 3)),
                                        ("b", "B1", "120", t(5, 4))):
        acts.earn_for_order(OrderPoints(customer_id=customer, workflow_id="w", now=at,
                                        purchase=MemberPurchase(order_id=order,
                                                                amount=Decimal(amount), at=at)))
    acts.reward_referral(ReferralReward(referee_id="b", referrer_id="a", order_id="B1",
                                        workflow_id="membership-b", now=t(5, 4)))
    acts.change_points(PointsChange(customer_id="a", key="redeem:1", kind="redeemed",
                                    points=200, now=t(5, 10)))
    acts.reverse_order(RefundRequest(customer_id="b", refund=Refund(order_id="B1"),
                                     now=t(5, 12)))
    acts.set_level(LevelRequest(customer_id="a", workflow_id="membership-a", level="gold",
                                cycle=1, offered=True, now=t(5, 20)))
    with store.unit_of_work() as session:
        record_event(session, key="membership-a:retention:1", journey="membership",
                     entity_id="a", step="retention_offered", at=t(5, 1))
    report = build_report(store, **MAY)
    f = report.loyalty
    # In May: A2 300 + B1 120 + referral 500 + 200 (April's A1 is outside).
    assert (f.points_issued, f.points_redeemed, f.points_reversed, f.points_expired) == (
        1120, 200, 120, 0)
    assert f.members_per_level == {"bronze": 1, "silver": 1}
    assert (f.joined, f.level_changes, f.referral_conversions) == (1, 1, 1)
    assert (f.retention_offers, f.retention_taken_up) == (1, 0)  # gold dropped to silver
    rows = dict(render_text(report))
    assert rows["loyalty points"] == "1120 issued, 200 redeemed, 120 reversed, 0 expired"
    assert rows["保级 offers taken up"] == "0.0% (0/1)"
    assert rows["referral conversions"] == "1"
