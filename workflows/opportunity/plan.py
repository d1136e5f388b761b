"""The opportunity journey's plan (the stall ladder, the quote follow-up, the
passed close date) and its state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.opportunities import (
        JOURNEY,
        PIPELINE,
        OpportunityPolicy,
        OpportunityStage,
    )

from workflows.kit import Ladder, Level, Plan, WaitUntil, moves

CLOSE_PASSED = WaitUntil("close_date_passed", "no decision", fact="the expected close date",
                         local_time=True)


def stalled(policy: OpportunityPolicy) -> Ladder:
    return Ladder("no activity logged in the stage", levels=(
        Level("stalled_owner", policy.stall_owner_after, "owner"),
        Level("stalled_manager", policy.stall_manager_after, "owner's manager"),
    ), sla=False)


def quote_follow_up(policy: OpportunityPolicy) -> WaitUntil:
    return WaitUntil("quote_follow_up", "quote follow-up for the owner", fact="the quote",
                     offset=policy.quote_follow_up_after)


def plan(policy: OpportunityPolicy | None = None) -> Plan:
    """Forward through needs analysis, proposal and negotiation; 7 days without
    logged activity in a stage reminds the owner, 14 days the manager; a quote
    unanswered for 3 days is followed up; a passed close date tells both; won
    starts the contract's payment journey, lost keeps its reason."""
    policy = policy or OpportunityPolicy()
    stage = OpportunityStage
    return Plan(
        journey=JOURNEY,
        parts=(stalled(policy), quote_follow_up(policy), CLOSE_PASSED),
        start=stage.needs_analysis,
        transitions=moves(
            (stage.needs_analysis, "advance", stage.proposal),
            (stage.proposal, "advance", stage.negotiation),
            (stage.needs_analysis, "advance", stage.negotiation),
            (PIPELINE, "win", stage.won),
            (PIPELINE, "lose", stage.lost),
        ),
        ends=(stage.won, stage.lost),
    )



@dataclass
class OpportunityState:
    opportunity_id: str
    customer_id: str
    owner_id: str
    currency: str
    amount: Decimal | None
    close_date: date | None
    stage: OpportunityStage = OpportunityStage.needs_analysis
    stage_entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    stall_done: int = 0  # rungs of the stall ladder done since the last activity
    close_passed_at: datetime | None = None
    close_told: bool = False
    quote_amount: Decimal | None = None
    quote_follow_up_from: datetime | None = None
    contract_id: str | None = None
    lost_reason: str | None = None
    previous_owners: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def quiet_since(self) -> datetime | None:
        """Since when the stage has had no logged activity."""
        times = [t for t in (self.stage_entered_at, self.last_activity_at) if t]
        return max(times) if times else None
