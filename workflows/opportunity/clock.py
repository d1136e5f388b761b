"""The opportunity journey's timed steps: the stall reminders (owner, then
manager), the quote follow-up and the passed close date."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.opportunities import PIPELINE

from workflows.kit import Agenda, Due
from workflows.opportunity.base import OpportunityBase
from workflows.opportunity.plan import CLOSE_PASSED, quote_follow_up, stalled


class OpportunityClockSteps(OpportunityBase):
    """The opportunity's agenda and the step each entry performs."""

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage not in PIPELINE:
            return Agenda()
        return Agenda.of(
            stalled(self.policy).entries(s.quiet_since(), done=s.stall_done),
            quote_follow_up(self.policy).entries(s.quote_follow_up_from),
            None if s.close_told else CLOSE_PASSED.entries_at(s.close_passed_at),
        )

    async def _step_stalled_owner(self, entry: Due) -> None:
        s = self.state
        await self._stall_notice(1)
        self._notify_staff(s.owner_id, "opportunity_stalled",
                           {"stage": s.stage.value, "since": s.quiet_since()})
        s.stall_done = 1
        self._publish()

    async def _step_stalled_manager(self, entry: Due) -> None:
        s = self.state
        targets = await self._stall_notice(2)
        self._notify_staff(targets.manager_id, "opportunity_stalled_escalated",
                           {"stage": s.stage.value, "since": s.quiet_since(),
                            "owner_id": s.owner_id})
        s.stall_done = 2
        self._publish()

    async def _step_close_date_passed(self, entry: Due) -> None:
        s = self.state
        targets = await self._stall_notice(0)
        facts = {"close_date": s.close_date.isoformat() if s.close_date else None,
                 "stage": s.stage.value, "owner_id": s.owner_id}
        self._notify_staff(s.owner_id, "opportunity_close_passed", facts)
        self._notify_staff(targets.manager_id, "opportunity_close_passed", facts)
        s.close_told = True
        self._publish()

    async def _step_quote_follow_up(self, entry: Due) -> None:
        s = self.state
        self._notify_staff(s.owner_id, "quote_follow_up",
                           {"amount": str(s.quote_amount), "currency": s.currency,
                            "sent_at": s.quote_follow_up_from})
        s.quote_follow_up_from = None
        self._publish()
