"""PaymentJourney: a signed contract's payment milestones, reminded, chased and
allocated until it is paid in full or cancelled.

By default 30% is due 7 days after signing and 70% 30 days after acceptance.
Before each due date the customer is reminded and the owner told (7 days and
1 day before, and on the day); a milestone unpaid at the local midnight after
its due date is overdue: the customer is reminded a day later, and a week
later the owner's manager and finance are alerted, weekly while it stays
unpaid. Payments are allocated to the milestones in order; each brings a
receipt. All dates and times of day are the customer's, worked out by the
activities, so the journey only waits for moments it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.messaging import MessageClass, Recipient
    from domain.payments import (
        JOURNEY,
        Accept,
        AcceptRequest,
        Action,
        ActionKind,
        Cancel,
        ContractClosed,
        ContractInput,
        ContractStage,
        ContractStatus,
        EscalationTargets,
        Milestone,
        MilestoneState,
        NewOwner,
        OverdueEscalation,
        OwnerHandover,
        PaymentPolicy,
        PaymentRequest,
        PaymentResult,
        RecordPayment,
        Schedule,
        SignRequest,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Agenda,
    Cadence,
    Due,
    Inbound,
    Journey,
    Plan,
    StepsPerWake,
    WaitUntil,
    call,
    moves,
    refusal,
    start_input,
    upsert_search_attributes,
)

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
                      fact=f"{days} before a milestone's due date, {at}", local_time=True),
            WaitUntil("overdue", STEP_WORDS[ActionKind.overdue],
                      fact="the midnight after the due date", local_time=True),
            WaitUntil("overdue_reminder", STEP_WORDS[ActionKind.overdue_reminder],
                      fact="the due date",
                      offset=timedelta(days=policy.overdue_reminder_days_after),
                      local_time=True),
            Cadence("escalation", STEP_WORDS[ActionKind.escalation],
                    every=timedelta(days=policy.escalation_repeat_days), until_misses=None,
                    then="paid", sla=False),
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


@workflow.defn(name="PaymentJourney", failure_exception_types=[pydantic.ValidationError])
class PaymentJourney(Journey):
    journey = JOURNEY
    entity_kind = "contract"
    signals = {"accept": Accept, "record_payment": RecordPayment, "cancel": Cancel}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.contract = contract = start_input(args, ContractInput)
        self.state = ContractState(
            contract_id=contract.contract_id,
            customer_id=contract.customer_id,
            owner_id=contract.owner_id,
            amount=contract.amount,
            currency=contract.currency.upper(),
            signed_at=contract.signed_at,
        )
        self.policy: PaymentPolicy = contract.policy or PaymentPolicy()
        self._setup_journey(contract.contract_id, self.state.counters, plan(self.policy))

    @workflow.run
    async def run(self, *args: Any) -> ContractStatus:
        """Takes one `ContractInput`."""
        s, contract = self.state, self.contract
        if contract.policy is None:
            self.policy = await call("load_payment_policy", result_type=PaymentPolicy)
            self.plan = plan(self.policy)
        upsert_search_attributes({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id,
                                  CRM_OWNER_ID: s.owner_id})
        self._apply(await self._sign(contract))

        await self._serve(lambda: s.stage in ENDED)
        await self._drain()
        return self.status()

    # -- signals and the query -------------------------------------------------------

    @workflow.update(name="record_payment_now")
    async def record_payment_now(self, payload: RecordPayment) -> Decision:
        """`record_payment` with an answer: accepted, or why not."""
        return await self._answer("record_payment", payload)

    @record_payment_now.validator
    def _validate_record_payment_now(self, payload: RecordPayment) -> None:
        problem = self._payment_problem(payload)
        if problem:
            raise refusal(problem)

    @workflow.query(name="status")
    def status(self) -> ContractStatus:
        s = self.state
        # A settled milestone's reminders and escalations are gone once it is
        # settled, not when they would have fallen due.
        open_actions = [a for a in s.agenda if self._is_open(a.seq)]
        next_action = min(open_actions, key=lambda a: a.at) if open_actions else None
        return ContractStatus(
            contract_id=s.contract_id,
            customer_id=s.customer_id,
            owner_id=s.owner_id,
            amount=s.amount,
            currency=s.currency,
            stage=s.stage,
            accepted_at=s.accepted_at,
            milestones=list(s.milestones),
            paid=sum((m.paid for m in s.milestones), Decimal(0)),
            credit=s.credit,
            next_due=self._next_due(),
            next_action=next_action,
            references=list(s.references),
            ignored_duplicates=s.ignored_duplicates,
            rejections=list(self.rejections),
            policy=self.policy,
            previous_owners=list(s.previous_owners),
        )

    def _ended_reason(self) -> str:
        return f"the contract is {self.state.stage.value}"

    # -- the clock -------------------------------------------------------------------

    def _is_open(self, seq: int) -> bool:
        milestone = self._milestone(seq)
        return milestone is not None and milestone.state not in (MilestoneState.paid,
                                                                 MilestoneState.cancelled)

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

    def _facts(self, milestone: Milestone) -> dict[str, Any]:
        return {"seq": milestone.seq, "milestone": milestone.name,
                "amount": str(milestone.outstanding), "due_date": str(milestone.due_date)}

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

    # -- acting on signals -------------------------------------------------------------

    async def _on_accept(self, item: Inbound) -> Decision:
        s, accept = self.state, item.payload
        if s.accepted_at is not None:
            return Decision(accepted=False,
                            reason=f"already accepted at {s.accepted_at.isoformat()}")
        accepted_at = accept.accepted_at or item.received_at
        if accepted_at < s.signed_at or accepted_at > item.received_at:
            return Decision(accepted=False,
                            reason=f"accepted_at {accepted_at.isoformat()} is not between "
                            f"signing ({s.signed_at.isoformat()}) and now")
        schedule: Schedule = await call(
            "accept_contract",
            AcceptRequest(contract_id=s.contract_id, workflow_id=workflow.info().workflow_id,
                          accepted_at=accepted_at, milestones=s.milestones, policy=self.policy,
                          now=workflow.now()),
            Schedule,
        )
        s.accepted_at = accepted_at
        self._apply(schedule)
        return Decision(accepted=True, at=accepted_at)

    async def _on_record_payment(self, item: Inbound) -> Decision | None:
        s, payment = self.state, item.payload
        problem = self._payment_problem(payment)
        if problem:
            return Decision(accepted=False, reason=problem)
        try:
            result: PaymentResult = await call(
                "record_payment",
                PaymentRequest(contract_id=s.contract_id,
                               workflow_id=workflow.info().workflow_id, amount=payment.amount,
                               currency=s.currency, paid_at=payment.paid_at or item.received_at,
                               reference=payment.reference, now=workflow.now()),
                PaymentResult,
            )
        except ActivityError as err:
            cause = err.cause
            return Decision(accepted=False, reason=cause.message
                            if isinstance(cause, ApplicationError) else str(err))
        if result.duplicate and payment.reference not in s.references and \
                workflow.patched(ADOPT_RECORDED_PAYMENT):
            # The store holds this payment but the journey never took it in (a
            # retry once mistook its own first attempt for a duplicate): the
            # journey takes the store's milestones, and sending the payment
            # again repairs a journey that missed it.
            workflow.logger.warning("contract %s: payment %s was recorded but not taken in; "
                                    "taking the store's milestones", s.contract_id,
                                    payment.reference)
        elif result.duplicate:
            s.ignored_duplicates += 1
            workflow.logger.info("contract %s: payment %s already recorded, ignored",
                                 s.contract_id, payment.reference)
            return Decision(accepted=True, reason="already recorded")
        s.references.append(payment.reference)
        s.credit += result.credit
        s.milestones = result.milestones
        self._send_customer("payment_receipt", MessageClass.transactional, {
            "amount": str(payment.amount), "reference": payment.reference,
            "credit": str(result.credit)})
        if all(m.state is MilestoneState.paid for m in s.milestones):
            await call("close_contract", self._closed("paid"))
            s.agenda = []
            self._set_stage(ContractStage.paid)
        else:
            self._publish()
        return Decision(accepted=True)

    async def _on_cancel(self, item: Inbound) -> Decision:
        s, cancel = self.state, item.payload
        if not cancel.reason.strip():
            return Decision(accepted=False, reason="a reason is required to cancel a contract")
        await call("close_contract", self._closed("cancelled", cancel.reason))
        s.agenda = []
        for m in s.milestones:
            if m.state is not MilestoneState.paid:
                m.state = MilestoneState.cancelled
        self._set_stage(ContractStage.cancelled)
        return Decision(accepted=True)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        s, staff_id = self.state, item.payload.staff_id
        if s.stage in ENDED or staff_id != s.owner_id:
            return None  # a broadcast about someone else, or nothing left to chase
        new: NewOwner = await call("hand_over_contract", OwnerHandover(
            contract_id=s.contract_id, workflow_id=workflow.info().workflow_id,
            previous_owner_id=staff_id, n=self._count("owner_changed"), now=workflow.now(),
        ), NewOwner)
        next_due = min((m.due_date for m in s.milestones if m.due_date is not None
                        and m.state in (MilestoneState.scheduled, MilestoneState.overdue)),
                       default=None)
        facts = {"previous_owner_id": staff_id, "how": new.how,
                 "next_due_date": str(next_due) if next_due else None}
        if new.owner_id is None:
            # Nobody active to take it: it stays with the departed owner (whose
            # notices the send path suppresses) and finance is asked to step in.
            for finance_id in new.finance_ids:
                self._notify_staff(finance_id, "payment_owner_changed", facts)
            return Decision(accepted=True, reason="no active rep or manager to take it over")
        s.previous_owners.append(staff_id)
        s.owner_id = new.owner_id
        upsert_search_attributes({CRM_OWNER_ID: s.owner_id})
        self._notify_staff(s.owner_id, "payment_owner_changed", facts)
        self._publish()
        return Decision(accepted=True)

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

    # -- small helpers -------------------------------------------------------------------

    async def _sign(self, contract: ContractInput) -> Schedule:
        try:
            return await call("sign_contract", SignRequest(
                contract=contract.model_copy(update={"policy": None}),
                plan=contract.milestones or self.policy.default_plan,
                policy=self.policy,
                workflow_id=workflow.info().workflow_id,
                now=workflow.now(),
            ), Schedule)
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="InvalidContract", non_retryable=True) from err

    def _apply(self, schedule: Schedule) -> None:
        s = self.state
        s.milestones = schedule.milestones
        s.agenda = sorted([*s.agenda, *schedule.actions], key=lambda a: (a.at, a.seq))
        self._publish()

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
                                 workflow_id=workflow.info().workflow_id, seq=seq, level=level,
                                 now=workflow.now())

    def _closed(self, status: Any, reason: str | None = None) -> ContractClosed:
        return ContractClosed(contract_id=self.state.contract_id,
                              workflow_id=workflow.info().workflow_id, status=status,
                              reason=reason, now=workflow.now())

    def _set_stage(self, stage: ContractStage) -> None:
        self.state.stage = stage
        self._publish()

    def _publish(self) -> None:
        s = self.state
        if s.stage not in ENDED:
            paid = any(m.paid > 0 for m in s.milestones)
            overdue = any(m.state is MilestoneState.overdue for m in s.milestones)
            s.stage = (ContractStage.overdue if overdue else
                       ContractStage.partially_paid if paid else ContractStage.awaiting_payment)
        next_due = self._next_due() if s.stage not in ENDED else None
        upsert_search_attributes({CRM_STAGE: s.stage.value, CRM_SLA_DEADLINE: next_due})
        lines = [f"**Contract {s.contract_id}** — {s.amount} {s.currency}, stage "
                 f"`{s.stage.value}`", f"owner: {s.owner_id}"]
        for m in s.milestones:
            lines.append(f"{m.name}: {m.paid}/{m.amount} {s.currency}, due "
                         f"{m.due_date or 'after acceptance'} ({m.state.value})")
        nxt = self._agenda().next()
        if nxt and s.stage not in ENDED:
            lines.append(f"next: {nxt.step} at {nxt.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))
