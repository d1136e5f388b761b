"""Campaigns that prove their lift: a campaign is declared as data — its
audience (a segment), a hold-out share, A/B variants with weights, and the
steps each customer's run walks — and one `CampaignJourney` per customer and
campaign walks them.

Steps (a list; each one key):

- ``{"message": {"channel": "email", "template": "offer"}}``: a marketing
  touch through the one send path (quiet hours, frequency cap, consent,
  idempotent keys), rendered from ``templates/campaign/<template>``; a
  variant may name its own template for a step (``templates`` in the variant);
- ``{"wait": {"days": 3}}`` or ``{"wait": {"until": "10:00"}}`` (the next such
  time of day in the customer's time zone);
- ``{"wait_for": {"event": "purchase", "days": 3}}``: until the customer buys
  or the days pass; a purchase is a conversion, and the run ends there unless
  the campaign says ``"exit_on_conversion": false``;
  ``{"wait_for": {"event": "reply", "days": 2}}``: until the customer replies
  to a touch (the `replied` signal, or a contact logged with them) or the
  days pass; a reply ends the wait at once;
- ``{"branch": {"on": "purchase", "then": [...], "else": [...]}}``: steps by
  whether the customer has bought (or, ``"on": "reply"``, replied) since
  entering.

The audience is a segment: its members when the campaign is launched, and
with ``"entry": "on_entry"`` (or ``"audience": {"segment": ..., "entry":
"on_entry"}``) also each customer who enters it later, enrolled by the
segment refresh after it records the entries (`activities.campaign_entry`).
A ``coupon`` (``{"percent": 15, "valid_days": 14}``) gives each run its own
unique code, issued once before its first message and carried by every one.

The seed's "e-mail, then SMS 3 days later if no purchase" is four lines::

    {"steps": [{"message": {"channel": "email", "template": "offer"}},
               {"wait_for": {"event": "purchase", "days": 3}},
               {"message": {"channel": "sms", "template": "offer_reminder"}}]}

A customer is put in the hold-out or a variant by a hash of the campaign and
customer ids (the same answer every time, recorded when they enter). Results
per arm and each variant's lift over the hold-out are `domain.campaign_results`.

Pure models and rules; lenient at the boundary."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from domain.campaign_results import ArmResult, Lift, lift
from domain.campaign_steps import (
    EVENTS,
    Branch,
    CampaignError,
    Jump,
    JumpUnless,
    Message,
    Step,
    Wait,
    WaitFor,
    parse_steps,
    program,
)
from domain.journeys import Lenient, Rejection
from domain.limits import Duration, Id

JOURNEY = "campaign"
HOLDOUT = "holdout"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_STEPS = 50


def campaign_workflow_id(campaign: str, customer_id: str) -> str:
    return run_workflow_id(f"{campaign}-{customer_id}")


def run_workflow_id(run: str) -> str:
    """A run's workflow id from `{campaign}-{customer_id}`."""
    return f"campaign-{run}"


class Entry(StrEnum):
    launch = "launch"  # the segment's members when launched
    on_entry = "on_entry"  # and each customer who enters it after


class Reentry(StrEnum):
    never = "never"  # one run per customer, ever
    after_end = "after_end"  # again once the previous run has ended
    after_cooldown = "after_cooldown"  # again `cooldown_days` after it ended


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    weight: int = Field(default=1, ge=1, le=1000)
    # step template -> this variant's template for it (an A/B test of a message)
    templates: dict[str, str] = Field(default_factory=dict)


class CouponOffer(_Strict):
    """A unique single-use code per run (the win-back's coupons)."""

    percent: int = Field(ge=1, le=90)
    valid_days: int = Field(default=14, ge=1, le=365)


class CampaignDefinition(_Strict):
    name: str
    description: str = Field(default="", max_length=2000)
    segment: str = Field(min_length=1, max_length=100)  # the audience
    entry: Entry = Entry.launch
    coupon: CouponOffer | None = None
    holdout: float = Field(default=0.10, ge=0, lt=1)
    variants: list[Variant] = Field(default_factory=lambda: [Variant(name="a")], min_length=1)
    steps: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_STEPS)
    exit_on_conversion: bool = True
    attribution_days: int = Field(default=14, ge=1, le=365)
    reentry: Reentry = Reentry.never
    cooldown_days: int = Field(default=90, ge=0, le=3650)
    enabled: bool = False  # an example ships switched off


def _audience(data: Any) -> Any:
    """``"audience": {"segment": ..., "entry": ...}`` as the two fields."""
    if not isinstance(data, dict) or "audience" not in data:
        return data
    audience = data["audience"]
    if not isinstance(audience, dict) or not set(audience) <= {"segment", "entry"}:
        raise CampaignError('audience: {"segment": NAME, "entry": "launch" or "on_entry"}')
    if "segment" in data or "entry" in data:
        raise CampaignError("audience: give the segment and entry there or beside it, "
                            "not both")
    return {**{k: v for k, v in data.items() if k != "audience"}, **audience}


def check_campaign(data: Any) -> CampaignDefinition:
    """The declaration, checked: its fields, its steps, its name; or
    `CampaignError` naming the first thing wrong."""
    data = _audience(data)
    try:
        definition = CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CampaignError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    if not NAME.match(definition.name):
        raise CampaignError(f"name: a-z, 0-9, - and _, at most 40: {definition.name!r}")
    if len({v.name for v in definition.variants}) != len(definition.variants) or \
            any(v.name == HOLDOUT for v in definition.variants):
        raise CampaignError(f"variants: names are unique and not {HOLDOUT!r}")
    parse_steps(definition.steps)
    return definition


# -- who gets what -------------------------------------------------------------------------


def _unit(campaign: str, customer_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{campaign}\x00{customer_id}\x00{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm(definition: CampaignDefinition, customer_id: str) -> str:
    """The hold-out or the variant the customer is in: chosen by a hash of the
    campaign and the customer, so the same every time it is asked."""
    if _unit(definition.name, customer_id, "holdout") < definition.holdout:
        return HOLDOUT
    total = sum(v.weight for v in definition.variants)
    point = _unit(definition.name, customer_id, "variant") * total
    for variant in definition.variants:
        point -= variant.weight
        if point < 0:
            return variant.name
    return definition.variants[-1].name


# -- the journey's boundary -------------------------------------------------------------------


class CouponTerms(Lenient):
    """A run's coupon, as its declaration's `coupon` gave it."""

    percent: int = Field(ge=1, le=90)
    valid_days: int = Field(default=14, ge=1, le=365)


class CampaignInput(Lenient):
    campaign: Id
    customer_id: Id
    arm: str  # the variant (a hold-out customer gets no run)
    steps: list[dict[str, Any]]
    templates: dict[str, str] = Field(default_factory=dict)
    exit_on_conversion: bool = True
    entered_at: AwareDatetime
    coupon: CouponTerms | None = None
    # The customer's run of the campaign: a run after the first names its
    # touches apart (`r2_0_email`), as its workflow id is the first's.
    run: int = 1


class Converted(Lenient):
    order_id: str = ""


class Replied(Lenient):
    """The customer answered a touch (the channel's inbound hook tells the run)."""

    channel: str = ""
    at: AwareDatetime | None = None


class RunReplied(Lenient):
    campaign: str
    customer_id: str
    workflow_id: str
    channel: str = ""
    at: AwareDatetime
    n: int  # the run's replies so far, this one included (one record each)


class ReplyCheck(Lenient):
    customer_id: str
    since: AwareDatetime


class ReplyFound(Lenient):
    at: AwareDatetime | None = None  # the first contact logged since, if any


class CampaignStage(StrEnum):
    running = "running"
    converted = "converted"
    completed = "completed"  # walked every step without converting


class CampaignTouch(Lenient):
    campaign: str
    customer_id: str
    workflow_id: str
    step: str
    now: AwareDatetime


class PurchaseCheck(Lenient):
    customer_id: str
    since: AwareDatetime


class PurchaseFound(Lenient):
    order_id: str | None = None


class LocalTime(Lenient):
    customer_id: str
    until: str  # HH:MM
    now: AwareDatetime


class NextTime(Lenient):
    at: AwareDatetime


class RunEnded(Lenient):
    campaign: str
    customer_id: str
    workflow_id: str
    outcome: CampaignStage
    order_id: str | None = None
    now: AwareDatetime


class CampaignName(Lenient):
    campaign: str


class CampaignNames(Lenient):
    campaigns: list[str] = Field(default_factory=list)


class EnrolRequest(Lenient):
    """Enrol the customers who entered the campaign's segment since it last
    looked; `now` is the entry time of their runs (the same on a retry)."""

    campaign: str
    now: AwareDatetime


class Enrolled(Lenient):
    campaign: str
    arms: dict[str, int] = Field(default_factory=dict)  # entered per arm
    started: int = 0  # runs started (a retry finds them started)


class CampaignState(Lenient):
    status: str | None = None  # off, active, paused; None: no such campaign


class CampaignPolicy(Lenient):
    """How often a run held by a paused campaign asks again."""

    paused_recheck: Duration = timedelta(hours=6)

    def scaled(self, factor: float) -> CampaignPolicy:
        return self if factor == 1 else self.model_copy(
            update={"paused_recheck": self.paused_recheck / factor})


class CampaignStatus(Lenient):
    campaign: str
    customer_id: str
    arm: str
    stage: CampaignStage
    step: int  # the index of the step it is at
    converted_by: str | None = None
    replied_at: datetime | None = None
    coupon_code: str | None = None
    touches: list[str] = Field(default_factory=list)
    waiting_until: datetime | None = None
    rejections: list[Rejection] = Field(default_factory=list)


def wait_span(days: float) -> timedelta:
    return timedelta(days=days)


# -- the two examples (switched off: `crm campaign examples` defines them, off) ----------------

EXAMPLE_SEGMENTS: list[dict[str, Any]] = [
    {"name": "no-repurchase-90d", "description": "bought in the year, nothing in 90 days",
     "rule": {"all": [{"orders": {"within_days": 365}},
                      {"orders": {"within_days": 90, "max_count": 0}}]}},
    {"name": "new-customers", "description": "first purchase within 30 days (RFM tier new)",
     "rule": {"tier": "new"}},
]
EXAMPLE_CAMPAIGNS: list[dict[str, Any]] = [
    {"name": "no-repurchase-coupon", "segment": "no-repurchase-90d",
     "description": "a coupon to customers with no repurchase in 90 days: e-mail, then SMS "
                    "3 days later if they have not bought",
     "steps": [{"message": {"channel": "email", "template": "repurchase_coupon"}},
               {"wait_for": {"event": "purchase", "days": 3}},
               {"message": {"channel": "sms", "template": "repurchase_coupon_reminder"}}],
     "coupon": {"percent": 15, "valid_days": 14},
     "reentry": "after_cooldown", "cooldown_days": 90},
    {"name": "new-customer-pack", "segment": "new-customers",
     "description": "the new-customer pack, once per customer",
     "steps": [{"wait": {"until": "10:00"}},
               {"message": {"channel": "email", "template": "new_customer_pack"}}],
     "reentry": "never"},
]


__all__ = ["EVENTS", "HOLDOUT", "JOURNEY", "ArmResult", "Branch", "CampaignDefinition",
           "CampaignError", "CouponOffer", "CouponTerms", "Entry", "Jump", "JumpUnless", "Lift",
           "Message", "Step", "Wait", "WaitFor",
           "arm", "check_campaign", "lift", "parse_steps", "program"]
