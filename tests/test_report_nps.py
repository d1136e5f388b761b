"""NPS in the report against a store whose answers were worked out by hand,
on both engines: overall, per survey period, tier and owner, the reasons'
categories and the detractor follow-up on-time rate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.store import Store
from domain import schema
from starter.report import build_report, render_text
from starter.report.nps import NpsTally
from tests.harness import STAFF, seed_staff
from tests.report_support import MAY

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def t(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


# customer: (tier, owner, period, score, answered, category, follow-up due, followed up)
SURVEYS = {
    "A": ("core", "rep-a", "2026Q1", 10, t(5, 2), None, None, None),
    "B": ("core", "rep-b", "2026Q1", 9, t(5, 3), None, None, None),
    "C": ("regular", "rep-a", "2026Q1", 7, t(5, 4), None, None, None),
    # a detractor followed up in time
    "D": (None, None, "2026Q1", 3, t(5, 8), "price", t(5, 10), t(5, 9)),
    # a detractor whose follow-up is past due when the report is built
    "E": ("regular", "rep-b", "2026Q1", 5, t(5, 18), "slow_response", t(5, 20), None),
    # a detractor whose follow-up is not due yet: not in the on-time rate
    "F": ("core", "rep-a", "2026Q2", 0, t(5, 30), "product", t(6, 1, 12), None),
    # answered before the period, and never answered: neither counts
    "G": ("core", "rep-a", "2026Q1", 10, t(4, 30), None, None, None),
    "H": ("core", "rep-a", "2026Q1", None, None, None, None, None),
}


def seed(store: Store) -> None:
    seed_staff(store, STAFF)
    with store.unit_of_work() as s:
        for customer, (tier, owner, *_rest) in SURVEYS.items():
            s.add(schema.Customer(id=customer, name=customer, created_at=t(1, 1), tier=tier,
                                  owner_id=owner))
        s.flush()
        for customer, (_, owner, period, score, answered, category, due, done) in \
                SURVEYS.items():
            s.add(schema.NpsSurvey(
                id=f"{customer}-{period}", customer_id=customer, period=period,
                owner_id=owner, status="completed" if answered else "asked",
                asked_at=t(4, 1), closes_at=t(4, 15), answered_at=answered, score=score,
                category=category, follow_up_due=due, followed_up_at=done))


def test_nps_overall_per_period_tier_and_owner_and_the_follow_up_rate(store: Store) -> None:
    seed(store)
    f = build_report(store, **MAY, now=AS_OF).nps
    assert f.overall == NpsTally(promoters=2, passives=1, detractors=3)
    assert f.overall.nps == pytest.approx(100 * (2 - 3) / 6)  # -16.7
    assert f.above_benchmark is False
    assert f.by_period == {"2026Q1": NpsTally(2, 1, 2), "2026Q2": NpsTally(0, 0, 1)}
    assert (f.by_period["2026Q1"].nps, f.by_period["2026Q2"].nps) == (0, -100)
    assert f.by_tier == {"core": NpsTally(2, 0, 1), "none": NpsTally(0, 0, 1),
                         "regular": NpsTally(0, 1, 1)}
    assert f.by_tier["core"].nps == pytest.approx(100 / 3)
    assert f.by_owner == {"rep-a": NpsTally(1, 1, 1), "rep-b": NpsTally(1, 0, 1),
                          "unassigned": NpsTally(0, 0, 1)}
    assert f.categories == {"price": 1, "product": 1, "slow_response": 1}
    assert (f.follow_ups_due, f.follow_ups_on_time, f.follow_up_on_time_rate) == (2, 1, 0.5)


def test_the_rows_the_report_prints(store: Store) -> None:
    seed(store)
    rows = dict(render_text(build_report(store, **MAY, now=AS_OF)))
    assert rows["NPS"] == ("-16.7 (2 promoters, 1 passives, 3 detractors), not above the "
                           "benchmark of 50")
    assert rows["NPS by survey period"] == "2026Q1 0.0 (5); 2026Q2 -100.0 (1)"
    assert rows["NPS by owner"] == "rep-a 0.0 (3); rep-b 0.0 (2); unassigned -100.0 (1)"
    assert rows["detractor follow-up on time"] == "50.0% (1/2)"
