"""The lead journey's declaration: its state, its timed steps and its plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.leads import JOURNEY, LeadStage
    from domain.policy import LeadPolicy

from workflows.kit import Cadence, Deadline, Plan, moves

CONTACT_CHECKED = "contact-checked"
# A converted lead hands its opportunity on to the opportunity journey; leads
# converted on older code left it in the store alone, and replay so.
OPPORTUNITY_HANDOVER = "convert-starts-opportunity"
OWNED = (LeadStage.assigned, LeadStage.escalated, LeadStage.following_up)
ENDED = (LeadStage.converted, LeadStage.discarded, LeadStage.stale, LeadStage.merged)
OPEN = (LeadStage.new, LeadStage.pooled, *OWNED)


def first_touch(policy: LeadPolicy) -> Deadline:
    return Deadline("first_touch_missed", "first touch", within=policy.first_touch,
                    reminder_before=policy.reminder_before, reminder_step="first_touch_reminder",
                    on_miss="escalate to the owner's manager and reassign, "
                            f"{policy.max_reassignments} times; then the pool")


def follow_up(policy: LeadPolicy) -> Cadence:
    return Cadence("follow_up_missed", "follow-up", every=policy.follow_up_interval,
                   until_misses=policy.max_missed_follow_ups, then="stale")


def plan(policy: LeadPolicy | None = None) -> Plan:
    """A 24-hour first touch with a reminder 4 hours before, escalation and
    reassignment twice, then the pool; a 3-day re-follow until 5 misses."""
    policy = policy or LeadPolicy()
    stage = LeadStage
    return Plan(
        journey=JOURNEY,
        parts=(first_touch(policy), follow_up(policy)),
        start=stage.new,
        transitions=moves(
            (stage.new, "intake", stage.assigned),
            (stage.new, "intake", stage.pooled),
            (stage.new, "intake", stage.merged),
            ((stage.assigned, stage.escalated), "first_touch_missed", stage.escalated),
            ((stage.assigned, stage.escalated), "first_touch_missed", stage.pooled),
            (OWNED, "staff_deactivated", stage.escalated),
            (OWNED, "staff_deactivated", stage.pooled),
            (stage.pooled, "claim", stage.assigned),
            (OWNED, "log_contact", stage.following_up),
            (stage.following_up, "follow_up_missed", stage.stale),
            (OPEN, "convert", stage.converted),
            (OPEN, "discard", stage.discarded),
        ),
        ends=ENDED,
    )


@dataclass
class LeadState:
    lead_id: str
    stage: LeadStage = LeadStage.new
    score: int | None = None
    owner_id: str | None = None
    assigned_at: datetime | None = None
    deadline: datetime | None = None
    reminded: bool = False
    reassignments: int = 0
    previous_owners: list[str] = field(default_factory=list)
    missed_follow_ups: int = 0
    contacts: int = 0
    merged_leads: list[str] = field(default_factory=list)
    opportunity_id: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
