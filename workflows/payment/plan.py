"""The payment journey's declaration: its state and its plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.payments import JOURNEY, Action, ActionKind, ContractStage, Milestone, PaymentPolicy

from workflows.kit import Cadence, Plan, StepsPerWake, WaitUntil, moves

ENDED = (ContractStage.paid, ContractStage.cancelled)
ADOPT_RECORDED_PAYMENT = "adopt-recorded-payment"
STEP_WORDS = {ActionKind.reminder: "payment reminder", ActionKind.overdue: "overdue",
              ActionKind.overdue_reminder: "overdue reminder",
              ActionKind.escalation: "escalation to the manager and finance"}


def plan(policy: PaymentPolicy | None = None) -> Plan:
    """Per milestone: reminders before and on the due date, overdue from the
    local midnight after it, an overdue reminder, then weekly escalations."""
    policy = policy or PaymentPolicy()
    at = f"at {policy.notice_time:%H:%M}"
    days = ", ".join(f"{d} days" if d != 1 else "1 day" for d in policy.reminder_days_before)
    stage = ContractStage
    return Plan(
        journey=JOURNEY,
        parts=(
            WaitUntil("reminder", STEP_WORDS[ActionKind.reminder],
                      fact=f"{days} before a milestone's due date, {at}", local_time=True,
                      wait="payment_due"),
            WaitUntil("overdue", STEP_WORDS[ActionKind.overdue],
                      fact="the midnight after the due date", local_time=True,
                      wait="payment_due"),
            WaitUntil("overdue_reminder", STEP_WORDS[ActionKind.overdue_reminder],
                      fact="the due date",
                      offset=timedelta(days=policy.overdue_reminder_days_after),
                      local_time=True, wait="overdue"),
            Cadence("escalation", STEP_WORDS[ActionKind.escalation],
                    every=timedelta(days=policy.escalation_repeat_days), until_misses=None,
                    then="paid", sla=False, wait="overdue_escalation"),
        ),
        start=stage.awaiting_payment,
        transitions=moves(
            ((stage.awaiting_payment, stage.partially_paid), "overdue", stage.overdue),
            ((stage.awaiting_payment, stage.overdue), "record_payment", stage.partially_paid),
            ((stage.awaiting_payment, stage.partially_paid, stage.overdue), "record_payment",
             stage.paid),
            ((stage.awaiting_payment, stage.partially_paid, stage.overdue), "cancel",
             stage.cancelled),
        ),
        ends=ENDED,
        # Every step due at a wake is taken before the signals that came meanwhile.
        steps_per_wake=StepsPerWake.all_due,
    )


@dataclass
class ContractState:
    contract_id: str
    customer_id: str
    owner_id: str
    amount: Decimal
    currency: str
    signed_at: datetime
    stage: ContractStage = ContractStage.awaiting_payment
    accepted_at: datetime | None = None
    milestones: list[Milestone] = field(default_factory=list)
    agenda: list[Action] = field(default_factory=list)
    credit: Decimal = Decimal(0)
    references: list[str] = field(default_factory=list)
    ignored_duplicates: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    previous_owners: list[str] = field(default_factory=list)
