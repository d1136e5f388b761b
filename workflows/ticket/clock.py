"""The ticket journey's timed steps: the first-response warning and ladder, the
resolution ladder on the SLA clock, the survey and the close without a rating."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messaging import MessageClass
    from domain.tickets import MANAGER, SUPERVISOR, EscalationKind, TicketStage

from workflows.kit import Agenda, Due
from workflows.ticket.base import TicketBase
from workflows.ticket.plan import FIRST_RESPONSE, RESOLUTION, TicketClock


class TicketClockSteps(TicketBase):
    """The ticket's agenda and the step each entry performs."""

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
