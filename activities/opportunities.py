"""Opportunity activities: opening, stage moves with their history, forecasts,
logged activities, quotes, stalled-deal nudges, the win (its contract and
payment journey) and the loss with its reason (what they read and write in
the store is in `activities.opportunity_records`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.journal import record_event
from activities.lead_conversion import convert
from activities.logs import activity_logger
from activities.onboarding import start_onboarding_journey
from activities.opportunity_records import (
    OPEN_STAGES,
    customer_zone,
    get_opportunity,
    record_stage_change,
)
from activities.parts import ActivityParts
from activities.store import Store, refuse_invalid
from activities.store.staff import active_manager_above
from domain import limits, schema
from domain.leads import ConvertRequest
from domain.money import from_minor, to_minor
from domain.onboarding import OnboardingInput
from domain.opportunities import (
    JOURNEY,
    ActivityRecord,
    ForecastChange,
    LeadHandover,
    LossRecord,
    NewOwner,
    Opened,
    OpenRequest,
    OpportunityInput,
    OpportunityPolicy,
    OpportunityStage,
    OwnerHandover,
    QuoteRecord,
    StageMove,
    StallNotice,
    StallTargets,
    WinRecord,
    opportunity_workflow_id,
)
from domain.payments import ContractInput, contract_workflow_id, overdue_from

if TYPE_CHECKING:
    from temporalio.client import Client

log = activity_logger("crm.opportunities")


class OpportunityActivities:
    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: OpportunityPolicy
                   ) -> OpportunityActivities:
        return cls(store=parts.store, policy=policy, client=parts.client,
                   task_queue=parts.task_queue,
                   default_timezone=parts.settings.default_timezone)

    def __init__(self, *, store: Store, policy: OpportunityPolicy, client: Client | None = None,
                 task_queue: str = "crm-journeys",
                 default_timezone: str = "Asia/Shanghai") -> None:
        self.store = store
        self.policy = policy
        self.client = client
        self.task_queue = task_queue
        self.default_timezone = default_timezone

    @activity.defn
    def load_opportunity_policy(self) -> OpportunityPolicy:
        return self.policy

    @activity.defn
    def open_opportunity(self, request: OpenRequest) -> Opened:
        """Records the opportunity (or takes over the one a converted lead
        created) in stage needs analysis; an unknown customer or owner is
        refused, writing nothing."""
        o = request.opportunity
        with self.store.unit_of_work() as session:
            problems = []
            customer = session.get(schema.Customer, o.customer_id)
            if customer is None:
                problems.append(f"unknown customer {o.customer_id!r}")
            owner = session.get(schema.Staff, o.owner_id)
            if owner is None:
                problems.append(f"unknown owner {o.owner_id!r}")
            elif not owner.active:
                problems.append(f"owner {owner.id} is inactive")
            if problems:
                raise ApplicationError(
                    f"opportunity {o.opportunity_id!r} rejected: " + "; ".join(problems),
                    type="InvalidOpportunity", non_retryable=True)
            assert customer is not None
            zone = customer.timezone or self.default_timezone
            row = session.get(schema.Opportunity, o.opportunity_id)
            if row is None:
                row = schema.Opportunity(
                    id=o.opportunity_id, lead_id=o.lead_id, customer_id=o.customer_id,
                    name=o.name or o.opportunity_id, stage=OpportunityStage.needs_analysis.value,
                    currency=o.currency.upper(), created_at=request.now)
                session.add(row)
            row.owner_id = o.owner_id
            if o.amount is not None:
                row.amount_minor = to_minor(o.amount, o.currency)
                row.currency = o.currency.upper()
            if o.close_date is not None:
                row.close_date = o.close_date
            row.stage_entered_at = row.stage_entered_at or request.now
            session.flush()
            record_stage_change(session, key=f"{request.workflow_id}:opened", row=row,
                           from_stage=None, stage=row.stage, by=o.owner_id, note=None,
                           at=request.now)
            record_event(session, key=f"{request.workflow_id}:opened", journey=JOURNEY,
                         entity_id=row.id, step="opened", at=request.now,
                         detail={"owner_id": o.owner_id, "lead_id": o.lead_id})
            return Opened(timezone=zone, stage=OpportunityStage(row.stage),
                          close_passed_at=overdue_from(row.close_date, zone)
                          if row.close_date else None)

    @activity.defn
    def move_opportunity_stage(self, request: StageMove) -> None:
        refuse_invalid({"note": limits.text_problem(request.note, limits.TEXT),
                        "reason": limits.text_problem(request.reason, limits.TEXT)})
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            key = f"{request.workflow_id}:stage:{request.n}"
            if session.scalar(select(schema.OpportunityStageChange.id)
                              .where(schema.OpportunityStageChange.key == key)):
                return  # a retry of a move that committed
            previous = row.stage
            row.stage = request.stage.value
            row.stage_entered_at = request.now
            note = "; ".join(t for t in (request.note, request.reason) if t) or None
            record_stage_change(session, key=key, row=row, from_stage=previous,
                           stage=request.stage.value, by=request.by, note=note, at=request.now)
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id,
                         step=request.stage.value, at=request.now,
                         detail={"from": previous, "reason": request.reason})

    @activity.defn
    def change_forecast(self, request: ForecastChange) -> Opened:
        """A new expected amount or close date; returns when the close date passes."""
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            if request.amount is not None:
                refuse_invalid({"amount": limits.amount_problem(request.amount, row.currency)})
                row.amount_minor = to_minor(request.amount, row.currency)
            if request.close_date is not None:
                row.close_date = request.close_date
            record_event(session, key=f"{request.workflow_id}:forecast:{request.n}",
                         journey=JOURNEY, entity_id=row.id, step="forecast", at=request.now,
                         detail={"amount": str(request.amount) if request.amount else None,
                                 "close_date": request.close_date.isoformat()
                                 if request.close_date else None})
            zone = customer_zone(session, row, self.default_timezone)
            return Opened(timezone=zone, stage=OpportunityStage(row.stage),
                          close_passed_at=overdue_from(row.close_date, zone)
                          if row.close_date else None)

    @activity.defn
    def log_opportunity_activity(self, request: ActivityRecord) -> None:
        refuse_invalid({"kind": limits.text_problem(request.kind, limits.CHANNEL),
                        "note": limits.text_problem(request.note, limits.TEXT)})
        key = f"{request.workflow_id}:activity:{request.n}"
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            if session.scalar(select(schema.Interaction.id).where(schema.Interaction.key == key)):
                return
            session.add(schema.Interaction(
                key=key, customer_id=row.customer_id, staff_id=request.owner_id,
                channel=request.kind, note=f"opportunity {row.id}"
                + (f": {request.note}" if request.note else ""),
                at=request.now, recorded_at=request.now))
            row.last_activity_at = request.now
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id, step="activity",
                         at=request.now, detail={"kind": request.kind})

    @activity.defn
    def record_quote(self, request: QuoteRecord) -> None:
        refuse_invalid({"amount": limits.amount_problem(request.amount, request.currency)})
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            row.quote_amount_minor = to_minor(request.amount, request.currency)
            record_event(session, key=f"{request.workflow_id}:quote:{request.n}",
                         journey=JOURNEY, entity_id=row.id, step="quote_sent", at=request.now,
                         detail={"amount": str(request.amount),
                                 "valid_until": request.valid_until.isoformat()
                                 if request.valid_until else None})

    @activity.defn
    def nudge_stalled_opportunity(self, request: StallNotice) -> StallTargets:
        """Records a stalled-deal nudge (level 1 the owner, 2 the owner's
        manager, 0 the close date passed); returns the owner's manager."""
        key = f"{request.workflow_id}:stalled:{request.level}:{request.n}"
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:
                return StallTargets(manager_id=done.to_staff_id)
            manager = active_manager_above(session, session.get(schema.Staff, request.owner_id))
            manager_id = manager.id if manager else None
            step = {0: "close_date_passed", 1: "stalled", 2: "stalled_escalated"}[request.level]
            if request.level != 1:
                session.add(schema.Escalation(
                    key=key, journey=JOURNEY, entity_id=row.id, level=request.level,
                    reason="expected close date passed without a decision" if request.level == 0
                    else "no activity logged in the stage",
                    from_staff_id=request.owner_id, to_staff_id=manager_id, at=request.now))
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id, step=step,
                         at=request.now, detail={"manager_id": manager_id})
            return StallTargets(manager_id=manager_id)

    @activity.defn
    def win_opportunity(self, request: WinRecord) -> None:
        """The opportunity won, linked to its contract (one per opportunity)."""
        refuse_invalid({"currency": limits.currency_problem(request.currency),
                        "amount": limits.amount_problem(request.amount, request.currency)})
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            if row.contract_id is not None:
                return  # a retry of a win that committed
            previous = row.stage
            row.stage = OpportunityStage.won.value
            row.contract_id = request.contract_id
            row.closed_at = request.now
            row.stage_entered_at = request.now
            key = f"{request.workflow_id}:won"
            record_stage_change(session, key=key, row=row, from_stage=previous,
                           stage=row.stage, by=request.owner_id, note=None, at=request.now)
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id, step="won",
                         at=request.now, detail={"contract_id": request.contract_id,
                                                 "amount": str(request.amount),
                                                 "currency": request.currency})

    @activity.defn
    async def start_contract_journey(self, request: WinRecord) -> str:
        """Starts the won opportunity's PaymentJourney (`contract-{id}`, which
        records the contract) and its OnboardingJourney. A journey id is used
        once: a retry, or a contract already signed by hand under that id,
        starts nothing more."""
        if self.client is None:
            raise ApplicationError("no Temporal client to start the payment journey",
                                   non_retryable=True)
        workflow_id = contract_workflow_id(request.contract_id)
        contract = ContractInput(
            contract_id=request.contract_id, customer_id=request.customer_id,
            owner_id=request.owner_id, amount=request.amount, currency=request.currency,
            signed_at=request.signed_at, milestones=request.milestones)
        try:
            await self.client.start_workflow(
                "PaymentJourney", contract, id=workflow_id, task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            log.info("contract journey %s already started", workflow_id)
        await start_onboarding_journey(self.client, task_queue=self.task_queue,
                                       onboarding=OnboardingInput(
                                           contract_id=request.contract_id,
                                           customer_id=request.customer_id,
                                           owner_id=request.owner_id,
                                           signed_at=request.signed_at))
        return workflow_id

    @activity.defn
    async def start_opportunity_journey(self, request: LeadHandover) -> str | None:
        """Starts the journey of the opportunity a converted lead created, with
        the lead's owner, customer and amount; once (a journey id is used once).
        None when the opportunity has no owner (a lead converted from the pool):
        it stays in the store without a journey until someone starts one."""
        if self.client is None:
            raise ApplicationError("no Temporal client to start the opportunity journey",
                                   non_retryable=True)
        opportunity = await asyncio.to_thread(self._handover_input, request.opportunity_id)
        if opportunity is None:
            log.warning("opportunity %s has no owner: no journey started",
                        request.opportunity_id)
            return None
        workflow_id = opportunity_workflow_id(opportunity.opportunity_id)
        try:
            await self.client.start_workflow(
                "OpportunityJourney", opportunity, id=workflow_id, task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            log.info("opportunity journey %s already started", workflow_id)
        return workflow_id

    @activity.defn
    async def convert_lead_and_start_opportunity(self, request: ConvertRequest) -> str:
        """A lead's conversion (`convert_lead`) and its opportunity's journey
        (`start_opportunity_journey`) as one activity. Both are done once
        however often they run, so a retry after either finds its work done."""
        opportunity_id = await asyncio.to_thread(convert, self.store, request)
        await self.start_opportunity_journey(LeadHandover(
            opportunity_id=opportunity_id, lead_workflow_id=request.workflow_id))
        return opportunity_id

    def _handover_input(self, opportunity_id: str) -> OpportunityInput | None:
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, opportunity_id)
            if row.owner_id is None or row.customer_id is None:
                return None
            return OpportunityInput(
                opportunity_id=row.id, customer_id=row.customer_id, owner_id=row.owner_id,
                name=row.name, currency=row.currency, lead_id=row.lead_id,
                amount=from_minor(row.amount_minor, row.currency)
                if row.amount_minor is not None else None)

    @activity.defn
    def lose_opportunity(self, request: LossRecord) -> None:
        refuse_invalid({"reason_code": limits.text_problem(request.reason_code, 32),
                        "note": limits.text_problem(request.note, limits.TEXT)})
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            if row.stage == OpportunityStage.lost.value:
                return
            previous = row.stage
            row.stage = OpportunityStage.lost.value
            row.lost_reason = request.reason_code
            row.lost_note = request.note
            row.closed_at = request.now
            row.stage_entered_at = request.now
            key = f"{request.workflow_id}:lost"
            record_stage_change(session, key=key, row=row, from_stage=previous, stage=row.stage,
                           by=row.owner_id, note=request.note, at=request.now)
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id, step="lost",
                         at=request.now, detail={"reason_code": request.reason_code})

    @activity.defn
    def hand_over_opportunity(self, request: OwnerHandover) -> NewOwner:
        """A deactivated owner's opportunity goes to the active rep under the
        same manager with the fewest open opportunities, else to the manager."""
        key = f"{request.workflow_id}:handover:{request.n}"
        with self.store.unit_of_work() as session:
            row = get_opportunity(session, request.opportunity_id)
            done = session.scalar(select(schema.JourneyEvent)
                                  .where(schema.JourneyEvent.key == key))
            if done is not None:
                return NewOwner(owner_id=(done.detail or {}).get("owner_id"))
            gone = session.get(schema.Staff, request.from_owner_id)
            loads = dict(session.execute(
                select(schema.Opportunity.owner_id, func.count())
                .where(schema.Opportunity.stage.in_(OPEN_STAGES))
                .group_by(schema.Opportunity.owner_id)).all())
            peers = [s for s in session.scalars(select(schema.Staff).where(
                schema.Staff.role == "rep", schema.Staff.active.is_(True)))
                if gone is not None and s.manager_id == gone.manager_id and s.id != gone.id]
            chosen = min(peers, key=lambda s: (loads.get(s.id, 0), s.id), default=None)
            if chosen is None:
                chosen = active_manager_above(session, gone)
            owner_id = chosen.id if chosen else None
            if owner_id:
                row.owner_id = owner_id
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id,
                         step="owner_reassigned", at=request.now,
                         detail={"from_owner_id": request.from_owner_id, "owner_id": owner_id})
            return NewOwner(owner_id=owner_id)
