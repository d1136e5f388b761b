"""Campaign results in the report against a store worked out by hand, on
both engines: per arm the customers who entered in the period and those
converted within the attribution window, the lift over the hold-out with its
interval as `crm campaign results` computes it, and revenue per customer in
each order's currency, never summed across currencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from activities.store import Store
from domain import schema
from domain.campaigns import HOLDOUT, ArmResult, lift
from starter.report import build_report, render_text
from tests.harness import STAFF, seed_staff
from tests.report_support import MAY

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
WINDOW = timedelta(days=14)


def t(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, tzinfo=UTC)


# customer: (arm, entered, [(amount, currency, at)])
RUNS: dict[str, tuple[str, datetime, list[tuple[str, str, datetime]]]] = {
    "H1": (HOLDOUT, t(5, 2), [("100.00", "CNY", t(5, 5))]),
    "H2": (HOLDOUT, t(5, 2), []),
    "H3": (HOLDOUT, t(5, 3), [("50.00", "CNY", t(5, 30))]),  # after its window
    "H4": (HOLDOUT, t(5, 3), []),
    "A1": ("a", t(5, 2), [("200.00", "CNY", t(5, 4)), ("30.00", "CNY", t(5, 6))]),
    "A2": ("a", t(5, 2), [("12.50", "USD", t(5, 3))]),  # converted in dollars
    "A3": ("a", t(5, 4), [("1000", "JPY", t(5, 10))]),
    "A4": ("a", t(5, 4), []),
    "A5": ("a", t(5, 5), [("5.00", "CNY", t(5, 1))]),  # before entering
    "A6": ("a", t(4, 20), [("80.00", "CNY", t(4, 22))]),  # entered before the period
}


def seed(store: Store) -> None:
    seed_staff(store, STAFF)
    with store.unit_of_work() as s:
        s.add(schema.Campaign(name="spring", definition={
            "name": "spring", "segment": "audience", "holdout": 0.5,
            "steps": [{"message": {"channel": "email", "template": "offer"}}]},
            status="active", defined_at=t(4, 1), updated_at=t(4, 1)))
        for customer in RUNS:
            s.add(schema.Customer(id=customer, name=customer, created_at=t(1, 1)))
        s.flush()
        for customer, (arm, entered, orders) in RUNS.items():
            s.add(schema.CampaignMember(campaign="spring", customer_id=customer, run=1,
                                        arm=arm, entered_at=entered,
                                        attributed_until=entered + WINDOW))
            for n, (amount, currency, at) in enumerate(orders):
                minor = int(Decimal(amount) * (1 if currency == "JPY" else 100))
                s.add(schema.Order(id=f"{customer}-{n}", customer_id=customer,
                                   amount_minor=minor, currency=currency, category="tea",
                                   at=at, recorded_at=at))


def test_campaign_results_per_arm_and_currency_with_the_lift(store: Store) -> None:
    seed(store)
    [spring] = build_report(store, **MAY, now=AS_OF).campaigns
    holdout, a = spring.arms
    assert holdout == ArmResult(HOLDOUT, 4, 1, {"CNY": Decimal("100.00")})
    assert a == ArmResult("a", 5, 3, {"CNY": Decimal("230.00"), "JPY": Decimal("1000"),
                                      "USD": Decimal("12.50")})
    assert a.revenue_per_customer == {"CNY": Decimal("46.00"), "JPY": Decimal("200"),
                                      "USD": Decimal("2.50")}
    found = spring.lifts()["a"]
    assert found == lift(a, holdout)
    assert found is not None and found.difference == pytest.approx(3 / 5 - 1 / 4)


def test_the_row_the_report_prints(store: Store) -> None:
    seed(store)
    rows = dict(render_text(build_report(store, **MAY, now=AS_OF)))
    found = lift(ArmResult("a", 5, 3), ArmResult(HOLDOUT, 4, 1))
    assert found is not None
    assert rows["campaign spring"] == (
        "holdout 1/4 converted (25.0%), revenue / customer 25.00 CNY; "
        f"a 3/5 converted (60.0%), lift +35.0% (95% CI {found.low:+.1%} to "
        f"{found.high:+.1%}, p {found.p_value:.3f}), revenue / customer 46.00 CNY, "
        "200 JPY, 2.50 USD")
