"""Loyalty: points, member levels on a yearly cycle, the birthday gift and
referrals, as policy data and pure rules.

Points: 1 point per yuan spent (消费1元 = 1 基础积分), doubled on member day
(会员日双倍积分), tripled in the birthday month (生日月三倍积分), campaign
weeks with their own multiplier; when several apply the policy says whether
they stack or the highest wins (default: highest). Behaviour points for a
share (50), a check-in, a survey; compensation granted by staff with a reason
(物流延迟补偿). Points expire at the end of the year after they were earned.
Levels (铜卡/银卡/金卡) come from the trailing year's spend or order count,
set at each anniversary; 30 days before it a member whose spend so far would
drop them a level is offered what keeps it (保级). Times are passed in, in
the customer's zone where the rule is local (member day, birthday month).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.journeys import Lenient, Rejection
from domain.limits import (
    DayCount,
    Duration,
    Id,
    Moment,
    Percent,
    StoreInt,
    store_limit,
    text_problem,
)

JOURNEY = "membership"
CURRENCY = "CNY"
BEHAVIOURS = ("share", "check_in", "survey")


REFERRAL_CODE = 32  # loyalty_members.referral_code
ReferralCode = Annotated[str, store_limit(lambda v: text_problem(v, REFERRAL_CODE))]


def membership_workflow_id(customer_id: str) -> str:
    return f"membership-{customer_id}"


class Stacking(StrEnum):
    highest = "highest"  # the largest multiplier that applies
    stack = "stack"  # every multiplier that applies, multiplied


class Campaign(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    starts_on: date
    ends_on: date  # inclusive
    multiplier: StoreInt = 2


class LevelRule(BaseModel):
    """A level, reached by a trailing year's spend (minor units) or order count."""

    model_config = ConfigDict(extra="ignore")

    name: str
    min_spend_minor: int = 0
    min_orders: int | None = None
    discount_percent: Percent = 0


def default_levels() -> list[LevelRule]:
    return [
        LevelRule(name="bronze", min_spend_minor=0, discount_percent=0),
        LevelRule(name="silver", min_spend_minor=300_000, discount_percent=10),
        LevelRule(name="gold", min_spend_minor=1_000_000, discount_percent=20),
    ]


class LoyaltyPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    points_per_unit: StoreInt = 1  # per whole currency unit spent
    member_weekdays: list[int] = Field(default_factory=lambda: [3])  # ISO: 3 = Wednesday
    member_dates: list[date] = Field(default_factory=list)
    member_day_multiplier: StoreInt = 2
    birthday_multiplier: StoreInt = 3
    campaigns: list[Campaign] = Field(default_factory=list)
    stacking: Stacking = Stacking.highest
    behaviour_points: dict[str, int] = Field(
        default_factory=lambda: {"share": 50, "check_in": 5, "survey": 20})
    # Points expire at the end of the year this many years after the year earned.
    expire_after_years: DayCount = 1
    expiry_reminder_before: Duration = timedelta(days=30)
    levels: list[LevelRule] = Field(default_factory=default_levels)
    retention_before: Duration = timedelta(days=30)
    retention_gift_points: StoreInt = 500
    birthday_gift_points: StoreInt = 200
    birthday_window_days: DayCount = 7  # the birthday month's first days
    birthday_hour: int = 10  # customer-local
    referrer_points: StoreInt = 500
    referee_points: StoreInt = 200
    max_history_events: int = 5000

    def level(self, name: str | None) -> LevelRule:
        ordered = self.ordered_levels()
        return next((rule for rule in ordered if rule.name == name), ordered[0])

    def ordered_levels(self) -> list[LevelRule]:
        return sorted(self.levels, key=lambda rule: rule.min_spend_minor)

    def scaled(self, factor: float) -> LoyaltyPolicy:
        if factor == 1:
            return self
        return self.model_copy(update={
            "expiry_reminder_before": self.expiry_reminder_before / factor,
            "retention_before": self.retention_before / factor,
        })


# -- pure rules ----------------------------------------------------------------------


class Earning(BaseModel):
    points: int
    base: int
    multiplier: int
    reasons: list[str] = Field(default_factory=list)


def order_points(amount_minor: int, digits: int, local_day: date, *,
                 birth_date: date | None, policy: LoyaltyPolicy) -> Earning:
    """What an order of `amount_minor` earns on the customer-local `local_day`:
    whole currency units times the base rate, times the multipliers that
    apply (the highest, or all of them multiplied, as the policy says)."""
    units = int((Decimal(amount_minor).scaleb(-digits)).to_integral_value(rounding=ROUND_DOWN))
    base = max(units, 0) * policy.points_per_unit
    applies: list[tuple[int, str]] = []
    if local_day.isoweekday() in policy.member_weekdays or local_day in policy.member_dates:
        applies.append((policy.member_day_multiplier, "member day"))
    if birth_date is not None and birth_date.month == local_day.month:
        applies.append((policy.birthday_multiplier, "birthday month"))
    for campaign in policy.campaigns:
        if campaign.starts_on <= local_day <= campaign.ends_on:
            applies.append((campaign.multiplier, f"campaign {campaign.name}"))
    if not applies:
        return Earning(points=base, base=base, multiplier=1)
    if policy.stacking is Stacking.stack:
        multiplier = 1
        for factor, _ in applies:
            multiplier *= factor
        reasons = [why for _, why in applies]
    else:
        multiplier, why = max(applies, key=lambda a: a[0])
        reasons = [why]
    return Earning(points=base * multiplier, base=base, multiplier=multiplier, reasons=reasons)


def points_expire_at(earned_at: datetime, zone: str, policy: LoyaltyPolicy) -> datetime:
    """The end of the year `expire_after_years` after the (customer-local)
    year the points were earned in: the first instant of the year after."""
    year = earned_at.astimezone(ZoneInfo(zone)).year + policy.expire_after_years + 1
    return datetime.combine(date(year, 1, 1), time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def level_for(spend_minor: int, orders: int, policy: LoyaltyPolicy) -> LevelRule:
    """The highest level the trailing year's spend or order count reaches."""
    reached = [rule for rule in policy.ordered_levels()
               if spend_minor >= rule.min_spend_minor
               or (rule.min_orders is not None and orders >= rule.min_orders)]
    return reached[-1] if reached else policy.ordered_levels()[0]


def rank(name: str | None, policy: LoyaltyPolicy) -> int:
    names = [rule.name for rule in policy.ordered_levels()]
    return names.index(name) if name in names else 0


def anniversary(joined_at: datetime, years: int) -> datetime:
    """`years` after joining (29 February falls on the 28th)."""
    try:
        return joined_at.replace(year=joined_at.year + years)
    except ValueError:
        return joined_at.replace(year=joined_at.year + years, day=28)


def next_birthday_greeting(birth_date: date | None, zone: str, now: datetime,
                           done_years: list[int], policy: LoyaltyPolicy) -> datetime | None:
    """When the next birthday greeting goes: on the first day of the birthday
    month at the policy's hour (customer-local), or now while still in that
    month's first days, for a year not yet greeted."""
    if birth_date is None:
        return None
    tz = ZoneInfo(zone)
    local_now = now.astimezone(tz)
    for year in (local_now.year, local_now.year + 1, local_now.year + 2):
        if year in done_years:
            continue
        first = datetime.combine(date(year, birth_date.month, 1),
                                 time(policy.birthday_hour), tzinfo=tz)
        window_end = datetime.combine(date(year, birth_date.month, 1), time(0), tzinfo=tz) \
            + timedelta(days=policy.birthday_window_days)
        if local_now >= window_end:
            continue
        return max(first, local_now).astimezone(UTC)
    return None


# -- the membership journey ------------------------------------------------------------


class MembershipStage(StrEnum):
    member = "member"
    retention_offered = "retention_offered"  # 保级: until the anniversary


class MemberPurchase(Lenient):
    order_id: str = ""
    amount: Decimal = Decimal(0)
    currency: str | None = None
    at: AwareDatetime | None = None
    category: str = ""
    coupon_code: str | None = None


class Refund(Lenient):
    order_id: str = ""
    reason: str = ""


class Behaviour(Lenient):
    kind: str = ""  # share, check_in, survey
    ref: str = ""  # the share, check-in or survey id: each earns once


class Grant(Lenient):
    points: int = 0
    reason: str = ""
    staff_id: str = ""
    ref: str = ""  # the grant's id: a grant told twice is one grant


class Redeem(Lenient):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    points: int = 0
    for_: str = Field(default="", alias="for")  # goods, a service, cash off
    ref: str = ""  # the redemption's id: a retried one is one redemption


class MembershipCarry(Lenient):
    """What a run hands the next at the anniversary (continue-as-new)."""

    joined_at: AwareDatetime
    cycle: int = 1  # the membership year this run serves
    level: str = "bronze"
    stage: MembershipStage = MembershipStage.member
    retention_checked_cycles: list[int] = Field(default_factory=list)
    retention_offered_cycles: list[int] = Field(default_factory=list)
    birthday_years: list[int] = Field(default_factory=list)
    referrer_id: str | None = None
    referral_rewarded: bool = False
    next_expiry_at: AwareDatetime | None = None
    expiry_reminded_for: AwareDatetime | None = None
    counters: dict[str, int] = Field(default_factory=dict)
    rejections: list[Rejection] = Field(default_factory=list)
    runs: int = 1


class MembershipInput(Lenient):
    """A customer joins the programme. `referral_code`: the code of the member
    who brought them, named at sign-up."""

    customer_id: Id
    joined_at: Moment | None = None
    birth_date: date | None = None
    referral_code: ReferralCode | None = None
    policy: LoyaltyPolicy | None = None
    carry: MembershipCarry | None = None


class MembershipStatus(Lenient):
    customer_id: str
    stage: MembershipStage
    level: str
    discount_percent: int
    joined_at: datetime
    cycle: int
    anniversary_at: datetime | None = None
    retention_offer_at: datetime | None = None
    birthday_at: datetime | None = None
    next_expiry_at: datetime | None = None
    referral_code: str | None = None
    referrer_id: str | None = None
    referral_rewarded: bool = False
    runs: int = 1
    rejections: list[Rejection] = Field(default_factory=list)
    policy: LoyaltyPolicy | None = None
