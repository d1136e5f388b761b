"""What the payment journey does with each signal."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.messaging import MessageClass
    from domain.payments import (
        AcceptRequest,
        ContractStage,
        MilestoneState,
        NewOwner,
        OwnerHandover,
        PaymentRequest,
        PaymentResult,
        Schedule,
    )

from workflows.kit import CRM_OWNER_ID, Inbound, call, patched
from workflows.payment.base import PaymentBase
from workflows.payment.plan import ADOPT_RECORDED_PAYMENT, ENDED


class PaymentSignals(PaymentBase):
    """The contract's signal handlers."""

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
            AcceptRequest(contract_id=s.contract_id, workflow_id=self.workflow_id,
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
                               workflow_id=self.workflow_id, amount=payment.amount,
                               currency=s.currency, paid_at=payment.paid_at or item.received_at,
                               reference=payment.reference, now=workflow.now()),
                PaymentResult,
            )
        except ActivityError as err:
            cause = err.cause
            return Decision(accepted=False, reason=cause.message
                            if isinstance(cause, ApplicationError) else str(err))
        if result.duplicate and payment.reference not in s.references and \
                patched(ADOPT_RECORDED_PAYMENT):
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
            contract_id=s.contract_id, workflow_id=self.workflow_id,
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
        self._upsert({CRM_OWNER_ID: s.owner_id})
        self._notify_staff(s.owner_id, "payment_owner_changed", facts)
        self._publish()
        return Decision(accepted=True)
