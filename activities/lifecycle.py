"""Lifecycle activities: purchases, the dormancy check, coupons, consent,
the core tier's advisor, and telling journeys of tier changes (their reads and
writes of the store are in `activities.lifecycle_records`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.lifecycle_records import (
    coupon_by_key,
    favourite_category,
    is_active_staff,
    least_loaded_advisor,
    lifecycle_input,
    new_coupon_code,
    redeem_coupon,
    refuse_invalid_purchase,
    reject_coupon,
    this_call,
)
from activities.logs import activity_logger
from activities.parts import ActivityParts
from activities.rfm import RfmSweeper
from activities.store import Store, refuse_invalid
from domain import limits, schema
from domain.lifecycle import (
    JOURNEY,
    AdvisorHandover,
    AdvisorHandoverRequest,
    AdvisorRequest,
    AdvisorResult,
    Coupon,
    CouponRequest,
    DormancyCheck,
    DormancyResult,
    LifecycleMark,
    LifecyclePolicy,
    OptOutRequest,
    PurchaseRequest,
    PurchaseResult,
    Tier,
    TierChanged,
    business_day,
    customer_workflow_id,
    figures_at,
)
from domain.messaging import ALL_CHANNELS, ConsentScope
from domain.money import from_minor, to_minor

log = activity_logger("crm.lifecycle")

# Columns a lifecycle signal's value lands in beyond those `domain.limits`
# names: consent.channel and customers.tier.
CONSENT_CHANNEL = 16
TIER = 16


class LifecycleActivities:
    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: LifecyclePolicy) -> LifecycleActivities:
        return cls(store=parts.store, policy=policy, zone=parts.settings.default_timezone,
                   client=parts.client, task_queue=parts.task_queue)

    def __init__(self, *, store: Store, policy: LifecyclePolicy, zone: str,
                 currency: str = "CNY", client: Client | None = None,
                 task_queue: str = "crm-journeys") -> None:
        self.store = store
        self.policy = policy
        self.zone = zone
        self.currency = currency
        self.client = client
        self.task_queue = task_queue

    @activity.defn
    def load_lifecycle_policy(self) -> LifecyclePolicy:
        return self.policy

    @activity.defn
    def ensure_customer(self, request: AdvisorRequest) -> None:
        """A purchase may be the first the CRM hears of a customer."""
        with self.store.unit_of_work() as session:
            if session.get(schema.Customer, request.customer_id) is None:
                session.add(schema.Customer(id=request.customer_id, name=request.customer_id,
                                            created_at=request.now))
                record_event(session, key=f"{request.workflow_id}:created", journey=JOURNEY,
                             entity_id=request.customer_id, step="customer_created",
                             at=request.now)

    @activity.defn
    def record_purchase(self, request: PurchaseRequest) -> PurchaseResult:
        """Records the order once; updates the customer's figures; credits the coupon
        the customer presented, else the open win-back campaign's last coupon. A
        coupon credits one order at most. A presented coupon that cannot be credited
        (unknown, someone else's, expired, already redeemed) is a rejection, kept
        with its reason; the order itself stands.

        An order already recorded changes nothing and answers `duplicate`, unless
        it was recorded by an earlier attempt of this same call (the worker died
        before reporting it): that retry answers what the attempt did, or the
        journey would ignore its own purchase."""
        p = request.purchase
        refuse_invalid_purchase(request)
        attempt = this_call()
        event_key = f"{request.workflow_id}:order:{p.order_id}"
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            if customer is None:
                raise ApplicationError(f"unknown customer {request.customer_id!r}",
                                       type="UnknownCustomer", non_retryable=True)
            existing = session.get(schema.Order, p.order_id)
            if existing is not None:
                if existing.customer_id != customer.id:
                    raise ApplicationError(
                        f"order {p.order_id} belongs to customer {existing.customer_id}",
                        type="OrderConflict", non_retryable=True)
                return self._recorded_purchase(session, customer, event_key, attempt)
            try:
                amount_minor = to_minor(p.amount, request.currency)
            except (ValueError, ArithmeticError) as exc:
                raise ApplicationError(f"order {p.order_id}: {exc}", type="InvalidAmount",
                                       non_retryable=True) from exc
            at = p.at or request.now
            credited: schema.CouponRecord | None = None
            if p.coupon_code:
                credited, refusal = redeem_coupon(session, p.coupon_code, customer_id=customer.id,
                                                  order_id=p.order_id, at=at)
                if refusal:
                    reject_coupon(session, request, refusal)
            if credited is None and request.campaign:
                # The campaign is credited to the order that revives the customer,
                # coupon or not, once.
                credited, _ = redeem_coupon(session, request.campaign[-1], customer_id=customer.id,
                                            order_id=p.order_id, at=at, check_expiry=False)
            credited_coupon = credited.code if credited else None
            credited_touch = credited.key if credited else None
            order = schema.Order(
                id=p.order_id, customer_id=customer.id, amount_minor=amount_minor,
                currency=request.currency, category=p.category or None, at=at,
                recorded_at=request.now, credited_coupon=credited_coupon,
                credited_touch=credited_touch)
            try:
                with session.begin_nested():
                    session.add(order)
            except IntegrityError as exc:
                # The same order, or a credit of the same coupon, committed by a
                # concurrent attempt: nothing of this one is kept, and the retry
                # finds what that attempt did.
                raise ApplicationError(f"order {p.order_id} raced another attempt; retrying",
                                       type="PurchaseRace") from exc
            customer.order_count = (customer.order_count or 0) + 1
            if customer.last_purchase_at is None or at > customer.last_purchase_at:
                customer.last_purchase_at = at
            if customer.first_purchase_at is None or at < customer.first_purchase_at:
                customer.first_purchase_at = at
            customer.favourite_category = favourite_category(session, customer.id)
            result = self._result(session, customer, duplicate=False)
            result.credited_coupon, result.credited_touch = credited_coupon, credited_touch
            # The answer is kept with the step, under the name of the call that
            # recorded it, for that call's retry to give again.
            record_event(session, key=event_key,
                         journey=JOURNEY, entity_id=customer.id,
                         step="reactivated" if credited_coupon else "purchased", at=at,
                         detail={"order_id": p.order_id, "amount": str(p.amount),
                                 "coupon": credited_coupon, "recorded_by": attempt,
                                 "result": result.model_dump(mode="json")})
            return result

    @activity.defn
    def check_dormancy(self, request: DormancyCheck) -> DormancyResult:
        """The customer's figures today, against the dormant tier's rule."""
        with self.store.unit_of_work() as session:
            rows = session.execute(
                select(schema.Order.at, schema.Order.amount_minor, schema.Order.currency)
                .where(schema.Order.customer_id == request.customer_id)).all()
            customer = session.get(schema.Customer, request.customer_id)
        figures = figures_at([(at, from_minor(m, c)) for at, m, c in rows],
                             today=business_day(request.now, self.zone), zone=self.zone,
                             policy=request.rfm)
        # The journey's clock has already established the recency (no purchase
        # for the dormancy period); the rule's F and M decide the rest.
        rfm = request.rfm
        return DormancyResult(
            meets_rule=figures.frequency >= rfm.dormant_frequency
            and figures.monetary >= rfm.dormant_monetary,
            frequency=figures.frequency, monetary=figures.monetary,
            recency_days=figures.recency_days,
            favourite_category=customer.favourite_category if customer else None)

    @activity.defn
    def issue_coupon(self, request: CouponRequest) -> Coupon:
        """A unique single-use coupon; the same key always yields the same coupon.

        The code is random, stored under the touch key before the message that
        carries it is sent: nobody can compute a customer's code, and a retry
        finds the code already issued rather than deriving it again."""
        with self.store.unit_of_work() as session:
            existing = coupon_by_key(session, request.key)
            if existing is None:
                coupon = schema.CouponRecord(
                    code=new_coupon_code(), key=request.key, customer_id=request.customer_id,
                    campaign=request.campaign, discount_percent=request.percent,
                    issued_at=request.now, expires_at=request.now + request.valid_for)
                try:
                    with session.begin_nested():
                        session.add(coupon)
                    existing = coupon
                except IntegrityError:
                    # A concurrent attempt issued it first: that code stands.
                    existing = coupon_by_key(session, request.key)
                    if existing is None:
                        raise
            return Coupon(code=existing.code, percent=existing.discount_percent,
                          expires_at=existing.expires_at)

    @activity.defn
    def mark_lifecycle(self, request: LifecycleMark) -> None:
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            if customer is not None:
                customer.lifecycle_state = request.state
            record_event(session, key=f"{request.workflow_id}:{request.step}:{request.n}",
                         journey=JOURNEY, entity_id=request.customer_id, step=request.step,
                         at=request.now,
                         detail={"reason": request.reason} if request.reason else None)

    @activity.defn
    def record_opt_out(self, request: OptOutRequest) -> None:
        """Marketing opt-out on one channel, or on all of them."""
        refuse_invalid({"channel": limits.text_problem(request.channel, CONSENT_CHANNEL)})
        channel = request.channel or ALL_CHANNELS
        with self.store.unit_of_work() as session:
            exists = session.scalar(select(schema.Consent.id).where(
                schema.Consent.subject_kind == "customer",
                schema.Consent.subject_id == request.customer_id,
                schema.Consent.channel == channel,
                schema.Consent.scope == ConsentScope.marketing.value))
            if exists is None:
                session.add(schema.Consent(subject_kind="customer",
                                           subject_id=request.customer_id, channel=channel,
                                           scope=ConsentScope.marketing.value, at=request.now))

    @activity.defn
    def assign_exclusive_advisor(self, request: AdvisorRequest) -> AdvisorResult:
        """Entering the core tier: the active advisor with the fewest customers.
        A customer keeps an advisor they already have, unless that advisor has
        been deactivated."""
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            if customer is None:
                return AdvisorResult(advisor_id=None)
            if customer.advisor_id and is_active_staff(session, customer.advisor_id):
                return AdvisorResult(advisor_id=customer.advisor_id)
            advisor = least_loaded_advisor(session, excluding=customer.advisor_id)
            customer.advisor_id = advisor
            record_event(session, key=f"{request.workflow_id}:advisor:{advisor}",
                         journey=JOURNEY, entity_id=customer.id, step="advisor_assigned",
                         at=request.now, detail={"advisor_id": advisor})
            return AdvisorResult(advisor_id=advisor)

    @activity.defn
    def hand_over_exclusive_advisor(self, request: AdvisorHandoverRequest) -> AdvisorHandover:
        """The customer's exclusive advisor was deactivated. A core customer gets
        the active advisor with the fewest customers; with none left, or once
        the customer is no longer core, the advisor is cleared. Idempotent by
        `{workflow_id}:handover:{n}`: a retry returns what was done."""
        refuse_invalid({"staff_id": limits.text_problem(request.staff_id, limits.ID),
                        "tier": limits.text_problem(request.tier, TIER)})
        key = f"{request.workflow_id}:handover:{request.n}"
        with self.store.unit_of_work() as session:
            done = session.scalar(select(schema.JourneyEvent.detail)
                                  .where(schema.JourneyEvent.key == key))
            if done is not None:
                return AdvisorHandover.model_validate(done)
            customer = session.get(schema.Customer, request.customer_id)
            if customer is None or not request.staff_id \
                    or customer.advisor_id != request.staff_id:
                return AdvisorHandover(held=False)
            # The sweep writes the tier before it tells the journey, so the
            # store's tier is the newer; a customer the sweep never tiered has
            # only the one the journey was told.
            tier = customer.tier or request.tier
            core = tier == Tier.core
            advisor = least_loaded_advisor(session, excluding=request.staff_id) \
                if core else None
            manager = None
            if core and advisor is None:
                leaving = session.get(schema.Staff, request.staff_id)
                if leaving is not None and leaving.manager_id \
                        and is_active_staff(session, leaving.manager_id):
                    manager = leaving.manager_id
            customer.advisor_id = advisor
            result = AdvisorHandover(held=True, core=core, advisor_id=advisor, manager_id=manager)
            step = ("advisor_replaced" if advisor else
                    "advisor_unassigned" if core else "advisor_released")
            reason = (None if advisor else "no active advisor is left" if core
                      else f"the customer is no longer core (tier {tier or 'none'})")
            record_event(session, key=key, journey=JOURNEY, entity_id=customer.id, step=step,
                         at=request.now, detail={**result.model_dump(mode="json"),
                                                 "previous_advisor_id": request.staff_id,
                                                 "reason": reason})
        if advisor is None:
            log.warning("customer %s: advisor %s deactivated and not replaced: %s",
                        request.customer_id, request.staff_id, reason)
        return result

    @activity.defn
    async def dispatch_tier_changes(self, limit: int) -> int:
        """Tells up to `limit` lifecycle journeys of their new tier (signal-with-start),
        oldest first; returns how many were told."""
        if self.client is None:
            raise ApplicationError("no Temporal client to signal journeys", non_retryable=True)
        import asyncio

        rows = await asyncio.to_thread(self._unsent, limit)
        for row_id, customer_id, tier in rows:
            await self.client.start_workflow(
                "CustomerLifecycle", lifecycle_input(customer_id),
                id=customer_workflow_id(customer_id), task_queue=self.task_queue,
                start_signal="tier_changed",
                start_signal_args=[TierChanged(tier=tier, change=row_id)])
            await asyncio.to_thread(self._sent, row_id)
        return len(rows)

    def _unsent(self, limit: int) -> list[tuple[int, str, str]]:
        with self.store.unit_of_work() as session:
            return [(row_id, customer_id, tier) for row_id, customer_id, tier in session.execute(
                select(schema.TierOutbox.id, schema.TierOutbox.customer_id,
                       schema.TierOutbox.tier)
                .where(schema.TierOutbox.sent_at.is_(None))
                .order_by(schema.TierOutbox.id).limit(limit)).all()]

    def _sent(self, row_id: int) -> None:
        with self.store.unit_of_work() as session:
            session.execute(update(schema.TierOutbox).where(schema.TierOutbox.id == row_id)
                            .values(sent_at=datetime.now(UTC)))

    @activity.defn
    def sweep_rfm(self, day: str) -> dict[str, Any]:
        """The daily sweep for business day `day` (ISO date; empty: today)."""
        from datetime import date

        when = date.fromisoformat(day) if day else business_day(datetime.now(UTC), self.zone)
        # Named by the call, so a retry after the sweep committed reports what
        # it did (its day among it) rather than a rerun's "0 changed".
        result = RfmSweeper(store=self.store, policy=self.policy.rfm, zone=self.zone,
                            currency=self.currency).sweep(when, call=this_call())
        when = result.business_day
        log.info("RFM sweep %s (%s): %d tiers changed, %d to tell", when, result.mode,
                 result.changed, result.outboxed)
        return {"day": when.isoformat(), "mode": result.mode, "changed": result.changed,
                "outboxed": result.outboxed, "seconds": round(result.seconds, 3)}

    def _recorded_purchase(self, session: Session, customer: schema.Customer, event_key: str,
                           attempt: str | None) -> PurchaseResult:
        """The answer for an order already recorded: this call's own earlier
        attempt gets that attempt's result again, anything else is a duplicate."""
        detail = session.scalar(select(schema.JourneyEvent.detail)
                                .where(schema.JourneyEvent.key == event_key)) or {}
        if attempt is not None and detail.get("recorded_by") == attempt and "result" in detail:
            log.info("customer %s: order %s was recorded by an earlier attempt of this call",
                     customer.id, detail.get("order_id"))
            return PurchaseResult.model_validate(detail["result"])
        return self._result(session, customer, duplicate=True)

    def _result(self, session: Session, customer: schema.Customer, *,
                duplicate: bool) -> PurchaseResult:
        return PurchaseResult(duplicate=duplicate, last_purchase_at=customer.last_purchase_at,
                              orders=customer.order_count or 0,
                              favourite_category=customer.favourite_category)
