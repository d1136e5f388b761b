"""OpportunityJourney: a deal from 需求调研 needs analysis through 方案报价
proposal and 谈判签约 negotiation to won or lost.

The rep moves it forward stage by stage (`advance`; a skipped stage needs a
reason), keeps the forecast (`update_forecast`) and logs what they do
(`log_activity`). Entering proposal asks the owner for the quote; a quote
sent to the customer (`send_quote`) is followed up when the customer has not
answered within the policy's days. A stage with no logged activity for 7 days
reminds the owner, for 14 days the owner's manager; an expected close date
passed without a decision tells both. `win` records the contract linked to the
opportunity and starts its PaymentJourney, once however often it is sent;
`lose` records a reason code from the policy's list.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.opportunities import (
        CLOSED,
        JOURNEY,
        PIPELINE,
        Advance,
        LogActivity,
        Lose,
        Opened,
        OpenRequest,
        OpportunityInput,
        OpportunityPolicy,
        OpportunityStage,
        OpportunityStatus,
        SendQuote,
        UpdateForecast,
        Win,
        stage_move_problem,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    call,
    refusal,
    start_input,
)
from workflows.opportunity.clock import OpportunityClockSteps
from workflows.opportunity.plan import OpportunityState, plan
from workflows.opportunity.signals import OpportunitySignals


@workflow.defn(name="OpportunityJourney", failure_exception_types=[pydantic.ValidationError])
class OpportunityJourney(OpportunitySignals, OpportunityClockSteps):
    journey = JOURNEY
    entity_kind = "opportunity"
    signals = {"advance": Advance, "update_forecast": UpdateForecast,
               "log_activity": LogActivity, "send_quote": SendQuote, "win": Win, "lose": Lose}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.opportunity = o = start_input(args, OpportunityInput)
        self.state = OpportunityState(
            opportunity_id=o.opportunity_id, customer_id=o.customer_id, owner_id=o.owner_id,
            currency=o.currency.upper(), amount=o.amount, close_date=o.close_date)
        self.policy: OpportunityPolicy = o.policy or OpportunityPolicy()
        self._setup_journey(o.opportunity_id, self.state.counters, plan(self.policy))

    @workflow.run
    async def run(self, *args: Any) -> OpportunityStatus:
        """Takes one `OpportunityInput`."""
        s, o = self.state, self.opportunity
        if o.policy is None:
            self.policy = await call("load_opportunity_policy", result_type=OpportunityPolicy)
            self.plan = plan(self.policy)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id})
        opened = await self._open(o)
        s.stage = opened.stage if opened.stage in PIPELINE else OpportunityStage.needs_analysis
        s.stage_entered_at = workflow.now()
        s.close_passed_at = opened.close_passed_at
        self._publish()
        await self._serve(lambda: s.stage in CLOSED)
        await self._drain()
        return self.status()

    @workflow.update(name="advance_now")
    async def advance_now(self, payload: Advance) -> Decision:
        """`advance` with an answer: accepted, or why not."""
        return await self._answer("advance", payload)

    @advance_now.validator
    def _validate_advance_now(self, payload: Advance) -> None:
        if problem := stage_move_problem(self.state.stage, payload.stage, payload.reason):
            raise refusal(problem)

    @workflow.update(name="win_now")
    async def win_now(self, payload: Win) -> Decision:
        """`win` with an answer: accepted (the contract id), or why not."""
        return await self._answer("win", payload)

    @win_now.validator
    def _validate_win_now(self, payload: Win) -> None:
        if problem := self._win_problem(payload):
            raise refusal(problem)

    @workflow.update(name="lose_now")
    async def lose_now(self, payload: Lose) -> Decision:
        """`lose` with an answer: accepted, or why not."""
        return await self._answer("lose", payload)

    @lose_now.validator
    def _validate_lose_now(self, payload: Lose) -> None:
        if problem := self._lose_problem(payload):
            raise refusal(problem)

    @workflow.query(name="status")
    def status(self) -> OpportunityStatus:
        s = self.state
        return OpportunityStatus(
            opportunity_id=s.opportunity_id, customer_id=s.customer_id, owner_id=s.owner_id,
            stage=s.stage, amount=s.amount, currency=s.currency, close_date=s.close_date,
            stage_entered_at=s.stage_entered_at, last_activity_at=s.last_activity_at,
            quote_amount=s.quote_amount, contract_id=s.contract_id, lost_reason=s.lost_reason,
            waiting_for=self._waiting_for(), deadline=self._agenda().next_at(),
            rejections=list(self.rejections), policy=self.policy)

    async def _open(self, o: OpportunityInput) -> Opened:
        try:
            opened: Opened = await call("open_opportunity", OpenRequest(
                opportunity=o.model_copy(update={"policy": None}),
                workflow_id=self.workflow_id, now=workflow.now()), Opened)
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="InvalidOpportunity",
                                   non_retryable=True) from err
        return opened
