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

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.ticket_status import Breach, TicketStatus
    from domain.tickets import (
        JOURNEY,
        SUPERVISOR,
        CustomerReplied,
        OpenTicketRequest,
        Rate,
        Reopen,
        Resolve,
        Respond,
        TicketInput,
        TicketOpened,
        TicketPolicy,
        TicketStage,
        Transfer,
        WaitOnCustomer,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_STAGE,
    Due,
    answering,
    call,
    patched,
    span,
    start_input,
)
from workflows.ticket.clock import TicketClockSteps
from workflows.ticket.plan import FIRST_RESPONSE, RESOLUTION, STEP_PUBLISHED, TicketState, plan
from workflows.ticket.signals import TicketSignals


@workflow.defn(name="TicketJourney", failure_exception_types=[pydantic.ValidationError])
class TicketJourney(TicketSignals, TicketClockSteps):
    journey = JOURNEY
    entity_kind = "ticket"
    signals = {"respond": Respond, "wait_on_customer": WaitOnCustomer,
               "customer_replied": CustomerReplied, "resolve": Resolve, "reopen": Reopen,
               "rate": Rate, "transfer": Transfer}
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
        self._step_published = False

    @workflow.run
    async def run(self, *args: Any) -> TicketStatus:
        """Takes one `TicketInput`."""
        s, ticket = self.state, self.ticket
        if ticket.policy is None:
            self.policy = await call("load_ticket_policy", result_type=TicketPolicy)
            self.plan = plan(self.policy)
        self._step_published = patched(STEP_PUBLISHED)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id,
                      CRM_STAGE: s.stage.value})
        await self._open(ticket)

        await self._serve(lambda: s.stage is TicketStage.closed)
        await self._linger()
        await self._drain()
        return self.status()

    respond_now = answering("respond", Respond, "_respond_problem")
    resolve_now = answering("resolve", Resolve, "_resolve_problem")
    rate_now = answering("rate", Rate, "_rate_problem")

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
            transfers=s.transfers,
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

    async def _open(self, ticket: TicketInput) -> None:
        s = self.state
        now = workflow.now()
        # A ticket the helpdesk opened earlier is on the clock since then.
        opened_at = min(ticket.opened_at, now) if ticket.opened_at else now
        try:
            opened: TicketOpened = await call("open_ticket", OpenTicketRequest(
                ticket=ticket.model_copy(update={"policy": None}),
                workflow_id=self.workflow_id,
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

    def _ended_reason(self) -> str:
        return self._closed_problem() or f"the ticket is {self.state.stage.value}"

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
