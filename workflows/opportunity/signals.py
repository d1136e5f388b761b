"""What the opportunity journey does with each signal."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.messaging import MessageClass, Recipient
    from domain.opportunities import (
        CLOSED,
        ActivityRecord,
        ForecastChange,
        LossRecord,
        NewOwner,
        Opened,
        OpportunityStage,
        OwnerHandover,
        QuoteRecord,
        StageMove,
        WinRecord,
        amount_problem,
        contract_id_for,
        stage_move_problem,
    )

from workflows.kit import Inbound, call
from workflows.opportunity.base import OpportunityBase


class OpportunitySignals(OpportunityBase):
    """The opportunity's signal handlers."""

    async def _on_advance(self, item: Inbound) -> Decision:
        s, advance = self.state, item.payload
        if problem := stage_move_problem(s.stage, advance.stage, advance.reason):
            return Decision(accepted=False, reason=problem)
        stage = OpportunityStage(advance.stage)
        await call("move_opportunity_stage", StageMove(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id, stage=stage,
            note=advance.note, reason=advance.reason, by=s.owner_id, now=workflow.now(),
            n=self._count("stage")))
        s.stage, s.stage_entered_at, s.stall_done = stage, workflow.now(), 0
        s.quote_follow_up_from = None
        if stage is OpportunityStage.proposal:
            self._notify_staff(s.owner_id, "quote_requested", {})
        self._publish()
        return Decision(accepted=True)

    async def _on_update_forecast(self, item: Inbound) -> Decision:
        s, forecast = self.state, item.payload
        if s.stage in CLOSED:
            return Decision(accepted=False, reason=self._ended_reason())
        if forecast.amount is None and forecast.close_date is None:
            return Decision(accepted=False, reason="nothing to change: give amount or close_date")
        if problem := amount_problem(forecast.amount, s.currency):
            return Decision(accepted=False, reason=problem)
        opened: Opened = await call("change_forecast", ForecastChange(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id,
            amount=forecast.amount, close_date=forecast.close_date, now=workflow.now(),
            n=self._count("forecast")), Opened)
        if forecast.amount is not None:
            s.amount = forecast.amount
        if forecast.close_date is not None and forecast.close_date != s.close_date:
            s.close_date, s.close_passed_at, s.close_told = (
                forecast.close_date, opened.close_passed_at, False)
        self._publish()
        return Decision(accepted=True, due_at=s.close_passed_at)

    async def _on_log_activity(self, item: Inbound) -> Decision:
        s, logged = self.state, item.payload
        if s.stage in CLOSED:
            return Decision(accepted=False, reason=self._ended_reason())
        if logged.owner_id != s.owner_id:
            return Decision(accepted=False, reason=f"{logged.owner_id or 'nobody'} does not own "
                                                   f"this opportunity (owner: {s.owner_id})")
        if logged.kind not in self.policy.activity_kinds:
            return Decision(accepted=False, reason=f"unknown kind {logged.kind!r}: expected one "
                                                   "of " + ", ".join(self.policy.activity_kinds))
        await call("log_opportunity_activity", ActivityRecord(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id,
            owner_id=logged.owner_id, kind=logged.kind, note=logged.note, now=workflow.now(),
            n=self._count("activity")))
        s.last_activity_at, s.stall_done = workflow.now(), 0
        s.quote_follow_up_from = None  # the owner has been in touch since the quote
        self._publish()
        return Decision(accepted=True)

    async def _on_send_quote(self, item: Inbound) -> Decision:
        s, quote = self.state, item.payload
        if s.stage not in (OpportunityStage.proposal, OpportunityStage.negotiation):
            return Decision(accepted=False, reason=f"the opportunity is {s.stage.value}: quotes "
                                                   "go out in proposal or negotiation")
        if quote.amount is None:
            return Decision(accepted=False, reason="amount is required")
        if problem := amount_problem(quote.amount, s.currency):
            return Decision(accepted=False, reason=problem)
        await call("record_quote", QuoteRecord(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id, amount=quote.amount,
            currency=s.currency, valid_until=quote.valid_until, items=quote.items,
            now=workflow.now(), n=self._count("quote")))
        s.quote_amount, s.quote_follow_up_from = quote.amount, workflow.now()
        self.messenger.send(
            step="quote", message_class=MessageClass.transactional,
            recipient=Recipient(kind="customer", id=s.customer_id),
            entity_kind=self.entity_kind, entity_id=self.entity_id,
            facts={"amount": str(quote.amount), "currency": s.currency,
                   "valid_until": quote.valid_until.isoformat() if quote.valid_until else None,
                   "items": [i.model_dump(mode="json") for i in quote.items]})
        self._publish()
        return Decision(accepted=True)

    async def _on_win(self, item: Inbound) -> Decision:
        s, win = self.state, item.payload
        if problem := self._win_problem(win):
            return Decision(accepted=False, reason=problem)
        contract = win.contract
        amount = contract.amount if contract and contract.amount is not None else s.amount
        assert amount is not None
        record = WinRecord(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id,
            contract_id=contract_id_for(s.opportunity_id), customer_id=s.customer_id,
            owner_id=s.owner_id, amount=amount,
            currency=(contract.currency if contract else s.currency).upper(),
            signed_at=(contract.signed_at if contract and contract.signed_at
                       else workflow.now()),
            milestones=contract.milestones if contract else None, now=workflow.now())
        await call("win_opportunity", record)
        # Stage, contract and payment journey exactly once: a second `win` finds
        # the stage won; a retried start finds the journey's id taken.
        s.stage, s.contract_id, s.stage_entered_at = (
            OpportunityStage.won, record.contract_id, workflow.now())
        await call("start_contract_journey", record)
        self._publish()
        return Decision(accepted=True, at=record.signed_at)

    async def _on_lose(self, item: Inbound) -> Decision:
        s, lose = self.state, item.payload
        if problem := self._lose_problem(lose):
            return Decision(accepted=False, reason=problem)
        await call("lose_opportunity", LossRecord(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id,
            reason_code=lose.reason_code, note=lose.note, now=workflow.now()))
        s.stage, s.lost_reason, s.stage_entered_at = (
            OpportunityStage.lost, lose.reason_code, workflow.now())
        self._publish()
        return Decision(accepted=True)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        s, gone = self.state, item.payload.staff_id
        if s.stage in CLOSED or gone != s.owner_id:
            return None  # a broadcast about someone else: nothing to do
        new: NewOwner = await call("hand_over_opportunity", OwnerHandover(
            opportunity_id=s.opportunity_id, workflow_id=self.workflow_id,
            from_owner_id=gone, now=workflow.now(), n=self._count("handover")), NewOwner)
        if new.owner_id is None:
            workflow.logger.warning("opportunity %s: nobody active to take over from %s",
                                    s.opportunity_id, gone)
            return None
        s.previous_owners.append(gone)
        s.owner_id = new.owner_id
        self._notify_staff(s.owner_id, "opportunity_reassigned",
                           {"previous_owner_id": gone, "stage": s.stage.value})
        self._publish()
        return Decision(accepted=True)
