"""The payment journey's timed steps: per milestone, reminders, overdue, the
overdue reminder and weekly escalations."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messaging import MessageClass
    from domain.payments import Action, ActionKind, EscalationTargets, Milestone, MilestoneState

from workflows.kit import Agenda, Due, call
from workflows.payment.base import PaymentBase
from workflows.payment.plan import STEP_WORDS


class PaymentClockSteps(PaymentBase):
    """The contract's agenda and the step each entry performs."""

    def _agenda(self) -> Agenda:
        return Agenda.of(Due(a.kind.value, a.at, f"{STEP_WORDS[a.kind]} · milestone {a.seq}",
                             data=a, rank=a.seq) for a in self.state.agenda)

    def _take(self, entry: Due) -> Milestone | None:
        """Takes an action off the agenda: the milestone it is about, or None
        when that milestone is settled (its reminders and escalations lapse)."""
        action: Action = entry.data
        self.state.agenda.remove(action)
        milestone = self._milestone(action.seq)
        return milestone if milestone is not None and self._is_open(action.seq) else None

    async def _step_reminder(self, entry: Due) -> None:
        if (milestone := self._take(entry)) is None:
            return
        facts = {**self._facts(milestone), "days_before": entry.data.days_before}
        self._send_customer("payment_reminder", MessageClass.reminder, facts, milestone.seq)
        self._notify_staff(self.state.owner_id, "payment_due_notice", facts)

    async def _step_overdue(self, entry: Due) -> None:
        if (milestone := self._take(entry)) is None:
            return
        await call("mark_milestone_overdue", self._escalation(milestone.seq, 0))
        milestone.state = MilestoneState.overdue

    async def _step_overdue_reminder(self, entry: Due) -> None:
        if (milestone := self._take(entry)) is None:
            return
        self._send_customer("payment_overdue", MessageClass.reminder, self._facts(milestone),
                            milestone.seq)

    async def _step_escalation(self, entry: Due) -> None:
        if (milestone := self._take(entry)) is None:
            return
        action: Action = entry.data
        targets: EscalationTargets = await call(
            "escalate_overdue", self._escalation(milestone.seq, action.level), EscalationTargets)
        facts = {**self._facts(milestone), "level": action.level}
        for staff_id in [targets.manager_id, *targets.finance_ids]:
            self._notify_staff(staff_id, "payment_escalated", facts)
        # Weekly while unpaid: the same local time, computed with the
        # customer's zone when the schedule was made, 7 days on.
        self.state.agenda.append(Action(
            at=action.at + timedelta(days=self.policy.escalation_repeat_days),
            kind=ActionKind.escalation, seq=action.seq, level=action.level + 1))

    def _after_clock(self) -> None:
        self._publish()
