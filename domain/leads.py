"""Lead journey boundary models: start input, signals, activity payloads, status.

Boundary models are lenient (extra fields ignored, rules checked by the journey
and its activities, not here) because replay re-decodes old signals with new
code. The start input alone carries the store's limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, Field

from domain.journeys import Decision, Lenient, Rejection, RejectionRecord, StaffDeactivated
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
from domain.vocabulary import CONTACT_CHANNELS

__all__ = [
    "JOURNEY",
    "OPEN_STAGES",
    "AssignRequest",
    "AssignResult",
    "Claim",
    "ClaimRequest",
    "ContactChannel",
    "ContactRequest",
    "Convert",
    "ConvertRequest",
    "Discard",
    "EscalateRequest",
    "EscalateResult",
    "FollowUpMissed",
    "IntakeRequest",
    "IntakeResult",
    "LeadInput",
    "LeadStage",
    "LeadStatus",
    "LogContact",
    "Merge",
    "StageChange",
    "contact_problem",
    "lead_workflow_id",
    # Shared by every journey and defined in domain/journeys.py; still
    # importable from here so that older imports keep working.
    "Decision",
    "Rejection",
    "RejectionRecord",
    "StaffDeactivated",
]

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


class LeadInput(Lenient):
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


class Claim(Lenient):
    owner_id: str = ""


ContactChannel = StrEnum("ContactChannel", {c: c for c in CONTACT_CHANNELS})  # type: ignore[misc]
ContactChannel.__doc__ = "How a rep reached a lead."


def contact_problem(contact: LogContact) -> str | None:
    """What is wrong with a logged contact in itself, whoever owns the lead."""
    if not contact.owner_id:
        return "owner_id is required"
    if contact.channel not in {c.value for c in ContactChannel}:
        return (f"channel {contact.channel!r} is not one of: "
                + ", ".join(c.value for c in ContactChannel))
    return None


class LogContact(Lenient):
    owner_id: str = ""
    channel: str = ""
    note: str | None = None
    at: AwareDatetime | None = None


class Convert(Lenient):
    opportunity_name: str | None = None
    amount: Decimal | None = None
    currency: str = "CNY"


class Discard(Lenient):
    reason: str = ""


class Merge(Lenient):
    lead_id: str = ""


# Activity payloads -------------------------------------------------------


class IntakeRequest(Lenient):
    lead: LeadInput
    workflow_id: str
    now: AwareDatetime


class AssignRequest(Lenient):
    lead_id: str
    workflow_id: str
    now: AwareDatetime
    first_touch: timedelta
    exclude: list[str] = Field(default_factory=list)
    reason: str = "intake"
    n: int = 1


class AssignResult(Lenient):
    owner_id: str | None
    due_at: AwareDatetime | None = None
    pool_manager_id: str | None = None


class IntakeResult(Lenient):
    lead_id: str
    score: int
    duplicate_of: str | None = None
    customer_id: str | None = None
    # The first assignment, when intake and assignment were one activity.
    assignment: AssignResult | None = None


class IntakeAndAssign(Lenient):
    """A new lead's intake and, unless it duplicates an open lead, its first
    assignment, as one activity."""

    intake: IntakeRequest
    assign: AssignRequest


class ClaimRequest(Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    now: AwareDatetime
    first_touch: timedelta
    n: int = 1


class EscalateRequest(Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    now: AwareDatetime
    level: int
    reason: str


class EscalateResult(Lenient):
    manager_id: str | None


class ContactRequest(Lenient):
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


class FollowUpMissed(Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str
    due_at: AwareDatetime | None
    interval: timedelta
    now: AwareDatetime
    n: int


class StageChange(Lenient):
    lead_id: str
    workflow_id: str
    stage: LeadStage
    now: AwareDatetime
    step: str
    n: int = 1
    reason: str | None = None


class ConvertRequest(Lenient):
    lead_id: str
    workflow_id: str
    owner_id: str | None
    opportunity_name: str | None
    amount: Decimal | None
    currency: str
    now: AwareDatetime


class LeadStatus(Lenient):
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
