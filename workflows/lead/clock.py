"""The lead journey's timed steps: the first-touch reminder and deadline
(escalation and reassignment, then the pool) and the re-follow cadence."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.leads import EscalateRequest, EscalateResult, FollowUpMissed, LeadStage

from workflows.kit import Agenda, Due, call
from workflows.lead.base import LeadBase
from workflows.lead.plan import first_touch, follow_up


class LeadClockSteps(LeadBase):
    """The lead's agenda and the step each entry performs."""

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage in (LeadStage.assigned, LeadStage.escalated):
            return Agenda.of(first_touch(self.policy).entries(s.deadline, reminded=s.reminded))
        if s.stage is LeadStage.following_up:
            return Agenda.of(follow_up(self.policy).entries(s.deadline))
        return Agenda()

    async def _step_first_touch_reminder(self, entry: Due) -> None:
        s = self.state
        s.reminded = True
        self._notify_staff(s.owner_id, "first_touch_reminder", {"due_at": s.deadline})

    async def _step_first_touch_missed(self, entry: Due) -> None:
        s = self.state
        owner = s.owner_id
        assert owner is not None
        level = self._count("escalation")
        escalation: EscalateResult = await call(
            "escalate_lead",
            EscalateRequest(
                lead_id=s.lead_id,
                workflow_id=self.workflow_id,
                owner_id=owner,
                now=workflow.now(),
                level=level,
                reason=f"no first touch by {s.deadline.isoformat() if s.deadline else '?'}",
            ),
            EscalateResult,
        )
        if escalation.manager_id:
            self._notify_staff(escalation.manager_id, "escalated", {"owner_id": owner})
        if s.reassignments >= self.policy.max_reassignments:
            s.previous_owners.append(owner)
            s.owner_id = None
            await call("change_lead_stage",
                       self._stage_change(LeadStage.pooled, "returned_to_pool"))
            self._to_pool(escalation.manager_id, "reassignments exhausted")
            return
        s.reassignments += 1
        await self._assign(reason="first_touch_missed")

    async def _step_follow_up_missed(self, entry: Due) -> None:
        s = self.state
        s.missed_follow_ups += 1
        if s.missed_follow_ups >= self.policy.max_missed_follow_ups:
            await call(
                "change_lead_stage",
                self._stage_change(LeadStage.stale, "stale",
                                   reason=f"{s.missed_follow_ups} follow-ups missed in a row"),
            )
            self._set_stage(LeadStage.stale)
            return
        missed_at = s.deadline
        result: Decision = await call(
            "miss_follow_up",
            FollowUpMissed(
                lead_id=s.lead_id,
                workflow_id=self.workflow_id,
                owner_id=s.owner_id or "",
                due_at=s.deadline,
                interval=self.policy.follow_up_interval,
                now=workflow.now(),
                n=self._count("follow_up_missed"),
            ),
            Decision,
        )
        s.deadline = result.due_at
        self._notify_staff(s.owner_id, "follow_up_reminder",
                           {"missed_at": missed_at, "due_at": s.deadline,
                            "missed": s.missed_follow_ups})
        self._publish()
