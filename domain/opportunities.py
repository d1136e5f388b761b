"""Opportunity pipeline: 需求调研 needs analysis → 方案报价 proposal → 谈判签约
negotiation, then won (a contract and its payment journey) or lost (with a
reason code kept for analysis).

Pure rules (no I/O, no clock) and the journey's boundary models; lenient at the
boundary (extra fields ignored; rules checked by the journey and its activities).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, Field, ValidationInfo, model_validator

from domain import limits
from domain.journeys import Lenient, Rejection
from domain.limits import Currency, Duration, Id, Moment, Name
from domain.payments import MilestoneRule

JOURNEY = "opportunity"


def opportunity_workflow_id(opportunity_id: str) -> str:
    return f"opportunity-{opportunity_id}"


def contract_id_for(opportunity_id: str) -> str:
    """A won opportunity's contract: one per opportunity, by construction."""
    return opportunity_id


class OpportunityStage(StrEnum):
    needs_analysis = "needs_analysis"  # 需求调研
    proposal = "proposal"  # 方案报价
    negotiation = "negotiation"  # 谈判签约
    won = "won"
    lost = "lost"


PIPELINE: tuple[OpportunityStage, ...] = (
    OpportunityStage.needs_analysis, OpportunityStage.proposal, OpportunityStage.negotiation)
CLOSED: tuple[OpportunityStage, ...] = (OpportunityStage.won, OpportunityStage.lost)

# 竞品报价低, 预算不足, 需求不匹配, 决策搁置, 时机不对, 联系不上
DEFAULT_LOST_REASONS = ("competitor_cheaper", "no_budget", "requirements_mismatch",
                        "no_decision", "bad_timing", "unreachable")


class OpportunityPolicy(Lenient):
    """Stalled-deal nudges, the quote follow-up and the lost reasons."""

    stall_owner_after: Duration = timedelta(days=7)
    stall_manager_after: Duration = timedelta(days=14)
    quote_follow_up_after: Duration = timedelta(days=3)
    lost_reasons: list[str] = Field(default_factory=lambda: list(DEFAULT_LOST_REASONS))
    activity_kinds: list[str] = Field(
        default_factory=lambda: ["call", "visit", "meeting", "email", "chat", "demo"])

    def scaled(self, factor: float) -> OpportunityPolicy:
        if factor == 1:
            return self
        return self.model_copy(update={
            "stall_owner_after": self.stall_owner_after / factor,
            "stall_manager_after": self.stall_manager_after / factor,
            "quote_follow_up_after": self.quote_follow_up_after / factor})


def stage_move_problem(current: OpportunityStage, target: str, reason: str | None) -> str | None:
    """Why an opportunity cannot move from `current` to `target`, or None.
    Forward only; skipping a stage needs a reason."""
    names = [s.value for s in PIPELINE]
    if current in CLOSED:
        return f"the opportunity is {current.value}"
    if target not in names:
        return f"unknown stage {target!r}: expected one of {', '.join(names)}"
    here, there = names.index(current.value), names.index(target)
    if there <= here:
        return f"stages move forward only: the opportunity is in {current.value}"
    if there > here + 1 and not (reason or "").strip():
        skipped = ", ".join(names[here + 1:there])
        return f"moving to {target} skips {skipped}: a reason is required"
    return None


def lost_reason_problem(reason_code: str, policy: OpportunityPolicy) -> str | None:
    if not reason_code.strip():
        return ("a reason code is required (one of " + ", ".join(policy.lost_reasons)
                + "); a note alone is not enough")
    if reason_code not in policy.lost_reasons:
        return (f"unknown reason code {reason_code!r}: expected one of "
                + ", ".join(policy.lost_reasons))
    return None


def amount_problem(amount: Decimal | None, currency: str) -> str | None:
    if amount is None:
        return None
    if amount <= 0:
        return f"amount {amount} must be positive"
    return limits.amount_problem(amount, currency)


# -- the start input and the signals ----------------------------------------------------


class OpportunityInput(Lenient):
    """A new opportunity: from a converted lead or started directly. Its values
    must fit the store (domain/limits.py)."""

    opportunity_id: Id
    customer_id: Id
    owner_id: Id
    name: Name | None = None
    amount: Decimal | None = None
    currency: Currency = "CNY"
    close_date: date | None = None
    lead_id: Id | None = None
    policy: OpportunityPolicy | None = None

    @model_validator(mode="after")
    def _amount_fits(self, info: ValidationInfo) -> OpportunityInput:
        if limits.limits_apply(info) and (problem := amount_problem(self.amount, self.currency)):
            raise ValueError(f"amount: {problem}")
        return self


class Advance(Lenient):
    stage: str = ""
    note: str | None = None
    reason: str | None = None  # why a stage is skipped


class UpdateForecast(Lenient):
    amount: Decimal | None = None
    close_date: date | None = None


class LogActivity(Lenient):
    owner_id: str = ""
    kind: str = ""
    note: str | None = None


class QuoteItem(Lenient):
    name: str = ""
    amount: Decimal | None = None
    quantity: int = 1


class SendQuote(Lenient):
    amount: Decimal | None = None
    valid_until: date | None = None
    items: list[QuoteItem] = Field(default_factory=list)


class WinContract(Lenient):
    amount: Decimal | None = None
    currency: str = "CNY"
    milestones: list[MilestoneRule] | None = None
    signed_at: AwareDatetime | None = None


class Win(Lenient):
    contract: WinContract | None = None


class Lose(Lenient):
    reason_code: str = ""
    note: str | None = None


# -- activity payloads -------------------------------------------------------------------


class OpenRequest(Lenient):
    opportunity: OpportunityInput
    workflow_id: str
    now: AwareDatetime


class Opened(Lenient):
    """What the store worked out at opening: the customer's zone and, with an
    expected close date, the moment it has passed (local midnight after it)."""

    timezone: str
    close_passed_at: AwareDatetime | None = None
    stage: OpportunityStage = OpportunityStage.needs_analysis


class StageMove(Lenient):
    opportunity_id: str
    workflow_id: str
    stage: OpportunityStage
    note: str | None = None
    reason: str | None = None
    by: str | None = None
    now: AwareDatetime
    n: int


class ForecastChange(Lenient):
    opportunity_id: str
    workflow_id: str
    amount: Decimal | None = None
    close_date: date | None = None
    now: AwareDatetime
    n: int


class ActivityRecord(Lenient):
    opportunity_id: str
    workflow_id: str
    owner_id: str
    kind: str
    note: str | None = None
    now: AwareDatetime
    n: int


class QuoteRecord(Lenient):
    opportunity_id: str
    workflow_id: str
    amount: Decimal
    currency: str
    valid_until: date | None = None
    items: list[QuoteItem] = Field(default_factory=list)
    now: AwareDatetime
    n: int


class StallNotice(Lenient):
    opportunity_id: str
    workflow_id: str
    owner_id: str
    level: int  # 1 the owner, 2 the owner's manager; 0 the close date passed
    now: AwareDatetime
    n: int


class StallTargets(Lenient):
    manager_id: str | None = None


class WinRecord(Lenient):
    opportunity_id: str
    workflow_id: str
    contract_id: str
    customer_id: str
    owner_id: str
    amount: Decimal
    currency: str
    signed_at: AwareDatetime
    milestones: list[MilestoneRule] | None = None
    now: AwareDatetime


class LossRecord(Lenient):
    opportunity_id: str
    workflow_id: str
    reason_code: str
    note: str | None = None
    now: AwareDatetime


class OwnerHandover(Lenient):
    opportunity_id: str
    workflow_id: str
    from_owner_id: str
    now: AwareDatetime
    n: int


class NewOwner(Lenient):
    owner_id: str | None = None


class LeadHandover(Lenient):
    """A converted lead hands its opportunity (created by the conversion) on
    to the opportunity journey, with the lead's owner, customer and amount."""

    opportunity_id: str
    lead_workflow_id: str


class OpportunityStatus(Lenient):
    opportunity_id: str
    customer_id: str
    owner_id: str
    stage: OpportunityStage
    amount: Decimal | None = None
    currency: str = "CNY"
    close_date: date | None = None
    stage_entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    quote_amount: Decimal | None = None
    contract_id: str | None = None
    lost_reason: str | None = None
    waiting_for: str | None = None
    deadline: datetime | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    policy: OpportunityPolicy | None = None


__all__ = ["Moment"]
