"""Loyalty's earning rules and levels as pure rules: the base rate, member
day, birthday month and campaign multipliers (highest wins by default, or
stacked), expiry at the end of the year after earning, levels from a year's
spend or orders, anniversaries and the birthday greeting's day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.loyalty import (
    Campaign,
    LevelRule,
    LoyaltyPolicy,
    Redeem,
    Stacking,
    anniversary,
    level_for,
    next_birthday_greeting,
    order_points,
    points_expire_at,
)

WEDNESDAY = date(2026, 3, 4)
THURSDAY = date(2026, 3, 5)
POLICY = LoyaltyPolicy()


def test_one_point_per_whole_yuan_on_an_ordinary_day() -> None:
    earning = order_points(12_399, 2, THURSDAY, birth_date=date(1990, 7, 1), policy=POLICY)
    assert (earning.points, earning.multiplier, earning.reasons) == (123, 1, [])


def test_member_day_doubles_and_the_birthday_month_triples() -> None:
    assert order_points(10_000, 2, WEDNESDAY, birth_date=None, policy=POLICY).points == 200
    birthday = order_points(10_000, 2, THURSDAY, birth_date=date(1990, 3, 20), policy=POLICY)
    assert (birthday.points, birthday.reasons) == (300, ["birthday month"])


def test_member_day_in_the_birthday_month_earns_the_highest_not_both() -> None:
    both = order_points(10_000, 2, WEDNESDAY, birth_date=date(1990, 3, 20), policy=POLICY)
    assert (both.points, both.multiplier, both.reasons) == (300, 3, ["birthday month"])
    stacked = POLICY.model_copy(update={"stacking": Stacking.stack})
    assert order_points(10_000, 2, WEDNESDAY, birth_date=date(1990, 3, 20),
                        policy=stacked).points == 600


def test_campaign_weeks_and_member_dates_from_the_policy() -> None:
    policy = LoyaltyPolicy(member_weekdays=[], member_dates=[THURSDAY], campaigns=[
        Campaign(name="spring", starts_on=date(2026, 3, 2), ends_on=date(2026, 3, 8),
                 multiplier=4)])
    earning = order_points(1_000, 2, THURSDAY, birth_date=None, policy=policy)
    assert (earning.points, earning.reasons) == (40, ["campaign spring"])
    assert order_points(1_000, 2, date(2026, 3, 9), birth_date=None, policy=policy).points == 10


def test_points_expire_at_the_end_of_the_year_after_they_were_earned_locally() -> None:
    # 31 December 2026 20:00 UTC is already 2027 in Shanghai.
    assert points_expire_at(datetime(2026, 6, 1, tzinfo=UTC), "Asia/Shanghai", POLICY) == \
        datetime(2027, 12, 31, 16, 0, tzinfo=UTC)
    assert points_expire_at(datetime(2026, 12, 31, 20, 0, tzinfo=UTC), "Asia/Shanghai",
                            POLICY) == datetime(2028, 12, 31, 16, 0, tzinfo=UTC)


def test_levels_from_a_year_s_spend_or_order_count() -> None:
    assert level_for(299_999, 0, POLICY).name == "bronze"
    assert level_for(300_000, 0, POLICY).name == "silver"
    assert level_for(1_000_000, 0, POLICY).discount_percent == 20
    by_orders = LoyaltyPolicy(levels=[LevelRule(name="bronze"),
                                      LevelRule(name="silver", min_spend_minor=300_000,
                                                min_orders=12, discount_percent=10)])
    assert level_for(0, 12, by_orders).name == "silver"


def test_anniversaries_and_29_february() -> None:
    assert anniversary(datetime(2024, 2, 29, 8, tzinfo=UTC), 1) == datetime(2025, 2, 28, 8,
                                                                             tzinfo=UTC)


def test_the_birthday_greeting_on_the_month_s_first_day_once_a_year() -> None:
    born = date(1990, 5, 17)
    zone = "Asia/Shanghai"
    first = next_birthday_greeting(born, zone, datetime(2026, 3, 1, tzinfo=UTC), [], POLICY)
    assert first == datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    # Within the month's first days: now; later in the month or greeted: next year.
    inside = datetime(2026, 5, 3, 4, 0, tzinfo=UTC)
    assert next_birthday_greeting(born, zone, inside, [], POLICY) == inside
    assert next_birthday_greeting(born, zone, inside, [2026], POLICY) == \
        datetime(2027, 5, 1, 2, 0, tzinfo=UTC)
    assert next_birthday_greeting(born, zone, datetime(2026, 5, 20, tzinfo=UTC), [], POLICY) \
        == datetime(2027, 5, 1, 2, 0, tzinfo=UTC)
    assert next_birthday_greeting(None, zone, inside, [], POLICY) is None


def test_redeem_takes_for_as_the_contract_spells_it() -> None:
    assert Redeem.model_validate({"points": 5, "for": "cash off"}).for_ == "cash off"
