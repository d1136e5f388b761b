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
- ``{"branch": {"on": "purchase", "then": [...], "else": [...]}}``: steps by
  whether the customer has bought since entering.

The seed's "e-mail, then SMS 3 days later if no purchase" is four lines::

    {"steps": [{"message": {"channel": "email", "template": "offer"}},
               {"wait_for": {"event": "purchase", "days": 3}},
               {"message": {"channel": "sms", "template": "offer_reminder"}}]}

A customer is put in the hold-out or a variant by a hash of the campaign and
customer ids (the same answer every time, recorded when they enter). Results
per arm: conversion (an order within the attribution window after entering),
revenue per customer, and each variant's lift over the hold-out with a 95 %
confidence interval from a two-proportion test (statsmodels).

Pure models and rules; lenient at the boundary."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from domain.journeys import Lenient, Rejection
from domain.limits import Duration, Id

JOURNEY = "campaign"
HOLDOUT = "holdout"
CHANNELS = ("email", "sms", "chat")
TEMPLATE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_STEPS = 50


def campaign_workflow_id(campaign: str, customer_id: str) -> str:
    return run_workflow_id(f"{campaign}-{customer_id}")


def run_workflow_id(run: str) -> str:
    """A run's workflow id from `{campaign}-{customer_id}`."""
    return f"campaign-{run}"


class Reentry(StrEnum):
    never = "never"  # one run per customer, ever
    after_end = "after_end"  # again once the previous run has ended
    after_cooldown = "after_cooldown"  # again `cooldown_days` after it ended


class CampaignError(ValueError):
    """A declaration that cannot run; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    weight: int = Field(default=1, ge=1, le=1000)
    # step template -> this variant's template for it (an A/B test of a message)
    templates: dict[str, str] = Field(default_factory=dict)


class CampaignDefinition(_Strict):
    name: str
    description: str = Field(default="", max_length=2000)
    segment: str = Field(min_length=1, max_length=100)  # the audience
    holdout: float = Field(default=0.10, ge=0, lt=1)
    variants: list[Variant] = Field(default_factory=lambda: [Variant(name="a")], min_length=1)
    steps: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_STEPS)
    exit_on_conversion: bool = True
    attribution_days: int = Field(default=14, ge=1, le=365)
    reentry: Reentry = Reentry.never
    cooldown_days: int = Field(default=90, ge=0, le=3650)
    enabled: bool = False  # an example ships switched off


# -- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    channel: str
    template: str


@dataclass(frozen=True)
class Wait:
    days: float = 0
    until: time | None = None


@dataclass(frozen=True)
class WaitFor:
    event: str
    days: float


@dataclass(frozen=True)
class Branch:
    on: str
    then: tuple[Step, ...]
    otherwise: tuple[Step, ...]


Step = Message | Wait | WaitFor | Branch
EVENTS = ("purchase",)


def parse_steps(data: Any, at: str = "steps") -> tuple[Step, ...]:
    if not isinstance(data, list):
        raise CampaignError(f"{at}: a list of steps")
    return tuple(_step(item, f"{at}[{n}]") for n, item in enumerate(data))


def _step(item: Any, at: str) -> Step:
    if not isinstance(item, dict) or len(item) != 1:
        raise CampaignError(f"{at}: a step is an object with one key: message, wait, "
                            "wait_for or branch")
    [(kind, body)] = item.items()
    here = f"{at}.{kind}"
    if not isinstance(body, dict):
        raise CampaignError(f"{here}: an object")
    if kind == "message":
        channel, template = body.get("channel"), body.get("template")
        if channel not in CHANNELS:
            raise CampaignError(f"{here}.channel: one of {', '.join(CHANNELS)}, not {channel!r}")
        if not isinstance(template, str) or not TEMPLATE.match(template):
            raise CampaignError(f"{here}.template: a template name (a-z, 0-9, _)")
        _only(body, {"channel", "template"}, here)
        return Message(channel=channel, template=template)
    if kind == "wait":
        _only(body, {"days", "until"}, here)
        if "until" in body:
            try:
                return Wait(until=time.fromisoformat(str(body["until"])))
            except ValueError:
                raise CampaignError(f"{here}.until: a time of day, HH:MM") from None
        return Wait(days=_days(body.get("days"), here))
    if kind == "wait_for":
        _only(body, {"event", "days"}, here)
        if body.get("event") not in EVENTS:
            raise CampaignError(f"{here}.event: one of {', '.join(EVENTS)}")
        return WaitFor(event=body["event"], days=_days(body.get("days"), here))
    if kind == "branch":
        _only(body, {"on", "then", "else"}, here)
        if body.get("on") not in EVENTS:
            raise CampaignError(f"{here}.on: one of {', '.join(EVENTS)}")
        return Branch(on=body["on"], then=parse_steps(body.get("then", []), f"{here}.then"),
                      otherwise=parse_steps(body.get("else", []), f"{here}.else"))
    raise CampaignError(f"{at}: unknown step {kind!r} (message, wait, wait_for, branch)")


@dataclass(frozen=True)
class JumpUnless:
    """Go on if the event happened since entering, else jump to `target`."""

    on: str
    target: int


@dataclass(frozen=True)
class Jump:
    target: int


Instruction = Message | Wait | WaitFor | JumpUnless | Jump


def program(steps: tuple[Step, ...]) -> list[Instruction]:
    """The steps as one list a run walks with a counter: a branch becomes a
    conditional jump past its `then` and a jump past its `else`."""
    out: list[Instruction] = []

    def emit(items: tuple[Step, ...]) -> None:
        for item in items:
            if isinstance(item, Branch):
                at = len(out)
                out.append(JumpUnless(item.on, -1))
                emit(item.then)
                jump = len(out)
                out.append(Jump(-1))
                out[at] = JumpUnless(item.on, len(out))
                emit(item.otherwise)
                out[jump] = Jump(len(out))
            else:
                out.append(item)

    emit(steps)
    return out


def _only(body: dict[str, Any], keys: set[str], here: str) -> None:
    if extra := set(body) - keys:
        raise CampaignError(f"{here}: unknown field {sorted(extra)[0]!r}")


def _days(value: Any, here: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 365:
        raise CampaignError(f"{here}.days: a number of days, more than 0 and at most 365")
    return float(value)


def check_campaign(data: Any) -> CampaignDefinition:
    """The declaration, checked: its fields, its steps, its name; or
    `CampaignError` naming the first thing wrong."""
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


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmResult:
    arm: str
    customers: int
    converted: int
    revenue: Decimal

    @property
    def rate(self) -> float | None:
        return self.converted / self.customers if self.customers else None

    @property
    def revenue_per_customer(self) -> Decimal | None:
        return (self.revenue / self.customers).quantize(Decimal("0.01")) if self.customers \
            else None


@dataclass(frozen=True)
class Lift:
    """A variant's conversion rate minus the hold-out's, with its 95 %
    confidence interval (Wald, two independent proportions) and the
    two-sided p-value of the difference."""

    variant: str
    difference: float
    low: float
    high: float
    p_value: float


def lift(variant: ArmResult, holdout: ArmResult, *, alpha: float = 0.05) -> Lift | None:
    """Computed by statsmodels' two-proportion test; None when an arm is empty."""
    if not variant.customers or not holdout.customers:
        return None
    from statsmodels.stats.proportion import (  # type: ignore[import-untyped]
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    low, high = confint_proportions_2indep(variant.converted, variant.customers,
                                           holdout.converted, holdout.customers,
                                           method="wald", compare="diff", alpha=alpha)
    test = test_proportions_2indep(variant.converted, variant.customers, holdout.converted,
                                   holdout.customers, method="wald", compare="diff")
    difference = variant.converted / variant.customers - holdout.converted / holdout.customers
    return Lift(variant=variant.arm, difference=difference, low=float(low), high=float(high),
                p_value=float(test.pvalue))


# -- the journey's boundary -------------------------------------------------------------------


class CampaignInput(Lenient):
    campaign: Id
    customer_id: Id
    arm: str  # the variant (a hold-out customer gets no run)
    steps: list[dict[str, Any]]
    templates: dict[str, str] = Field(default_factory=dict)
    exit_on_conversion: bool = True
    entered_at: AwareDatetime


class Converted(Lenient):
    order_id: str = ""


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
     "reentry": "after_cooldown", "cooldown_days": 90},
    {"name": "new-customer-pack", "segment": "new-customers",
     "description": "the new-customer pack, once per customer",
     "steps": [{"wait": {"until": "10:00"}},
               {"message": {"channel": "email", "template": "new_customer_pack"}}],
     "reentry": "never"},
]
