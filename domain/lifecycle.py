"""Customer lifecycle: RFM tiers and the dormant win-back.

`rfm_tier` is the tier table of docs/design.md as a pure rule; the store's daily
sweep computes the same rule set-based in SQL (activities/rfm.py), and the
tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.journeys import Lenient, Rejection
from domain.limits import DayCount, Duration, Id, Percent, PlainAmount

JOURNEY = "lifecycle"


def customer_workflow_id(customer_id: str) -> str:
    return f"customer-{customer_id}"


class Tier(StrEnum):
    core = "core"
    potential = "potential"
    new = "new"
    dormant = "dormant"
    lost = "lost"
    regular = "regular"


class RfmPolicy(BaseModel):
    """Thresholds of the tier table; F and M over the trailing window."""

    model_config = ConfigDict(extra="ignore")

    window_days: DayCount = 365
    core_recency_days: DayCount = 30
    core_frequency: int = 5
    core_monetary: PlainAmount = Decimal(500)
    potential_recency_days: DayCount = 90
    potential_frequency: int = 3
    potential_monetary: PlainAmount = Decimal(200)
    new_within_days: DayCount = 30
    dormant_recency_days: DayCount = 180
    dormant_frequency: int = 1
    dormant_monetary: PlainAmount = Decimal(100)
    # Tiers whose entry carries a strategy, sent to the lifecycle journey.
    strategy_tiers: list[Tier] = Field(default_factory=lambda: [Tier.core, Tier.potential])


@dataclass(frozen=True)
class Figures:
    """R in whole days, F and M over the trailing window; first-purchase age in days."""

    recency_days: int | None
    frequency: int
    monetary: Decimal
    first_purchase_days: int | None


def rfm_tier(f: Figures, policy: RfmPolicy | None = None) -> Tier | None:
    """First match wins; a customer who never bought has no tier."""
    p = policy or RfmPolicy()
    if f.recency_days is None:
        return None
    r = f.recency_days
    if r < p.core_recency_days and f.frequency >= p.core_frequency \
            and f.monetary >= p.core_monetary:
        return Tier.core
    if r < p.potential_recency_days and f.frequency >= p.potential_frequency \
            and f.monetary >= p.potential_monetary:
        return Tier.potential
    if f.first_purchase_days is not None and f.first_purchase_days < p.new_within_days:
        return Tier.new
    if meets_dormant_rule(f, p):
        return Tier.dormant
    if r >= p.dormant_recency_days or f.frequency == 0:
        return Tier.lost
    return Tier.regular


def meets_dormant_rule(f: Figures, policy: RfmPolicy | None = None) -> bool:
    p = policy or RfmPolicy()
    return (f.recency_days is not None and f.recency_days >= p.dormant_recency_days
            and f.frequency >= p.dormant_frequency and f.monetary >= p.dormant_monetary)


def local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def business_day(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


def figures_at(orders: list[tuple[datetime, Decimal]], *, today: date, zone: str,
               policy: RfmPolicy | None = None) -> Figures:
    """R/F/M as of the business day `today` from (time, amount) pairs; R counts
    whole days between local dates, the window is the trailing `window_days`
    local days ending today."""
    p = policy or RfmPolicy()
    if not orders:
        return Figures(None, 0, Decimal(0), None)
    window_start = local_midnight(today - timedelta(days=p.window_days - 1), zone)
    end = local_midnight(today + timedelta(days=1), zone)
    past = [(at, amount) for at, amount in orders if at < end]
    if not past:
        return Figures(None, 0, Decimal(0), None)
    last = max(at for at, _ in past)
    first = min(at for at, _ in past)
    in_window = [amount for at, amount in past if at >= window_start]
    return Figures(
        recency_days=(today - business_day(last, zone)).days,
        frequency=len(in_window),
        monetary=sum(in_window, Decimal(0)),
        first_purchase_days=(today - business_day(first, zone)).days,
    )


# -- the lifecycle journey ---------------------------------------------------------


class LifecycleStage(StrEnum):
    prospect = "prospect"  # never bought
    active = "active"
    winback_first = "winback_first"
    winback_second = "winback_second"
    lost = "lost"


class LifecyclePolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dormant_after: Duration = timedelta(days=180)
    second_touch_after: Duration = timedelta(days=14)
    lost_after: Duration = timedelta(days=30)
    first_offer_percent: Percent = 10
    second_offer_percent: Percent = 20
    coupon_valid_for: Duration = timedelta(days=14)
    community_coupon_percent: Percent = 5
    # Continue as new after this many history events (or when the server says so).
    max_history_events: int = 5000
    rfm: RfmPolicy = Field(default_factory=RfmPolicy)

    def scaled(self, factor: float) -> LifecyclePolicy:
        if factor == 1:
            return self
        return self.model_copy(update={
            "dormant_after": self.dormant_after / factor,
            "second_touch_after": self.second_touch_after / factor,
            "lost_after": self.lost_after / factor,
            "coupon_valid_for": self.coupon_valid_for / factor,
        })


class Purchase(Lenient):
    order_id: str = ""
    amount: Decimal = Decimal(0)
    category: str = ""
    at: AwareDatetime | None = None
    currency: str | None = None
    coupon_code: str | None = None


class OptOut(Lenient):
    channel: str | None = None


class TierChanged(Lenient):
    tier: str = ""
    # The tier outbox row that announced the change. The outbox tells each
    # change at least once; a journey acts on a change only once.
    change: int | None = None


class LifecycleCarry(Lenient):
    """What a continued-as-new run takes over from the previous one."""

    stage: LifecycleStage
    last_purchase_at: AwareDatetime | None = None
    dormant_at: AwareDatetime | None = None
    next_step_at: AwareDatetime | None = None
    tier: str | None = None
    tier_change: int | None = None  # the last tier outbox row acted on
    orders: int = 0
    campaign: list[str] = Field(default_factory=list)  # coupon codes of the open win-back
    credited: int = 0
    counters: dict[str, int] = Field(default_factory=dict)
    rejections: list[Rejection] = Field(default_factory=list)
    runs: int = 1


class LifecycleInput(Lenient):
    """The customer's journey. `customer_id` and `policy` must fit the store
    (domain/limits.py); `carry` is the journey's own state, handed from one run
    to the next, and is taken as it comes."""

    customer_id: Id
    policy: LifecyclePolicy | None = None
    carry: LifecycleCarry | None = None


class PurchaseRequest(Lenient):
    customer_id: str
    workflow_id: str
    purchase: Purchase
    currency: str
    campaign: list[str] = Field(default_factory=list)
    now: AwareDatetime


class PurchaseResult(Lenient):
    duplicate: bool = False
    last_purchase_at: AwareDatetime | None = None
    orders: int = 0
    favourite_category: str | None = None
    credited_coupon: str | None = None
    credited_touch: str | None = None


class DormancyCheck(Lenient):
    customer_id: str
    workflow_id: str
    now: AwareDatetime
    rfm: RfmPolicy


class DormancyResult(Lenient):
    meets_rule: bool
    frequency: int
    monetary: Decimal
    recency_days: int | None
    favourite_category: str | None = None


class CouponRequest(Lenient):
    customer_id: str
    key: str
    campaign: str
    percent: int
    valid_for: timedelta
    now: AwareDatetime


class Coupon(Lenient):
    code: str
    percent: int
    expires_at: AwareDatetime


class LifecycleMark(Lenient):
    customer_id: str
    workflow_id: str
    state: str
    step: str
    n: int
    now: AwareDatetime
    reason: str | None = None


class OptOutRequest(Lenient):
    customer_id: str
    channel: str | None
    now: AwareDatetime


class AdvisorRequest(Lenient):
    customer_id: str
    workflow_id: str
    now: AwareDatetime


class AdvisorResult(Lenient):
    advisor_id: str | None


class AdvisorHandoverRequest(Lenient):
    """An exclusive advisor was deactivated: hand the customer on. `tier` is the
    one the journey was told; the store's tier, where the sweep wrote one, wins."""

    customer_id: str
    workflow_id: str
    staff_id: str
    tier: str | None = None
    n: int
    now: AwareDatetime


class AdvisorHandover(Lenient):
    """What the hand-over did. `held` is False when `staff_id` was not this
    customer's advisor (nothing changed); otherwise `advisor_id` is the new
    advisor, or None when the advisor was cleared: the customer is no longer
    core (`core` False), or no active advisor was left (`manager_id`, the
    deactivated advisor's active manager, is then told)."""

    held: bool
    core: bool = False
    advisor_id: str | None = None
    manager_id: str | None = None


class LifecycleStatus(Lenient):
    customer_id: str
    stage: LifecycleStage
    tier: str | None = None
    last_purchase_at: datetime | None = None
    dormant_at: datetime | None = None
    next_step_at: datetime | None = None
    orders: int = 0
    campaign: list[str] = Field(default_factory=list)
    credited: int = 0
    runs: int = 1
    rejections: list[Rejection] = Field(default_factory=list)
    policy: LifecyclePolicy | None = None
