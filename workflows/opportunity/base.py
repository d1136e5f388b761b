"""What the opportunity journey's parts share: its state, the stall notice,
the rules a win or a loss must meet, and what it publishes."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.opportunities import (
        CLOSED,
        Lose,
        OpportunityPolicy,
        OpportunityStage,
        StallNotice,
        StallTargets,
        Win,
        amount_problem,
        lost_reason_problem,
    )

from workflows.kit import (
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Journey,
    call,
)
from workflows.opportunity.plan import OpportunityState


class OpportunityBase(Journey):
    """The state and helpers every part of the opportunity journey uses."""

    state: OpportunityState
    policy: OpportunityPolicy

    def _ended_reason(self) -> str:
        s = self.state
        if s.stage is OpportunityStage.won:
            return f"the opportunity is already won (contract {s.contract_id})"
        return f"the opportunity is {s.stage.value}"

    def _win_problem(self, win: Win) -> str | None:
        s = self.state
        if s.stage is OpportunityStage.won:
            return f"the opportunity is already won (contract {s.contract_id})"
        if s.stage in CLOSED:
            return f"the opportunity is {s.stage.value}"
        contract = win.contract
        amount = contract.amount if contract and contract.amount is not None else s.amount
        currency = (contract.currency if contract else s.currency).upper()
        if amount is None:
            return "contract.amount is required (the opportunity has no expected amount)"
        return amount_problem(amount, currency)

    def _lose_problem(self, lose: Lose) -> str | None:
        if self.state.stage in CLOSED:
            return f"the opportunity is already {self.state.stage.value}"
        return lost_reason_problem(lose.reason_code, self.policy)

    async def _stall_notice(self, level: int) -> StallTargets:
        s = self.state
        targets: StallTargets = await call("nudge_stalled_opportunity", StallNotice(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id, owner_id=s.owner_id,
            level=level, now=workflow.now(), n=self._count(f"stall_{level}")), StallTargets)
        return targets

    def _waiting_for(self) -> str | None:
        s = self.state
        if s.stage in CLOSED:
            return None
        return f"{s.owner_id} to move the deal on from {s.stage.value}"

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        s = self.state
        deadline = self._agenda().next_at()
        self._upsert({CRM_STAGE: s.stage.value, CRM_OWNER_ID: s.owner_id,
                      CRM_SLA_DEADLINE: deadline})
        lines = [f"**Opportunity {s.opportunity_id}** — stage `{s.stage.value}`",
                 f"owner: {s.owner_id}"]
        if s.contract_id:
            lines.append(f"contract: {s.contract_id}")
        if waiting := self._waiting_for():
            lines.append(f"waiting for {waiting}"
                         + (f" (next step {deadline.isoformat()})" if deadline else ""))
        workflow.set_current_details("\n\n".join(lines))
