"""The customer KPIs (new customers, retention, churn against its yearly line,
repurchase, lifetime value by tier, lead conversion by source) against a
store whose answers were worked out by hand, on both engines.

May 2026 is the period: a customer is active at its start when they bought in
[2025-05-01, 2026-05-01), at its end when they bought in [2025-06-01, 2026-06-01).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from activities.store import Store
from domain import schema
from starter.report import build_report, render_text
from starter.report.customers import SourceConversion, TierValue
from tests.harness import seed_staff
from tests.report_support import MAY


def t(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# customer: (tier, [(order time, amount minor, currency)])
ORDERS: dict[str, tuple[str | None, list[tuple[datetime, int, str]]]] = {
    # active at the start, bought again in May: retained, one order in May
    "A": ("core", [(t(2025, 12, 1), 30000, "CNY"), (t(2026, 5, 10), 20000, "CNY")]),
    # active at the start by a purchase that leaves the year during May: churned
    "B": ("lost", [(t(2025, 5, 15), 8000, "CNY")]),
    # active at both ends without buying in May: retained
    "C": ("regular", [(t(2025, 6, 20), 12000, "CNY"), (t(2026, 1, 1), 1500, "USD")]),
    # first order ever in May, and a second: new and a repeat buyer
    "D": ("new", [(t(2026, 5, 3), 1000, "CNY"), (t(2026, 5, 20), 2000, "CNY")]),
    # back after two years: a buyer in May, neither new nor active at the start
    "E": ("regular", [(t(2024, 1, 1), 4000, "CNY"), (t(2026, 5, 5), 6000, "CNY")]),
    # first order the moment after May: not new, its value not counted yet
    "F": ("new", [(t(2026, 6, 1, 0), 9900, "CNY")]),
    # the minute before May and the first moment of it
    "G": ("core", [(t(2026, 4, 30, 23, 59), 10000, "CNY"), (t(2026, 5, 1, 0), 5050, "CNY")]),
    # a contract customer without orders: no tier
    "H": (None, []),
}


def seed(store: Store) -> None:
    seed_staff(store)
    with store.unit_of_work() as s:
        for customer, (tier, _) in ORDERS.items():
            s.add(schema.Customer(id=customer, name=customer, created_at=t(2024, 1, 1),
                                  tier=tier))
        s.flush()
        for customer, (_, orders) in ORDERS.items():
            for n, (when, minor, currency) in enumerate(orders):
                s.add(schema.Order(id=f"{customer}{n}", customer_id=customer, amount_minor=minor,
                                   currency=currency, at=when, recorded_at=when))
        s.add(schema.Contract(id="KH", customer_id="H", owner_id="rep-a", currency="CNY",
                              amount_minor=200000, paid_minor=0, credit_minor=0,
                              finance_status="partially_paid", signed_at=t(2026, 5, 1),
                              timezone="Asia/Shanghai"))
        s.flush()
        # 1,000.00 + (500.00 of which 200.00 is held as credit); June's is after the period
        for ref, minor, credit, when in (("P1", 100000, 0, t(2026, 5, 5)),
                                         ("P2", 50000, 20000, t(2026, 5, 6)),
                                         ("P3", 70000, 0, t(2026, 6, 2))):
            s.add(schema.Payment(contract_id="KH", reference=ref, amount_minor=minor,
                                 credit_minor=credit, currency="CNY", paid_at=when,
                                 recorded_at=when))
        for lead_id, source, stage, received in (
                ("L1", "ads", "converted", t(2026, 5, 2)), ("L2", "ads", "stale", t(2026, 5, 3)),
                ("L3", "referral", "converted", t(2026, 5, 4)),
                ("L4", "web_form", "merged", t(2026, 5, 4)),       # a duplicate: not counted
                ("L5", "web_form", "converted", t(2026, 4, 30))):  # before the period
            s.add(schema.Lead(id=lead_id, name=lead_id, region="east", product_line="erp",
                              source=source, stage=stage, received_at=received))


def test_customer_kpis_match_the_hand_computed_answers(store: Store) -> None:
    seed(store)
    c = build_report(store, **MAY).customers
    assert c.new_customers == 1                                   # D
    assert (c.active_at_start, c.retained, c.churned) == (4, 3, 1)  # A B C G; B churned
    assert (c.retention_rate, c.churn_rate) == (0.75, 0.25)
    assert c.yearly_churn_rate == 1 - 0.75 ** (365 / 31)
    assert c.churn_healthy is False
    assert (c.buyers, c.repeat_buyers) == (4, 1)                  # A D E G; D twice
    assert c.repurchase_rate == 0.25 and c.repurchase_healthy is False
    assert c.lifetime_value == {
        ("core", "CNY"): TierValue(customers=2, total=Decimal("650.50")),  # 500.00 + 150.50
        ("lost", "CNY"): TierValue(customers=1, total=Decimal("80.00")),
        ("new", "CNY"): TierValue(customers=1, total=Decimal("30.00")),
        ("none", "CNY"): TierValue(customers=1, total=Decimal("1300.00")),
        ("regular", "CNY"): TierValue(customers=2, total=Decimal("220.00")),
        ("regular", "USD"): TierValue(customers=1, total=Decimal("15.00")),
    }
    assert c.lifetime_value[("core", "CNY")].average == Decimal("325.25")
    assert c.lead_sources == {"ads": SourceConversion(received=2, converted=1),
                              "referral": SourceConversion(received=1, converted=1)}


def test_a_steady_year_is_within_both_lines(store: Store) -> None:
    """A year from June 2025: twenty-one customers active at its start, one of
    whom never bought again: churn 1/21 (4.8 %, under 5 %); the other twenty
    bought twice in it: repurchase 20/20 (over 30 %)."""
    seed_staff(store)
    year = {"start": MAY["end"].replace(year=2025), "end": MAY["end"]}
    with store.unit_of_work() as s:
        for n in range(21):
            s.add(schema.Customer(id=f"S{n}", name="s", created_at=t(2024, 1, 1)))
        s.flush()
        s.add(schema.Order(id="gone", customer_id="S20", amount_minor=100, currency="CNY",
                           at=t(2025, 4, 30), recorded_at=t(2025, 4, 30)))
        for n in range(20):
            for day in (t(2025, 4, 1), t(2026, 5, 2), t(2026, 5, 9)):
                s.add(schema.Order(id=f"S{n}-{day:%y%m%d}", customer_id=f"S{n}",
                                   amount_minor=100, currency="CNY", at=day, recorded_at=day))
    c = build_report(store, **year).customers
    assert (c.active_at_start, c.retained) == (21, 20)
    assert c.churn_rate == 1 / 21 and c.yearly_churn_rate == pytest.approx(1 / 21)
    assert c.churn_healthy is True and c.repurchase_healthy is True


def test_the_rows_the_report_prints(store: Store) -> None:
    seed(store)
    rows = dict(render_text(build_report(store, **MAY)))
    assert rows["new customers"] == "1"
    assert rows["retention rate"] == "75.0% (3/4)"
    assert rows["churn rate"] == "25.0% (1/4); 96.6% a year, outside the < 5% a year line"
    assert rows["repurchase rate"] == "25.0% (1/4), outside the > 30% line"
    assert rows["lifetime value by tier"].startswith("core 325.25 CNY average (2 customers); ")
    assert rows["lead conversion by source"] == "ads 50.0% (1/2), referral 100.0% (1/1)"
