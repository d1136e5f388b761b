"""What the ticket journey's parts share: its state, escalation, the SLA clock's
moves, closing, and what it publishes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from domain.messaging import MessageClass, Recipient
    from domain.sla import SlaClock
    from domain.ticket_status import EscalationInfo
    from domain.tickets import (
        MANAGER,
        SUPERVISOR,
        ClockChange,
        EscalationKind,
        SlaDeadlines,
        TicketClosed,
        TicketEscalated,
        TicketEscalation,
        TicketPolicy,
        TicketStage,
    )

from workflows.kit import (
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    CRM_STEP,
    FOLDED_STORE_CALLS,
    Journey,
    call,
    call_local,
    call_urgent,
    since,
)
from workflows.ticket.plan import FIRST_RESPONSE, RESOLUTION, TicketState


class TicketBase(Journey):
    """The state and helpers every part of the ticket journey uses."""

    state: TicketState
    policy: TicketPolicy
    _published: dict[str, Any]
    _step_published: bool

    async def _escalate(self, kind: EscalationKind, level: int, *, n: int,
                        due_at: datetime | None, reason: str, step: str,
                        comment: str | None = None) -> None:
        s = self.state
        at = workflow.now()
        s.active[kind.value] = max(s.active.get(kind.value, 0), level)
        reassign = (self.policy.reassign_to_supervisor and kind is FIRST_RESPONSE
                    and level == SUPERVISOR)
        # Ahead of the notices and other journeys' activities queued (the SLA
        # action is on time even under a backlog): an urgent activity, a
        # local one in journeys started before FOLDED_STORE_CALLS. Idempotent
        # by its key, like every store write.
        escalate = call_urgent if since(FOLDED_STORE_CALLS) else call_local
        result = await escalate("escalate_ticket", TicketEscalation(
            ticket_id=s.ticket_id,
            workflow_id=self.workflow_id,
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

    async def _move_clock(self, kind: Any, clock: SlaClock, at: datetime,
                          reason: str | None = None) -> None:
        s = self.state
        s.clock = clock
        s.deadlines = await call("move_sla_clock", ClockChange(
            ticket_id=s.ticket_id,
            workflow_id=self.workflow_id,
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

    async def _close(self, reason: str) -> None:
        await call("close_ticket", self._close_request(reason))
        self._closed(reason)

    def _close_request(self, reason: str) -> TicketClosed:
        return TicketClosed(ticket_id=self.state.ticket_id, workflow_id=self.workflow_id,
                            at=workflow.now(), reason=reason)

    def _closed(self, reason: str) -> None:
        s = self.state
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

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        """Search attributes (upserted when they change) and current details."""
        s = self.state
        values: dict[SearchAttributeKey[Any], Any] = {
            CRM_STAGE: s.stage.value, CRM_OWNER_ID: s.assignee_id,
            CRM_SLA_DEADLINE: self._agenda().sla_deadline()}
        if self._step_published:
            values[CRM_STEP] = self._position()
        changed = {k: v for k, v in values.items() if self._published.get(k.name, ...) != v}
        if changed:
            self._upsert(changed)
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

    def _closed_problem(self) -> str | None:
        s = self.state
        if s.stage is TicketStage.closed:
            return "the ticket is closed"
        if s.stage is TicketStage.resolved:
            return "the ticket is resolved (reopen it first)"
        return None
