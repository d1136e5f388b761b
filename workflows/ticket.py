"""TicketJourney: the 15-minute first response, escalation to the supervisor and
the manager, resolution targets on an SLA clock that pauses while the ticket
waits on the customer, and the customer's rating.

A new ticket is routed to its type's group and the least-loaded agent (a
complaint: raised to at least high priority, to a senior agent). The assignee
is warned before the first response falls due; at the deadline without a
response the ticket is escalated to the group's supervisor, and still
unanswered the policy's 15 minutes later to the manager. The resolution target
(by priority) is measured on the SLA clock; its breach escalates to the
supervisor, then the manager. Resolving sends the customer the resolution
notice with a rating request, and a survey 7 days later if no rating came; a
rating below 3 reopens the ticket and escalates it, 3 or more closes it, and
no rating 3 days after the survey closes it too. A closed ticket's journey
lingers a day, rejecting late signals, then completes.

Every deadline comes from the activities (a domain rule run once and stored);
the journey keeps the SLA clock's accounting and waits for the next deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.messaging import MessageClass, Recipient
    from domain.tickets import (
        JOURNEY,
        MANAGER,
        SUPERVISOR,
        Breach,
        ClockChange,
        CustomerReplied,
        EscalationInfo,
        EscalationKind,
        OpenTicketRequest,
        Priority,
        Rate,
        RatingRecord,
        Reopen,
        Resolve,
        ResolveRequest,
        Respond,
        ResponseRequest,
        SlaClock,
        SlaDeadlines,
        TicketClosed,
        TicketEscalated,
        TicketEscalation,
        TicketInput,
        TicketOpened,
        TicketPolicy,
        TicketReassigned,
        TicketReassignment,
        TicketStage,
        TicketStatus,
        TicketType,
        WaitOnCustomer,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Agenda,
    Deadline,
    Due,
    Inbound,
    Journey,
    Ladder,
    Level,
    Plan,
    StepsPerWake,
    WaitUntil,
    call,
    call_local,
    moves,
    refusal,
    span,
    start_input,
    upsert_search_attributes,
)

FIRST_RESPONSE, RESOLUTION, LOW_RATING = (EscalationKind.first_response,
                                          EscalationKind.resolution, EscalationKind.low_rating)
LOW_RATING_NOTICE = "low-rating-notice"
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
            resolution_ladder=ladder("resolution target (by priority, on the SLA clock)",
                                     "resolution"),
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


@workflow.defn(name="TicketJourney", failure_exception_types=[pydantic.ValidationError])
class TicketJourney(Journey):
    journey = JOURNEY
    entity_kind = "ticket"
    signals = {"respond": Respond, "wait_on_customer": WaitOnCustomer,
               "customer_replied": CustomerReplied, "resolve": Resolve, "reopen": Reopen,
               "rate": Rate}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.ticket = ticket = start_input(args, TicketInput)
        self.state = TicketState(
            ticket_id=ticket.ticket_id,
            customer_id=ticket.customer_id,
            type=ticket.type,
            priority=ticket.priority,
            subject=ticket.subject,
            channel=ticket.channel,
        )
        self.policy: TicketPolicy = ticket.policy or TicketPolicy()
        self._setup_journey(ticket.ticket_id, self.state.counters, plan(self.policy))
        self._published: dict[str, Any] = {}

    @workflow.run
    async def run(self, *args: Any) -> TicketStatus:
        """Takes one `TicketInput`."""
        s, ticket = self.state, self.ticket
        if ticket.policy is None:
            self.policy = await call("load_ticket_policy", result_type=TicketPolicy)
            self.plan = plan(self.policy)
        upsert_search_attributes({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id,
                                  CRM_STAGE: s.stage.value})
        await self._open(ticket)

        await self._serve(lambda: s.stage is TicketStage.closed)
        await self._linger()
        await self._drain()
        return self.status()

    # -- signals, updates and the query --------------------------------------------

    @workflow.update(name="respond_now")
    async def respond_now(self, payload: Respond) -> Decision:
        """`respond` with an answer: accepted, or why not."""
        return await self._answer("respond", payload)

    @respond_now.validator
    def _validate_respond_now(self, payload: Respond) -> None:
        problem = self._respond_problem(payload)
        if problem:
            raise refusal(problem)

    @workflow.update(name="resolve_now")
    async def resolve_now(self, payload: Resolve) -> Decision:
        """`resolve` with an answer: accepted, or why not."""
        return await self._answer("resolve", payload)

    @resolve_now.validator
    def _validate_resolve_now(self, payload: Resolve) -> None:
        problem = self._resolve_problem(payload)
        if problem:
            raise refusal(problem)

    @workflow.update(name="rate_now")
    async def rate_now(self, payload: Rate) -> Decision:
        """`rate` with an answer: accepted, or why not."""
        return await self._answer("rate", payload)

    @rate_now.validator
    def _validate_rate_now(self, payload: Rate) -> None:
        problem = self._rate_problem(payload)
        if problem:
            raise refusal(problem)

    @workflow.query(name="status")
    def status(self) -> TicketStatus:
        s = self.state
        now = workflow.now()
        clock = s.clock
        return TicketStatus(
            ticket_id=s.ticket_id,
            customer_id=s.customer_id,
            type=s.type,
            priority=s.priority,
            priority_raised=s.priority_raised,
            complaint_words=list(s.complaint_words),
            subject=s.subject,
            channel=s.channel,
            group=s.group,
            assignee_id=s.assignee_id,
            previous_assignees=list(s.previous_assignees),
            stage=s.stage,
            opened_at=s.opened_at or now,
            first_response_due=s.first_response_due,
            first_response_at=s.first_response_at,
            first_response_time=(s.first_response_at - s.opened_at
                                 if s.first_response_at and s.opened_at else None),
            resolution_target=clock.target if clock else None,
            resolution_due=s.deadlines.resolution_due,
            as_of=now,
            sla_clock=clock.state if clock else None,
            time_used=clock.used_at(now) if clock else timedelta(0),
            time_paused=clock.paused_at(now) if clock else timedelta(0),
            pauses=clock.pauses if clock else 0,
            waiting_since=clock.paused_since if clock else None,
            breaches=[Breach(sla="first_response" if e.kind == FIRST_RESPONSE else "resolution",
                             due_at=e.due_at, at=e.at)
                      for e in s.escalations
                      if e.level == SUPERVISOR and e.kind in (FIRST_RESPONSE, RESOLUTION)],
            escalations=list(s.escalations),
            resolved_at=s.resolved_at,
            resolved_by=s.resolved_by,
            reopens=s.reopens,
            rating=s.rating,
            rating_comment=s.rating_comment,
            survey_due=s.survey_due,
            survey_sent=s.survey_sent,
            closes_at=self._closes_at(),
            closed_at=s.closed_at,
            close_reason=s.close_reason,
            waiting_for=self._waiting_for(),
            deadline=self._agenda().next_at(),
            rejections=list(self.rejections),
            policy=self.policy,
        )

    # -- opening ----------------------------------------------------------------------

    async def _open(self, ticket: TicketInput) -> None:
        s = self.state
        now = workflow.now()
        # A ticket the helpdesk opened earlier is on the clock since then.
        opened_at = min(ticket.opened_at, now) if ticket.opened_at else now
        try:
            opened: TicketOpened = await call("open_ticket", OpenTicketRequest(
                ticket=ticket.model_copy(update={"policy": None}),
                workflow_id=workflow.info().workflow_id,
                opened_at=opened_at,
                now=now,
                policy=self.policy,
            ), TicketOpened)
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="InvalidTicket", non_retryable=True) from err
        s.opened_at = opened_at
        s.priority = opened.priority
        s.priority_raised = opened.priority_raised
        s.complaint_words = opened.complaint_words
        s.group = opened.group
        s.assignee_id = opened.assignee_id
        s.supervisor_id = opened.supervisor_id
        s.first_response_due = opened.first_response_due
        s.warning_at = opened.warning_at
        s.first_response_manager_due = opened.first_response_manager_due
        s.clock = opened.clock
        s.deadlines = opened.deadlines
        self._set_stage()
        facts = {"priority_raised": s.priority_raised, "complaint_words": s.complaint_words,
                 "due_at": s.first_response_due}
        if s.assignee_id:
            self._notify_staff(s.assignee_id, "ticket_assigned", facts)
        else:
            self._notify_staff(s.supervisor_id, "ticket_unassigned", facts)

    # -- the clock --------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        """What the journey does on its own next, and when."""
        s = self.state
        clock = TicketClock.of(self.policy)
        if s.stage in (TicketStage.new, TicketStage.closed):
            return Agenda()
        if s.stage is TicketStage.resolved:
            if not s.survey_sent and s.survey_due is not None:
                return Agenda.of(clock.survey.entries_at(s.survey_due))
            return Agenda.of(clock.close.entries_at(self._closes_at()))
        items: list[Due] = []
        if s.first_response_at is None:
            assert s.first_response_due and s.warning_at and s.first_response_manager_due
            if not s.warned and s.opened_at and s.warning_at > s.opened_at:
                reminder = clock.first_response.entries(s.first_response_due)[0]
                items.append(replace(reminder, at=s.warning_at, void_after=None))
            items += clock.first_response_ladder.entries(
                s.opened_at, done=self._levels_done(FIRST_RESPONSE),
                at=(s.first_response_due, s.first_response_manager_due))
        d = s.deadlines
        items += clock.resolution_ladder.entries(
            s.opened_at, done=self._levels_done(RESOLUTION),
            at=(d.resolution_due, d.manager_due))
        return Agenda.of(replace(item, rank=item.step) for item in items)

    def _levels_done(self, kind: EscalationKind) -> int:
        if not self._escalated(kind, SUPERVISOR):
            return 0
        return 2 if self._escalated(kind, MANAGER) else 1

    async def _step_warning(self, entry: Due) -> None:
        s = self.state
        s.warned = True
        if s.first_response_due and workflow.now() < s.first_response_due:
            self._notify_staff(s.assignee_id or s.supervisor_id, "first_response_warning",
                               {"due_at": s.first_response_due})

    async def _step_first_response_supervisor(self, entry: Due) -> None:
        await self._first_response_missed(SUPERVISOR, entry.at)

    async def _step_first_response_manager(self, entry: Due) -> None:
        await self._first_response_missed(MANAGER, entry.at)

    async def _first_response_missed(self, level: int, at: datetime) -> None:
        s = self.state
        s.warned = True
        await self._escalate(FIRST_RESPONSE, level, n=level, due_at=at,
                             reason=f"no first response by {s.first_response_due}",
                             step="first_response_escalated")

    async def _step_resolution_supervisor(self, entry: Due) -> None:
        await self._resolution_breached(SUPERVISOR, entry.at)

    async def _step_resolution_manager(self, entry: Due) -> None:
        await self._resolution_breached(MANAGER, entry.at)

    async def _resolution_breached(self, level: int, at: datetime) -> None:
        s = self.state
        await self._escalate(RESOLUTION, level, n=level, due_at=at,
                             reason=f"not resolved within {s.clock.target if s.clock else '?'}"
                             " on the SLA clock", step="resolution_breached")

    async def _step_survey(self, entry: Due) -> None:
        self.state.survey_sent = True
        self._send_customer("satisfaction_survey", MessageClass.reminder,
                            {"rating_url": self._rating_url()})

    async def _step_close(self, entry: Due) -> None:
        await self._close("no_rating")

    def _after_clock(self) -> None:
        self._publish()

    async def _escalate(self, kind: EscalationKind, level: int, *, n: int,
                        due_at: datetime | None, reason: str, step: str,
                        comment: str | None = None) -> None:
        s = self.state
        at = workflow.now()
        s.active[kind.value] = max(s.active.get(kind.value, 0), level)
        reassign = (self.policy.reassign_to_supervisor and kind is FIRST_RESPONSE
                    and level == SUPERVISOR)
        # A local activity: the escalation is written by this worker as soon as
        # the deadline's workflow task runs, not queued on the task queue behind
        # the notices and other journeys' activities (the SLA action is on time
        # even under a backlog). Idempotent by its key, like every store write.
        result = await call_local("escalate_ticket", TicketEscalation(
            ticket_id=s.ticket_id,
            workflow_id=workflow.info().workflow_id,
            kind=kind,
            level=level,
            n=n,
            at=at,
            stage=self._derived_stage(),
            due_at=due_at,
            reason=reason,
            comment=comment,
            from_staff_id=s.assignee_id,
            reassign=reassign,
        ), TicketEscalated)
        s.escalations.append(EscalationInfo(kind=kind, level=level, to_staff_id=result.to_staff_id,
                                            at=at, due_at=due_at))
        previous = s.assignee_id
        if result.reassigned_to:
            s.assignee_id = result.reassigned_to
        self._set_stage()
        self._notify_staff(result.to_staff_id, step, {
            "level": level, "due_at": due_at, "assignee_id": previous,
            "reassigned": bool(result.reassigned_to), "comment": comment})

    # -- acting on signals ------------------------------------------------------------

    async def _on_respond(self, item: Inbound) -> Decision:
        s, respond = self.state, item.payload
        problem = self._respond_problem(respond)
        if problem:
            return Decision(accepted=False, reason=problem)
        first = s.first_response_at is None
        decision: Decision = await call("record_response", ResponseRequest(
            ticket_id=s.ticket_id,
            workflow_id=workflow.info().workflow_id,
            agent_id=respond.agent_id,
            at=item.received_at,
            first=first,
            n=self._count("respond"),
            note=respond.note,
        ), Decision)
        if not decision.accepted:
            return decision
        if first:
            s.first_response_at = item.received_at
            s.active.pop(FIRST_RESPONSE.value, None)
        s.assignee_id = s.assignee_id or respond.agent_id
        self._set_stage()
        return decision

    async def _on_wait_on_customer(self, item: Inbound) -> Decision:
        s = self.state
        assert s.clock is not None
        problem = self._closed_problem()
        if problem:
            return Decision(accepted=False, reason=problem)
        if s.first_response_at is None:
            return Decision(accepted=False, reason="the ticket has no first response yet: "
                            "`respond` before waiting on the customer")
        if s.clock.paused_since is not None:
            return Decision(accepted=False, reason="already waiting on the customer since "
                            f"{s.clock.paused_since.isoformat()}")
        await self._move_clock("waiting_on_customer", s.clock.pause(item.received_at),
                               item.received_at)
        return Decision(accepted=True, at=item.received_at)

    async def _on_customer_replied(self, item: Inbound) -> Decision:
        s = self.state
        assert s.clock is not None
        problem = self._closed_problem()
        if problem:
            return Decision(accepted=False, reason=problem)
        if s.clock.paused_since is None:
            return Decision(accepted=False, reason="the ticket is not waiting on the customer")
        await self._move_clock("customer_replied", s.clock.resume(item.received_at),
                               item.received_at)
        return Decision(accepted=True, at=item.received_at)

    async def _on_resolve(self, item: Inbound) -> Decision:
        s, resolve = self.state, item.payload
        assert s.clock is not None
        problem = self._resolve_problem(resolve)
        if problem:
            return Decision(accepted=False, reason=problem)
        at = item.received_at
        clock = s.clock.stop(at)
        first = s.first_response_at is None
        decision: Decision = await call("resolve_ticket", ResolveRequest(
            ticket_id=s.ticket_id,
            workflow_id=workflow.info().workflow_id,
            agent_id=resolve.agent_id,
            resolution=resolve.resolution.strip(),
            at=at,
            clock=clock,
            first_response=first,
            n=self._count("resolve"),
        ), Decision)
        if not decision.accepted:
            return decision
        s.clock = clock
        s.deadlines = SlaDeadlines()
        if first:
            s.first_response_at = at
        s.active.clear()
        s.resolved_at = at
        s.resolved_by = resolve.agent_id
        s.survey_due = at + self.policy.survey_after
        s.survey_sent = False
        self._set_stage()
        self._send_customer("resolution_notice", MessageClass.transactional,
                            {"rating_url": self._rating_url()})
        return decision

    async def _on_reopen(self, item: Inbound) -> Decision:
        reopen = item.payload
        problem = self._reopen_problem()
        if problem:
            return Decision(accepted=False, reason=problem)
        if not reopen.reason.strip():
            return Decision(accepted=False, reason="a reason is required to reopen a ticket")
        await self._reopen(item.received_at, reopen.reason.strip())
        return Decision(accepted=True, at=item.received_at)

    async def _on_rate(self, item: Inbound) -> Decision:
        s, rate = self.state, item.payload
        problem = self._rate_problem(rate)
        if problem:
            return Decision(accepted=False, reason=problem)
        score: int = rate.score
        await call("rate_ticket", RatingRecord(
            ticket_id=s.ticket_id,
            workflow_id=workflow.info().workflow_id,
            score=score,
            comment=rate.comment,
            at=item.received_at,
            n=self._count("rate"),
        ))
        s.rating, s.rating_comment = score, rate.comment
        if score >= self.policy.reopen_below:
            # A middling score closes the ticket, and the supervisor hears of it.
            if score < self.policy.notify_below and workflow.patched(LOW_RATING_NOTICE):
                self._notify_staff(s.supervisor_id, "low_rating_notice", {
                    "score": score, "comment": rate.comment, "assignee_id": s.assignee_id})
            await self._close("rated")
            return Decision(accepted=True, at=item.received_at)
        await self._reopen(item.received_at, f"rated {score}/5"
                           + (f": {rate.comment}" if rate.comment else ""))
        await self._escalate(LOW_RATING, SUPERVISOR, n=self._count("low_rating"), due_at=None,
                             reason=f"the customer rated the resolution {score}/5",
                             comment=rate.comment, step="low_rating_escalated")
        return Decision(accepted=True, at=item.received_at)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        """The assignee has left: the ticket goes to another active agent of the
        group, and every later notice (warning, reopen) with it. The SLA clock
        and the escalations stand; escalations always go to the group's current
        active supervisor, so a supervisor who left is never escalated to."""
        if rejected := self._nobody_named(item):
            return rejected
        s, gone = self.state, item.payload.staff_id
        if s.stage is TicketStage.closed or gone != s.assignee_id:
            return None  # a broadcast about someone else, or nothing left to hand on
        result: TicketReassigned = await call("reassign_ticket", TicketReassignment(
            ticket_id=s.ticket_id,
            workflow_id=workflow.info().workflow_id,
            group=s.group or self.policy.group_for(s.type),
            staff_id=gone,
            min_seniority=self.policy.senior_seniority if s.complaint_words else None,
            at=item.received_at,
            n=self._count("reassigned"),
        ), TicketReassigned)
        s.previous_assignees.append(gone)
        s.assignee_id = result.assignee_id
        s.supervisor_id = result.supervisor_id
        self._publish()
        answered = s.first_response_at is not None
        self._notify_staff(result.notify_id, "ticket_reassigned", {
            "from_staff_id": gone, "fallback": result.fallback,
            "first_response": answered, "resolved": s.resolved_at is not None,
            "due_at": None if answered else s.first_response_due})
        return Decision(accepted=True, at=item.received_at)

    # -- the rules a signal must meet (also the updates' validators) ----------------

    def _ended_reason(self) -> str:
        return self._closed_problem() or f"the ticket is {self.state.stage.value}"

    def _closed_problem(self) -> str | None:
        s = self.state
        if s.stage is TicketStage.closed:
            return "the ticket is closed"
        if s.stage is TicketStage.resolved:
            return "the ticket is resolved (reopen it first)"
        return None

    def _respond_problem(self, respond: Respond) -> str | None:
        if not respond.agent_id:
            return "agent_id is required"
        return self._closed_problem()

    def _resolve_problem(self, resolve: Resolve) -> str | None:
        s = self.state
        if s.stage is TicketStage.closed:
            return "the ticket is closed"
        if s.stage is TicketStage.resolved:
            return f"the ticket is already resolved (by {s.resolved_by})"
        if not resolve.agent_id:
            return "agent_id is required"
        if not resolve.resolution.strip():
            return "a resolution is required"
        return None

    def _reopen_problem(self) -> str | None:
        s = self.state
        if s.stage is TicketStage.closed:
            return "the ticket is closed; open a new ticket"
        if s.stage is not TicketStage.resolved and s.stage is not TicketStage.new:
            return f"the ticket is not resolved (stage {s.stage.value})"
        return None

    def _rate_problem(self, rate: Rate) -> str | None:
        s = self.state
        if rate.score is None:
            return "a score is required (1-5)"
        if not 1 <= rate.score <= 5:
            return f"score {rate.score} is out of range: 1-5"
        if s.stage is TicketStage.closed:
            return "the ticket is closed"
        if s.stage is not TicketStage.resolved and s.stage is not TicketStage.new:
            return f"the ticket is not resolved (stage {s.stage.value}): nothing to rate yet"
        return None

    # -- small helpers ------------------------------------------------------------------

    async def _move_clock(self, kind: Any, clock: SlaClock, at: datetime,
                          reason: str | None = None) -> None:
        s = self.state
        s.clock = clock
        s.deadlines = await call("move_sla_clock", ClockChange(
            ticket_id=s.ticket_id,
            workflow_id=workflow.info().workflow_id,
            kind=kind,
            at=at,
            clock=clock,
            stage=self._derived_stage(),
            manager_after=self.policy.manager_after,
            n=self._count(kind),
            reason=reason,
        ), SlaDeadlines)
        self._set_stage()

    async def _reopen(self, at: datetime, reason: str) -> None:
        """The resolution clock runs again with the time already used; a
        resolution target already breached stays escalated."""
        s = self.state
        assert s.clock is not None
        s.reopens += 1
        s.resolved_at = None
        s.survey_due = None
        s.survey_sent = False
        levels = [e.level for e in s.escalations if e.kind is RESOLUTION]
        if levels:
            s.active[RESOLUTION.value] = max(levels)
        await self._move_clock("reopened", s.clock.start(at), at, reason)
        self._notify_staff(s.assignee_id, "ticket_reopened", {"reason": reason})

    async def _linger(self) -> None:
        """A closed ticket changes no more, but for the policy's while the journey
        still answers late signals (a resolve racing the auto-close, a late
        rating): each is rejected with its reason and recorded."""
        s = self.state
        assert s.closed_at is not None
        end = Due("complete", s.closed_at + self.policy.linger_after_close,
                  f"journey completes ({span(self.policy.linger_after_close)} after closing)")
        while (item := await self._next_inbound(end)) is not None:
            await self._act_on(item)

    async def _close(self, reason: str) -> None:
        s = self.state
        await call("close_ticket", TicketClosed(ticket_id=s.ticket_id,
                                                workflow_id=workflow.info().workflow_id,
                                                at=workflow.now(), reason=reason))
        s.closed_at = workflow.now()
        s.close_reason = reason
        s.stage = TicketStage.closed
        self._publish()

    def _escalated(self, kind: EscalationKind, level: int) -> bool:
        return any(e.kind is kind and e.level == level for e in self.state.escalations)

    def _closes_at(self) -> datetime | None:
        s = self.state
        if s.stage is TicketStage.resolved and s.survey_sent and s.survey_due:
            return s.survey_due + self.policy.close_after_survey
        return None

    def _rating_url(self) -> str:
        return self.policy.rating_url.replace("{ticket_id}", self.state.ticket_id)

    def _send_customer(self, step: str, message_class: MessageClass,
                       facts: dict[str, Any]) -> None:
        s = self.state
        self.messenger.send(step=step, message_class=message_class,
                            recipient=Recipient(kind="customer", id=s.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.entity_id, facts=facts,
                            unwanted=self._survey_unwanted(s.reopens)
                            if step == "satisfaction_survey" else None)

    def _survey_unwanted(self, reopens: int) -> Callable[[], str | None]:
        """A survey that waited out quiet hours is not sent once the customer
        has rated (which closes or reopens the ticket) or the ticket moved on."""
        def unwanted() -> str | None:
            s = self.state
            if s.stage is not TicketStage.resolved or s.reopens != reopens:
                return f"the ticket is {s.stage.value}"
            return None
        return unwanted

    def _derived_stage(self) -> TicketStage:
        s = self.state
        if s.stage is TicketStage.closed or s.clock is None:
            return s.stage
        if s.resolved_at is not None:
            return TicketStage.resolved
        if s.clock is not None and s.clock.paused_since is not None:
            return TicketStage.waiting_on_customer
        level = max(s.active.values(), default=0)
        if level >= MANAGER:
            return TicketStage.escalated_manager
        if level == SUPERVISOR:
            return TicketStage.escalated_supervisor
        if s.first_response_at is None:
            return TicketStage.awaiting_response
        return TicketStage.in_progress

    def _set_stage(self) -> None:
        self.state.stage = self._derived_stage()
        self._publish()

    def _waiting_for(self) -> str | None:
        s = self.state
        who = s.assignee_id or f"an agent of {s.group}"
        if s.stage is TicketStage.closed:
            return None
        if s.stage is TicketStage.resolved:
            return ("the customer's rating" + (" after the survey" if s.survey_sent else ""))
        if s.stage is TicketStage.waiting_on_customer:
            return "the customer's reply (SLA clock paused)"
        if s.first_response_at is None:
            return f"the first response by {who}"
        return f"the resolution by {who}"

    def _publish(self) -> None:
        """Search attributes (upserted when they change) and current details."""
        s = self.state
        values: dict[SearchAttributeKey[Any], Any] = {
            CRM_STAGE: s.stage.value, CRM_OWNER_ID: s.assignee_id,
            CRM_SLA_DEADLINE: self._agenda().sla_deadline()}
        changed = {k: v for k, v in values.items() if self._published.get(k.name, ...) != v}
        if changed:
            upsert_search_attributes(changed)
            self._published.update({k.name: v for k, v in changed.items()})
        lines = [f"**Ticket {s.ticket_id}** ({s.type.value}, {s.priority.value}"
                 + (", complaint" if s.complaint_words else "") + f") — stage `{s.stage.value}`",
                 f"group: {s.group or '?'}, assignee: {s.assignee_id or 'none'}"]
        waiting = self._waiting_for()
        nxt = self._agenda().next_at()
        if waiting:
            lines.append(f"waiting for {waiting}" + (f"; next: {nxt.isoformat()}" if nxt else ""))
        if s.clock is not None:
            lines.append(f"SLA clock: {s.clock.used_at(workflow.now())} used of "
                         f"{s.clock.target}, {s.clock.paused_at(workflow.now())} paused")
        if s.escalations:
            lines.append("escalated: " + ", ".join(
                f"{e.kind.value} L{e.level} → {e.to_staff_id or 'nobody'}" for e in s.escalations))
        workflow.set_current_details("\n\n".join(lines))
