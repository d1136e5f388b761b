"""The ticket journey's declaration: its state, its clock (the timed steps whose
times the store works out) and its plan."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.sla import SlaClock
    from domain.ticket_status import EscalationInfo
    from domain.tickets import (
        JOURNEY,
        EscalationKind,
        Priority,
        SlaDeadlines,
        TicketPolicy,
        TicketStage,
        TicketType,
    )

from workflows.kit import Deadline, Ladder, Level, Plan, StepsPerWake, WaitUntil, moves

FIRST_RESPONSE, RESOLUTION, LOW_RATING = (EscalationKind.first_response,
                                          EscalationKind.resolution, EscalationKind.low_rating)
LOW_RATING_NOTICE = "low-rating-notice"
# Tickets take `transfer`; older ones refused it as a signal they did not
# take, and replay so.
TICKET_TRANSFER = "ticket-transfer"
# Tickets started since publish CrmStep whenever it changes; older ones with
# their other attributes, as they ran.
STEP_PUBLISHED = "ticket-step-published"
OPEN = (TicketStage.awaiting_response, TicketStage.escalated_supervisor,
        TicketStage.escalated_manager, TicketStage.in_progress, TicketStage.waiting_on_customer)


@dataclass(frozen=True)
class TicketClock:
    """The ticket's timed steps; the times themselves come from the store."""

    first_response: Deadline
    first_response_ladder: Ladder
    resolution_ladder: Ladder
    survey: WaitUntil
    close: WaitUntil

    @classmethod
    def of(cls, policy: TicketPolicy) -> TicketClock:
        def ladder(what: str, prefix: str) -> Ladder:
            return Ladder(what, (Level(f"{prefix}_supervisor", timedelta(0), "group's supervisor"),
                                 Level(f"{prefix}_manager", policy.manager_after, "manager")))
        return cls(
            first_response=Deadline("first_response_supervisor", "first response",
                                    within=policy.first_response,
                                    reminder_before=policy.warning_before,
                                    reminder_step="warning"),
            first_response_ladder=ladder("first response", "first_response"),
            resolution_ladder=replace(
                ladder("resolution target (by priority, on the SLA clock)", "resolution"),
                wait="resolution"),
            survey=WaitUntil("survey", "satisfaction survey", fact="the resolution",
                             offset=policy.survey_after),
            close=WaitUntil("close", "closed without a rating", fact="the survey",
                            offset=policy.close_after_survey),
        )


def plan(policy: TicketPolicy | None = None) -> Plan:
    """A 15-minute first response with a warning 5 minutes before, then the
    supervisor and 15 minutes later the manager; the resolution target by
    priority on an SLA clock that pauses while waiting on the customer, with
    the same ladder; a survey 7 days after resolution, closed 3 days later."""
    clock = TicketClock.of(policy or TicketPolicy())
    stage = TicketStage
    return Plan(
        journey=JOURNEY,
        parts=(clock.first_response, clock.first_response_ladder, clock.resolution_ladder,
               clock.survey, clock.close),
        start=stage.new,
        transitions=moves(
            (stage.new, "intake", stage.awaiting_response),
            (stage.awaiting_response, "first_response_supervisor", stage.escalated_supervisor),
            ((stage.awaiting_response, stage.in_progress), "resolution_supervisor",
             stage.escalated_supervisor),
            (stage.escalated_supervisor, "first_response_manager", stage.escalated_manager),
            (stage.escalated_supervisor, "resolution_manager", stage.escalated_manager),
            ((stage.awaiting_response, stage.escalated_supervisor, stage.escalated_manager),
             "respond", stage.in_progress),
            ((stage.in_progress, stage.escalated_supervisor, stage.escalated_manager),
             "wait_on_customer", stage.waiting_on_customer),
            (stage.waiting_on_customer, "customer_replied", stage.in_progress),
            (OPEN, "resolve", stage.resolved),
            (stage.resolved, "reopen", stage.in_progress),
            (stage.resolved, "rate", stage.closed),
            (stage.resolved, "rate", stage.escalated_supervisor),
            (stage.resolved, "close", stage.closed),
        ),
        ends=(stage.closed,),
        # An escalation two levels late is done in one go, a signal received
        # before the next level was due going first.
        steps_per_wake=StepsPerWake.in_order,
        notes=("a closed ticket answers late signals for a day, then completes",),
    )


@dataclass
class TicketState:
    ticket_id: str
    customer_id: str
    type: TicketType
    priority: Priority
    subject: str
    channel: str
    stage: TicketStage = TicketStage.new
    opened_at: datetime | None = None
    group: str | None = None
    assignee_id: str | None = None
    supervisor_id: str | None = None
    previous_assignees: list[str] = field(default_factory=list)
    transfers: int = 0
    priority_raised: bool = False
    complaint_words: list[str] = field(default_factory=list)
    first_response_due: datetime | None = None
    warning_at: datetime | None = None
    first_response_manager_due: datetime | None = None
    warned: bool = False
    first_response_at: datetime | None = None
    clock: SlaClock | None = None
    deadlines: SlaDeadlines = field(default_factory=SlaDeadlines)
    escalations: list[EscalationInfo] = field(default_factory=list)
    # Escalations not yet answered, by kind: their highest level sets the stage.
    active: dict[str, int] = field(default_factory=dict)
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    reopens: int = 0
    rating: int | None = None
    rating_comment: str | None = None
    survey_due: datetime | None = None
    survey_sent: bool = False
    closed_at: datetime | None = None
    close_reason: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
