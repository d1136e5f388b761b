"""What the ticket journey does with each signal, and the rules a signal must
meet (also its updates' validators)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.messaging import MessageClass
    from domain.tickets import (
        SUPERVISOR,
        Rate,
        RatingRecord,
        Resolve,
        ResolveRequest,
        Respond,
        ResponseRequest,
        SlaDeadlines,
        TicketReassigned,
        TicketReassignment,
        TicketStage,
        TicketTransfer,
        Transfer,
    )

from workflows.kit import FOLDED_STORE_CALLS, Inbound, call, patched, since
from workflows.ticket.base import TicketBase
from workflows.ticket.plan import FIRST_RESPONSE, LOW_RATING, LOW_RATING_NOTICE, TICKET_TRANSFER


class TicketSignals(TicketBase):
    """The ticket's signal handlers and their rules."""

    async def _on_respond(self, item: Inbound) -> Decision:
        s, respond = self.state, item.payload
        problem = self._respond_problem(respond)
        if problem:
            return Decision(accepted=False, reason=problem)
        first = s.first_response_at is None
        decision: Decision = await call("record_response", ResponseRequest(
            ticket_id=s.ticket_id,
            workflow_id=self.workflow_id,
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
            workflow_id=self.workflow_id,
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
        closes = score >= self.policy.reopen_below
        # Since FOLDED_STORE_CALLS the close a rating brings is in the rating's activity.
        folded = closes and since(FOLDED_STORE_CALLS)
        await call("rate_ticket", RatingRecord(
            ticket_id=s.ticket_id,
            workflow_id=self.workflow_id,
            score=score,
            comment=rate.comment,
            at=item.received_at,
            n=self._count("rate"),
            close=self._close_request("rated") if folded else None,
        ))
        s.rating, s.rating_comment = score, rate.comment
        if closes:
            # A middling score closes the ticket, and the supervisor hears of it.
            if score < self.policy.notify_below and patched(LOW_RATING_NOTICE):
                self._notify_staff(s.supervisor_id, "low_rating_notice", {
                    "score": score, "comment": rate.comment, "assignee_id": s.assignee_id})
            if folded:
                self._closed("rated")
            else:
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
            workflow_id=self.workflow_id,
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

    async def _on_transfer(self, item: Inbound) -> Decision:
        s, transfer = self.state, item.payload
        if not patched(TICKET_TRANSFER):
            known = ", ".join(sorted(set(self._signal_models()) - {"transfer"}))
            return Decision(accepted=False,
                            reason=f"unknown signal 'transfer': this journey takes {known}")
        if problem := self._transfer_problem(transfer):
            return Decision(accepted=False, reason=problem)
        from_group, before = s.group, s.assignee_id
        result: TicketReassigned = await call("transfer_ticket", TicketTransfer(
            ticket_id=s.ticket_id, workflow_id=self.workflow_id, to_group=transfer.to_group,
            reason=transfer.reason, by=transfer.by,
            min_seniority=self.policy.senior_seniority if s.complaint_words else None,
            at=item.received_at, n=self._count("transfer")), TicketReassigned)
        # The SLA clock and its deadlines stand: a transfer is not a new ticket.
        s.group, s.assignee_id, s.supervisor_id = (transfer.to_group, result.assignee_id,
                                                   result.supervisor_id)
        if before and before != result.assignee_id:
            s.previous_assignees.append(before)
        s.transfers += 1
        self._publish()
        self._notify_staff(result.notify_id, "ticket_transferred", {
            "from_group": from_group, "reason": transfer.reason, "by": transfer.by,
            "fallback": result.fallback,
            "due_at": s.first_response_due if s.first_response_at is None
            else s.deadlines.resolution_due})
        self._send_customer("ticket_transferred_customer", MessageClass.transactional,
                            {"to_group": transfer.to_group})
        if s.transfers > self.policy.max_transfers:
            self._notify_staff(result.supervisor_id, "ticket_transfers_alert",
                               {"transfers": s.transfers, "reason": transfer.reason})
        return Decision(accepted=True, at=item.received_at)

    def _transfer_problem(self, transfer: Transfer) -> str | None:
        s = self.state
        if problem := self._closed_problem():
            return problem
        groups = sorted({*self.policy.groups.values(), self.policy.default_group})
        if not transfer.to_group:
            return "to_group is required: one of " + ", ".join(groups)
        if transfer.to_group not in groups:
            return f"unknown group {transfer.to_group!r}: expected one of " + ", ".join(groups)
        if transfer.to_group == s.group:
            return f"the ticket is already with {s.group}"
        if not transfer.reason.strip():
            return "a reason is required to transfer a ticket"
        if not transfer.by.strip():
            return "by is required: who transfers the ticket"
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
