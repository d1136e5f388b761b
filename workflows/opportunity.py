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

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.messaging import MessageClass, Recipient
    from domain.opportunities import (
        CLOSED,
        JOURNEY,
        PIPELINE,
        ActivityRecord,
        Advance,
        ForecastChange,
        LogActivity,
        Lose,
        LossRecord,
        NewOwner,
        Opened,
        OpenRequest,
        OpportunityInput,
        OpportunityPolicy,
        OpportunityStage,
        OpportunityStatus,
        OwnerHandover,
        QuoteRecord,
        SendQuote,
        StageMove,
        StallNotice,
        StallTargets,
        UpdateForecast,
        Win,
        WinRecord,
        amount_problem,
        contract_id_for,
        lost_reason_problem,
        stage_move_problem,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Agenda,
    Due,
    Inbound,
    Journey,
    Ladder,
    Level,
    Plan,
    WaitUntil,
    call,
    moves,
    refusal,
    start_input,
)

CLOSE_PASSED = WaitUntil("close_date_passed", "no decision", fact="the expected close date",
                         local_time=True)


def stalled(policy: OpportunityPolicy) -> Ladder:
    return Ladder("no activity logged in the stage", levels=(
        Level("stalled_owner", policy.stall_owner_after, "owner"),
        Level("stalled_manager", policy.stall_manager_after, "owner's manager"),
    ), sla=False)


def quote_follow_up(policy: OpportunityPolicy) -> WaitUntil:
    return WaitUntil("quote_follow_up", "quote follow-up for the owner", fact="the quote",
                     offset=policy.quote_follow_up_after)


def plan(policy: OpportunityPolicy | None = None) -> Plan:
    """Forward through needs analysis, proposal and negotiation; 7 days without
    logged activity in a stage reminds the owner, 14 days the manager; a quote
    unanswered for 3 days is followed up; a passed close date tells both; won
    starts the contract's payment journey, lost keeps its reason."""
    policy = policy or OpportunityPolicy()
    stage = OpportunityStage
    return Plan(
        journey=JOURNEY,
        parts=(stalled(policy), quote_follow_up(policy), CLOSE_PASSED),
        start=stage.needs_analysis,
        transitions=moves(
            (stage.needs_analysis, "advance", stage.proposal),
            (stage.proposal, "advance", stage.negotiation),
            (stage.needs_analysis, "advance", stage.negotiation),
            (PIPELINE, "win", stage.won),
            (PIPELINE, "lose", stage.lost),
        ),
        ends=(stage.won, stage.lost),
    )


@dataclass
class OpportunityState:
    opportunity_id: str
    customer_id: str
    owner_id: str
    currency: str
    amount: Decimal | None
    close_date: date | None
    stage: OpportunityStage = OpportunityStage.needs_analysis
    stage_entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    stall_done: int = 0  # rungs of the stall ladder done since the last activity
    close_passed_at: datetime | None = None
    close_told: bool = False
    quote_amount: Decimal | None = None
    quote_follow_up_from: datetime | None = None
    contract_id: str | None = None
    lost_reason: str | None = None
    previous_owners: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def quiet_since(self) -> datetime | None:
        """Since when the stage has had no logged activity."""
        times = [t for t in (self.stage_entered_at, self.last_activity_at) if t]
        return max(times) if times else None


@workflow.defn(name="OpportunityJourney", failure_exception_types=[pydantic.ValidationError])
class OpportunityJourney(Journey):
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

    # -- updates and the query -----------------------------------------------------------

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

    def _ended_reason(self) -> str:
        s = self.state
        if s.stage is OpportunityStage.won:
            return f"the opportunity is already won (contract {s.contract_id})"
        return f"the opportunity is {s.stage.value}"

    # -- the clock -------------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage not in PIPELINE:
            return Agenda()
        return Agenda.of(
            stalled(self.policy).entries(s.quiet_since(), done=s.stall_done),
            quote_follow_up(self.policy).entries(s.quote_follow_up_from),
            None if s.close_told else CLOSE_PASSED.entries_at(s.close_passed_at),
        )

    async def _step_stalled_owner(self, entry: Due) -> None:
        s = self.state
        await self._stall_notice(1)
        self._notify_staff(s.owner_id, "opportunity_stalled",
                           {"stage": s.stage.value, "since": s.quiet_since()})
        s.stall_done = 1
        self._publish()

    async def _step_stalled_manager(self, entry: Due) -> None:
        s = self.state
        targets = await self._stall_notice(2)
        self._notify_staff(targets.manager_id, "opportunity_stalled_escalated",
                           {"stage": s.stage.value, "since": s.quiet_since(),
                            "owner_id": s.owner_id})
        s.stall_done = 2
        self._publish()

    async def _step_close_date_passed(self, entry: Due) -> None:
        s = self.state
        targets = await self._stall_notice(0)
        facts = {"close_date": s.close_date.isoformat() if s.close_date else None,
                 "stage": s.stage.value, "owner_id": s.owner_id}
        self._notify_staff(s.owner_id, "opportunity_close_passed", facts)
        self._notify_staff(targets.manager_id, "opportunity_close_passed", facts)
        s.close_told = True
        self._publish()

    async def _step_quote_follow_up(self, entry: Due) -> None:
        s = self.state
        self._notify_staff(s.owner_id, "quote_follow_up",
                           {"amount": str(s.quote_amount), "currency": s.currency,
                            "sent_at": s.quote_follow_up_from})
        s.quote_follow_up_from = None
        self._publish()

    # -- acting on signals -----------------------------------------------------------------

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

    # -- small helpers ---------------------------------------------------------------------

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
