"""Segments over a store whose members were worked out by hand, on both
engines: the documents' example rule as written, entries and exits recorded
with their time, the other kinds of condition, and a refused rule that
changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from activities.segments import (
    define_segment,
    refresh_segment,
    segment_members,
    show_segment,
)
from activities.store import Store
from domain import schema
from domain.segments import RuleError, SegmentDefinition, SegmentPolicy
from tests.harness import STAFF, seed_staff

POLICY = SegmentPolicy()
EXAMPLE = {"all": [{"orders": {"category": "母婴", "within_days": 30, "min_count": 3}},
                   {"follows": {"category": "美妆"}}]}
TAG = "家庭消费+美妆潜在需求"


def t(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


MAY_31 = t(5, 31, 12)  # the window of the first refresh starts on 1 May at noon
JUNE_20 = t(6, 20, 12)  # ... and of the second on 21 May at noon

# customer: (orders as (when, category), categories followed)
CUSTOMERS: dict[str, tuple[list[tuple[datetime, str]], list[str]]] = {
    # three in the month, follows beauty: in; two of them leave the window by 20 June
    "M1": ([(t(5, 10), "母婴"), (t(5, 25), "母婴"), (t(5, 28), "母婴")], ["美妆"]),
    # three in the month, follows nothing yet (beauty by 20 June: enters then)
    "M2": ([(t(5, 22), "母婴"), (t(5, 23), "母婴"), (t(5, 24), "母婴")], []),
    # the third order the day before the window
    "M3": ([(t(4, 30), "母婴"), (t(5, 2), "母婴"), (t(5, 3), "母婴")], ["美妆"]),
    # three orders, one of them food
    "M4": ([(t(5, 5), "母婴"), (t(5, 6), "食品"), (t(5, 7), "母婴")], ["美妆"]),
    # four, and follows more than beauty: in, and still in on 20 June
    "M5": ([(t(5, 20), "母婴"), (t(5, 25), "母婴"), (t(5, 28), "母婴"), (t(5, 30), "母婴")],
           ["数码", "美妆"]),
    # three, follows something else
    "M6": ([(t(5, 11), "母婴"), (t(5, 12), "母婴"), (t(5, 13), "母婴")], ["数码"]),
    # never bought
    "M7": ([], ["美妆"]),
}


def seed(store: Store) -> None:
    seed_staff(store, STAFF)
    with store.unit_of_work() as s:
        for customer in CUSTOMERS:
            s.add(schema.Customer(id=customer, name=customer, created_at=t(1, 1)))
        s.flush()
        for customer, (orders, follows) in CUSTOMERS.items():
            for n, (when, category) in enumerate(orders):
                s.add(schema.Order(id=f"{customer}-{n}", customer_id=customer,
                                   amount_minor=10000 * (n + 1), currency="CNY",
                                   category=category, at=when, recorded_at=when))
            for category in follows:
                s.add(schema.CustomerInterest(customer_id=customer, category=category,
                                              source="app", at=t(1, 1)))


def define(store: Store, name: str, rule: dict[str, object]) -> None:
    define_segment(store, POLICY, SegmentDefinition(name=name, rule=rule), now=t(5, 1))


def test_the_example_rule_as_written_and_who_entered_and_left(store: Store) -> None:
    seed(store)
    define(store, TAG, EXAMPLE)
    first = refresh_segment(store, POLICY, TAG, now=MAY_31)
    assert (first.size, first.entered, first.left) == (2, 2, 0)
    with store.unit_of_work() as s:
        assert segment_members(s, TAG) == {"M1", "M5"}
    assert refresh_segment(store, POLICY, TAG, now=MAY_31).entered == 0  # the same moment again

    with store.unit_of_work() as s:
        s.add(schema.CustomerInterest(customer_id="M2", category="美妆", source="wechat",
                                      at=t(6, 1)))
    second = refresh_segment(store, POLICY, TAG, now=JUNE_20)
    assert (second.size, second.entered, second.left) == (2, 1, 1)
    with store.unit_of_work() as s:
        assert segment_members(s, TAG) == {"M2", "M5"}
        since = {customer: at for customer, at in s.execute(
            select(schema.SegmentMember.customer_id, schema.SegmentMember.since)
            .where(schema.SegmentMember.segment == TAG)).all()}
    assert since == {"M5": MAY_31, "M2": JUNE_20}

    view = show_segment(store, TAG, now=JUNE_20, days=30)
    assert (view.size, view.refreshed_at, view.entered, view.left) == (2, JUNE_20, 3, 1)
    assert view.recent[:2] == [(JUNE_20, "M1", "left"), (JUNE_20, "M2", "entered")]
    assert sorted(view.recent[2:]) == [(MAY_31, "M1", "entered"), (MAY_31, "M5", "entered")]


@pytest.mark.parametrize(("rule", "expected"), [
    # bought nothing in the 30 days: only M7, who never bought
    ({"orders": {"within_days": 30, "max_count": 0}}, {"M7"}),
    ({"orders": {"category": "食品", "within_days": 365}}, {"M4"}),
    # at least 600.00 in the year: 100 + 200 + 300 each, M5 has 1000.00
    ({"orders": {"within_days": 365, "min_amount": "600"}}, {"M1", "M2", "M3", "M4", "M5",
                                                            "M6"}),
    ({"orders": {"within_days": 365, "min_amount": "600.01"}}, {"M5"}),
    ({"any": [{"follows": {"category": "数码"}}, {"tier": "core"}]}, {"M5", "M6", "M1"}),
    ({"not": {"field": {"name": "owner_id", "equals": "rep-a"}}},
     {"M1", "M2", "M4", "M5", "M6", "M7"}),  # an empty owner is not rep-a
    ({"field": {"name": "owner_id", "missing": True}}, set(CUSTOMERS) - {"M3"}),
    ({"interactions": {"channel": "wechat", "within_days": 90, "min_count": 2}}, {"M6"}),
    ({"all": [{"not": {"tier": ["core", "lost"]}}, {"follows": {"category": "美妆"}}]},
     {"M3", "M4", "M7"}),  # beauty followers but core M1 and lost M5
])
def test_each_kind_of_condition(store: Store, rule: dict[str, object],
                                expected: set[str]) -> None:
    seed(store)
    with store.unit_of_work() as s:
        s.get(schema.Customer, "M1").tier = "core"  # type: ignore[union-attr]
        s.get(schema.Customer, "M5").tier = "lost"  # type: ignore[union-attr]
        s.get(schema.Customer, "M3").owner_id = "rep-a"  # type: ignore[union-attr]
        for n, (channel, when) in enumerate((("wechat", t(5, 1)), ("wechat", t(5, 30)),
                                             ("phone", t(5, 2)))):
            s.add(schema.Interaction(key=f"i{n}", customer_id="M6", staff_id="rep-a",
                                     channel=channel, at=when, recorded_at=when))
        s.add(schema.Interaction(key="i9", customer_id="M4", staff_id="rep-a",
                                 channel="wechat", at=t(5, 30), recorded_at=t(5, 30)))
    define(store, "kind", rule)
    refresh_segment(store, POLICY, "kind", now=MAY_31)
    with store.unit_of_work() as s:
        assert segment_members(s, "kind") == expected


def test_a_rule_naming_an_unknown_category_is_refused_and_nothing_is_written(
        store: Store) -> None:
    seed(store)
    bad = {"all": [{"orders": {"category": "母嬰", "within_days": 30, "min_count": 3}},
                   {"follows": {"category": "美妆"}}]}
    with pytest.raises(RuleError, match=r"rule\.all\[0\]\.orders\.category: unknown category "
                                        r"'母嬰'"):
        define(store, TAG, bad)
    with pytest.raises(RuleError, match=r"rule\.field\.name: unknown field 'age'"):
        define(store, TAG, {"field": {"name": "age", "equals": "30"}})
    with store.unit_of_work() as s:
        assert s.get(schema.Segment, TAG) is None
    define(store, TAG, EXAMPLE)
    with pytest.raises(RuleError, match="unknown category"):
        define(store, TAG, bad)
    with store.unit_of_work() as s:
        assert s.get(schema.Segment, TAG).rule == EXAMPLE  # type: ignore[union-attr]
