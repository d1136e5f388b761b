"""What the lead journey's parts share: its state, assignment, the pool, stage
changes and what it publishes."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.leads import AssignRequest, AssignResult, LeadStage, StageChange
    from domain.policy import LeadPolicy

from workflows.kit import (
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Journey,
    call,
)
from workflows.lead.plan import LeadState


class LeadBase(Journey):
    """The state and helpers every part of the lead journey uses."""

    state: LeadState
    policy: LeadPolicy
    intake_done: bool

    async def _assign(self, *, reason: str) -> None:
        assigned_at = workflow.now()
        request = self._assign_request(reason, assigned_at)
        result: AssignResult = await call("assign_lead", request, AssignResult)
        self._take_assignment(result, reason, assigned_at)

    def _assign_request(self, reason: str, assigned_at: datetime) -> AssignRequest:
        """The next assignment's request: the current owner, if any, is left out."""
        s = self.state
        if s.owner_id:
            s.previous_owners.append(s.owner_id)
        return AssignRequest(
            lead_id=s.lead_id,
            workflow_id=self.workflow_id,
            now=assigned_at,
            first_touch=self.policy.first_touch,
            exclude=s.previous_owners,
            reason=reason,
            n=self._count("assign"),
        )

    def _take_assignment(self, result: AssignResult, reason: str, assigned_at: datetime) -> None:
        s = self.state
        if result.owner_id is None:
            self._to_pool(result.pool_manager_id, reason)
            return
        s.owner_id = result.owner_id
        s.assigned_at = assigned_at  # the time the store recorded
        s.deadline = result.due_at
        s.reminded = False
        self._set_stage(LeadStage.assigned if reason == "intake" else LeadStage.escalated)
        self._notify_staff(s.owner_id, "assigned", {"reason": reason})

    def _to_pool(self, manager_id: str | None, reason: str) -> None:
        s = self.state
        s.owner_id = None
        s.deadline = None
        self._set_stage(LeadStage.pooled)
        if manager_id:
            self._notify_staff(manager_id, "pooled", {"reason": reason})

    def _stage_change(self, stage: LeadStage, step: str, reason: str | None = None) -> StageChange:
        return StageChange(
            lead_id=self.state.lead_id,
            workflow_id=self.workflow_id,
            stage=stage,
            now=workflow.now(),
            step=step,
            n=self._count(step),
            reason=reason,
        )

    def _set_stage(self, stage: LeadStage) -> None:
        self.state.stage = stage
        self._publish()

    def _waiting_for(self) -> str | None:
        s = self.state
        if s.stage in (LeadStage.assigned, LeadStage.escalated):
            return f"first contact by {s.owner_id}"
        if s.stage is LeadStage.following_up:
            return f"follow-up by {s.owner_id}"
        if s.stage is LeadStage.pooled:
            return "a rep to claim it"
        return None

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        """Search attributes and current details, for admins in the UI and CLI."""
        s = self.state
        self._upsert({
            CRM_STAGE: s.stage.value,
            CRM_OWNER_ID: s.owner_id,
            CRM_SLA_DEADLINE: s.deadline,
        })
        lines = [f"**Lead {s.lead_id}** — stage `{s.stage.value}`"]
        if s.owner_id:
            lines.append(f"owner: {s.owner_id}")
        waiting = self._waiting_for()
        if waiting:
            due = f" until {s.deadline.isoformat()}" if s.deadline else ""
            lines.append(f"waiting for {waiting}{due}")
        if s.reassignments:
            lines.append(f"reassigned {s.reassignments}×")
        if s.missed_follow_ups:
            lines.append(f"follow-ups missed in a row: {s.missed_follow_ups}")
        workflow.set_current_details("\n\n".join(lines))
