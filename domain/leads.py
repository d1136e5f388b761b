"""Lead journey boundary models: start input, signals, activity payloads, status.

Boundary models are lenient (extra fields ignored, rules checked by the journey
and its activities, not here) because replay re-decodes old signals with new
code. The start input alone carries the store's limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.limits import (
    Email,
    FreeText,
    Id,
    Locale,
    Name,
    Phone,
    ProductLine,
    Region,
    Source,
    Timezone,
)
from domain.policy import LeadPolicy

JOURNEY = "lead"


def lead_workflow_id(lead_id: str) -> str:
    return f"lead-{lead_id}"


class LeadStage(StrEnum):
    new = "new"
    pooled = "pooled"
    assigned = "assigned"
    escalated = "escalated"
    following_up = "following_up"
    converted = "converted"
    discarded = "discarded"
    stale = "stale"
    merged = "merged"


OPEN_STAGES = (
    LeadStage.new,
    LeadStage.pooled,
    LeadStage.assigned,
    LeadStage.escalated,
    LeadStage.following_up,
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LeadInput(_Lenient):
    """A new lead. Its values must fit the store (domain/limits.py): a start
    that cannot be written fails at once rather than retrying for ever."""

    lead_id: Id
    name: Name
    phone: Phone | None = None
    email: Email | None = None
    company: Name | None = None
    region: Region
    product_line: ProductLine
    source: Source
    need: FreeText | None = None
    locale: Locale | None = None
    timezone: Timezone | None = None
    policy: LeadPolicy | None = None


# Signals -----------------------------------------------------------------


class Claim(_Lenient):
    owner_id: str = ""


class ContactChannel(StrEnum):
    """How a rep reached a lead."""

    phone = "phone"
    email = "email"
    sms = "sms"
    chat = "chat"
    wechat = "wechat"
    visit = "visit"
    meeting = "meeting"


def contact_problem(contact: LogContact) -> str | None:
    """What is wrong with a logged contact in itself, whoever owns the lead."""
    if not contact.owner_id:
        return "owner_id is required"
    if contact.channel not in {c.value for c in ContactChannel}:
        return (f"channel {contact.channel!r} is not one of: "
                + ", ".join(c.value for c in ContactChannel))
    return None


class LogContact(_Lenient):
    owner_id: str = ""
    channel: str = ""
    note: str | None = None
    at: AwareDatetime | None = None


class Convert(_Lenient):
    opportunity_name: str | None = None
    amount: Decimal | None = None
    currency: str = "CNY"


class Discard(_Lenient):
    reason: str = ""


class Merge(_Lenient):
    lead_id: str = ""


class StaffDeactivated(_Lenient):
    staff_id: str = ""


# Activity payloads -------------------------------------------------------


class IntakeRequest(_Lenient):
    lead: LeadInput
    workflow_id: str
    now: AwareDatetime


class IntakeResult(_Lenient):
    lead_id: str
    score: int
    duplicate_of: str | None = None
    customer_id: str | None = None


class AssignRequest(_Lenient):
    lead_id: str
    workflow_id: str
    now: AwareDatetime
    first_touch: timedelta
    exclude: list[str] = Field(default_factory=list)
    reason: str = "intake"
    n: int = 1


class AssignResult(_Lenient):
    owner_id: str | None
    due_at: AwareDatetime | None = None
    pool_manager_id: str | None = None


class ClaimRequest(_Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    now: AwareDatetime
    first_touch: timedelta
    n: int = 1


class Decision(_Lenient):
    """An activity's answer to a request a person made: accepted, or why not."""

    accepted: bool
    reason: str | None = None
    due_at: AwareDatetime | None = None
    at: AwareDatetime | None = None


class EscalateRequest(_Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    now: AwareDatetime
    level: int
    reason: str


class EscalateResult(_Lenient):
    manager_id: str | None


class ContactRequest(_Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    channel: str
    note: str | None = None
    at: AwareDatetime | None = None
    now: AwareDatetime
    assigned_at: AwareDatetime
    follow_up: timedelta
    n: int


class FollowUpMissed(_Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    due_at: AwareDatetime | None
    interval: timedelta
    now: AwareDatetime
    n: int


class StageChange(_Lenient):
    lead_id: str
    workflow_id: str
    stage: LeadStage
    now: AwareDatetime
    step: str
    n: int = 1
    reason: str | None = None


class ConvertRequest(_Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str | None
    opportunity_name: str | None
    amount: Decimal | None
    currency: str
    now: AwareDatetime


class Rejection(_Lenient):
    signal: str
    reason: str
    at: AwareDatetime
    payload: dict[str, object] = Field(default_factory=dict)


class RejectionRecord(_Lenient):
    workflow_id: str
    journey: str
    entity_id: str
    rejection: Rejection
    n: int


class LeadStatus(_Lenient):
    lead_id: str
    stage: LeadStage
    owner_id: str | None = None
    score: int | None = None
    waiting_for: str | None = None
    deadline: datetime | None = None
    reassignments: int = 0
    previous_owners: list[str] = Field(default_factory=list)
    merged_leads: list[str] = Field(default_factory=list)
    missed_follow_ups: int = 0
    contacts: int = 0
    opportunity_id: str | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    policy: LeadPolicy | None = None
