"""What the payment journey's parts share: its state, its milestones, the
schedule the store works out, and what it publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messaging import MessageClass, Recipient
    from domain.payments import (
        ContractClosed,
        ContractStage,
        Milestone,
        MilestoneState,
        OverdueEscalation,
        PaymentPolicy,
        RecordPayment,
        Schedule,
    )

from workflows.kit import CRM_SLA_DEADLINE, CRM_STAGE, Journey
from workflows.payment.plan import ENDED, ContractState


class PaymentBase(Journey):
    """The state and helpers every part of the payment journey uses."""

    state: ContractState
    policy: PaymentPolicy

    def _is_open(self, seq: int) -> bool:
        milestone = self._milestone(seq)
        return milestone is not None and milestone.state not in (MilestoneState.paid,
                                                                 MilestoneState.cancelled)

    def _milestone(self, seq: int) -> Milestone | None:
        return next((m for m in self.state.milestones if m.seq == seq), None)

    def _next_due(self) -> datetime | None:
        return min((m.overdue_at for m in self.state.milestones
                    if m.overdue_at is not None
                    and m.state in (MilestoneState.scheduled, MilestoneState.overdue)),
                   default=None)

    def _send_customer(self, step: str, message_class: MessageClass,
                       facts: dict[str, Any], seq: int | None = None) -> None:
        """`seq`: a milestone's reminder, withdrawn if it waits out quiet hours
        past the milestone's settling."""
        def unwanted() -> str | None:
            if seq is None or self._is_open(seq):
                return None
            return f"milestone {seq} is settled"

        self.messenger.send(step=step, message_class=message_class,
                            recipient=Recipient(kind="customer", id=self.state.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.entity_id, facts=facts,
                            unwanted=unwanted)

    def _escalation(self, seq: int, level: int) -> OverdueEscalation:
        return OverdueEscalation(contract_id=self.state.contract_id,
                                 workflow_id=self.workflow_id, seq=seq, level=level,
                                 now=workflow.now())

    def _closed(self, status: Any, reason: str | None = None) -> ContractClosed:
        return ContractClosed(contract_id=self.state.contract_id,
                              workflow_id=self.workflow_id, status=status,
                              reason=reason, now=workflow.now())

    def _set_stage(self, stage: ContractStage) -> None:
        self.state.stage = stage
        self._publish()

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        s = self.state
        if s.stage not in ENDED:
            paid = any(m.paid > 0 for m in s.milestones)
            overdue = any(m.state is MilestoneState.overdue for m in s.milestones)
            s.stage = (ContractStage.overdue if overdue else
                       ContractStage.partially_paid if paid else ContractStage.awaiting_payment)
        next_due = self._next_due() if s.stage not in ENDED else None
        self._upsert({CRM_STAGE: s.stage.value, CRM_SLA_DEADLINE: next_due})
        lines = [f"**Contract {s.contract_id}** — {s.amount} {s.currency}, stage "
                 f"`{s.stage.value}`", f"owner: {s.owner_id}"]
        for m in s.milestones:
            lines.append(f"{m.name}: {m.paid}/{m.amount} {s.currency}, due "
                         f"{m.due_date or 'after acceptance'} ({m.state.value})")
        nxt = self._agenda().next()
        if nxt and s.stage not in ENDED:
            lines.append(f"next: {nxt.step} at {nxt.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))

    def _apply(self, schedule: Schedule) -> None:
        s = self.state
        s.milestones = schedule.milestones
        s.agenda = sorted([*s.agenda, *schedule.actions], key=lambda a: (a.at, a.seq))
        self._publish()

    def _facts(self, milestone: Milestone) -> dict[str, Any]:
        return {"seq": milestone.seq, "milestone": milestone.name,
                "amount": str(milestone.outstanding), "due_date": str(milestone.due_date)}

    def _payment_problem(self, payment: RecordPayment) -> str | None:
        s = self.state
        if s.stage in ENDED:
            return f"the contract is {s.stage.value}"
        if not payment.reference.strip():
            return "a payment reference is required"
        if "amount" not in payment.model_fields_set:
            return "amount is required"
        if payment.amount <= 0:
            return f"amount {payment.amount} must be positive"
        if payment.currency and payment.currency.upper() != s.currency:
            return f"currency {payment.currency} does not match the contract's {s.currency}"
        return None
