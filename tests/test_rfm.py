"""RFM tiers: the rule on the boundary of every threshold, and the store's
set-based sweep (full and incremental) on PostgreSQL and SQLite against
hand-computed tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from activities.rfm import RfmSweeper
from activities.store import Store
from domain import schema
from domain.lifecycle import Figures, RfmPolicy, Tier, figures_at, rfm_tier

ZONE = "Asia/Shanghai"
D = date(2026, 6, 30)


def fig(r: int | None, f: int, m: str, first: int | None = 400) -> Figures:
    return Figures(recency_days=r, frequency=f, monetary=Decimal(m), first_purchase_days=first)


@pytest.mark.parametrize(("figures", "tier"), [
    (fig(29, 5, "500"), Tier.core),
    (fig(30, 5, "500"), Tier.potential),      # R reaches 30: not core any more
    (fig(29, 4, "500"), Tier.potential),      # F one short of core
    (fig(29, 5, "499.99"), Tier.potential),   # M one cent short of core
    (fig(89, 3, "200"), Tier.potential),
    (fig(90, 3, "200"), Tier.regular),
    (fig(89, 2, "200"), Tier.regular),
    (fig(89, 3, "199.99"), Tier.regular),
    (fig(29, 1, "10", first=29), Tier.new),
    (fig(30, 1, "10", first=30), Tier.regular),
    (fig(180, 1, "100"), Tier.dormant),
    (fig(179, 1, "100"), Tier.regular),
    (fig(180, 1, "99.99"), Tier.lost),
    (fig(180, 0, "0"), Tier.lost),
    (fig(400, 0, "0"), Tier.lost),
    (fig(10, 0, "0"), Tier.lost),             # no purchase in the window at all
    (fig(None, 0, "0", first=None), None),    # never bought: a prospect, no tier
    (fig(29, 5, "500", first=10), Tier.core),  # first match wins over "new"
])
def test_tier_rule_on_every_boundary(figures: Figures, tier: Tier | None) -> None:
    assert rfm_tier(figures) == tier


def local(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), ZoneInfo(ZONE)).astimezone(UTC)


def days_ago(n: int, **kw: int) -> datetime:
    return local(D - timedelta(days=n), **kw)


# customer -> (orders as (when, amount), the tier on day D worked out by hand)
FIXTURE: dict[str, tuple[list[tuple[datetime, str]], Tier | None]] = {
    "core": ([(days_ago(29), "100")] * 5, Tier.core),
    "core-r30": ([(days_ago(30), "100")] * 5, Tier.potential),
    "potential": ([(days_ago(89), "100"), (days_ago(120), "50"), (days_ago(200), "50")],
                  Tier.potential),
    "potential-r90": ([(days_ago(90), "100"), (days_ago(120), "50"), (days_ago(200), "50")],
                      Tier.regular),
    "new": ([(days_ago(29), "10")], Tier.new),
    "new-30": ([(days_ago(30), "10")], Tier.regular),
    "dormant": ([(days_ago(180), "100")], Tier.dormant),
    "dormant-179": ([(days_ago(179), "100")], Tier.regular),
    "lost-low-m": ([(days_ago(180), "99.99")], Tier.lost),
    "window-edge-in": ([(days_ago(364), "100")], Tier.dormant),
    "window-edge-out": ([(days_ago(365), "100")], Tier.lost),
    # local midnight decides the day: 00:00 on D-29 is R=29, 23:59:59 the day before is 30
    "midnight-in": ([(days_ago(29, hour=0), "100")] * 5, Tier.core),
    "midnight-out": ([(days_ago(30, hour=23, minute=59, second=59), "100")] * 5,
                     Tier.potential),
    "tomorrow": ([(local(D + timedelta(days=1), hour=0), "100")], None),  # not yet
    "never": ([], None),
}


def seed(store: Store) -> None:
    with store.unit_of_work() as session:
        for customer_id, (orders, _) in FIXTURE.items():
            session.add(schema.Customer(
                id=customer_id, name=customer_id, created_at=local(D - timedelta(days=500)),
                last_purchase_at=max((at for at, _ in orders), default=None),
                first_purchase_at=min((at for at, _ in orders), default=None),
                order_count=len(orders)))
        session.flush()
        for customer_id, (orders, _) in FIXTURE.items():
            for n, (at, amount) in enumerate(orders):
                session.add(schema.Order(
                    id=f"{customer_id}-{n}", customer_id=customer_id,
                    amount_minor=int(Decimal(amount) * 100), currency="CNY", category="tea",
                    at=at, recorded_at=at))


def tiers(store: Store) -> dict[str, str | None]:
    with store.unit_of_work() as session:
        return dict(session.execute(select(schema.Customer.id, schema.Customer.tier)).all())


def expected() -> dict[str, str | None]:
    return {c: (t.value if t else None) for c, (_, t) in FIXTURE.items()}


def test_the_pure_rule_agrees_with_the_hand_computed_fixture() -> None:
    for customer_id, (orders, tier) in FIXTURE.items():
        figures = figures_at([(at, Decimal(a)) for at, a in orders], today=D, zone=ZONE)
        assert rfm_tier(figures) == tier, customer_id


def test_full_sweep_matches_hand_computed_tiers(store: Store) -> None:
    seed(store)
    sweeper = RfmSweeper(store=store, policy=RfmPolicy(), zone=ZONE)
    result = sweeper.sweep(D, full=True)
    assert tiers(store) == expected()
    assert result.changed == sum(1 for t in expected().values() if t)
    with store.unit_of_work() as session:
        outbox = session.execute(select(schema.TierOutbox.customer_id, schema.TierOutbox.tier)
                                 ).all()
    assert sorted(outbox) == sorted((c, t) for c, t in expected().items()
                                    if t in ("core", "potential"))
    # the same day again changes nothing and queues nothing twice
    again = sweeper.sweep(D, full=True)
    assert again.changed == 0 and again.outboxed == 0


def test_incremental_sweep_agrees_with_a_full_one(store: Store) -> None:
    seed(store)
    sweeper = RfmSweeper(store=store, policy=RfmPolicy(), zone=ZONE)
    sweeper.sweep(D - timedelta(days=1), full=True)
    result = sweeper.sweep(D)
    assert result.mode == "incremental"
    assert tiers(store) == expected()
    # a day later, with a new purchase: incremental still equals the rule
    nxt = D + timedelta(days=1)
    with store.unit_of_work() as session:
        session.add(schema.Order(id="late-1", customer_id="dormant", amount_minor=50000,
                                 currency="CNY", category="tea", at=local(nxt, hour=9),
                                 recorded_at=local(nxt, hour=9)))
        customer = session.get(schema.Customer, "dormant")
        assert customer is not None
        customer.last_purchase_at = local(nxt, hour=9)
    sweeper.sweep(nxt)
    with store.unit_of_work() as session:
        rows = session.execute(select(schema.Order.customer_id, schema.Order.at,
                                      schema.Order.amount_minor)).all()
    by_customer: dict[str, list[tuple[datetime, Decimal]]] = {}
    for customer_id, at, minor in rows:
        by_customer.setdefault(customer_id, []).append((at, Decimal(minor) / 100))
    rule = {c: (t.value if (t := rfm_tier(figures_at(by_customer.get(c, []), today=nxt,
                                                      zone=ZONE))) else None)
            for c in FIXTURE}
    assert tiers(store) == rule
    assert rule["dormant"] == "new" or rule["dormant"] == "regular"
