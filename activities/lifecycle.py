"""Lifecycle activities: purchases, the dormancy check, coupons, consent,
the core tier's advisor, and telling journeys of tier changes."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.messaging import entity_loader
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


class LifecycleActivities:
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
        _refuse_invalid_purchase(request)
        attempt = _this_call()
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
                credited, refusal = _redeem(session, p.coupon_code, customer_id=customer.id,
                                            order_id=p.order_id, at=at)
                if refusal:
                    _reject_coupon(session, request, refusal)
            if credited is None and request.campaign:
                # The campaign is credited to the order that revives the customer,
                # coupon or not, once.
                credited, _ = _redeem(session, request.campaign[-1], customer_id=customer.id,
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
            customer.favourite_category = _favourite_category(session, customer.id)
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
            existing = _coupon_by_key(session, request.key)
            if existing is None:
                coupon = schema.CouponRecord(
                    code=_new_coupon_code(), key=request.key, customer_id=request.customer_id,
                    campaign=request.campaign, discount_percent=request.percent,
                    issued_at=request.now, expires_at=request.now + request.valid_for)
                try:
                    with session.begin_nested():
                        session.add(coupon)
                    existing = coupon
                except IntegrityError:
                    # A concurrent attempt issued it first: that code stands.
                    existing = _coupon_by_key(session, request.key)
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
            if customer.advisor_id and _is_active(session, customer.advisor_id):
                return AdvisorResult(advisor_id=customer.advisor_id)
            advisor = _least_loaded_advisor(session, excluding=customer.advisor_id)
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
            advisor = _least_loaded_advisor(session, excluding=request.staff_id) \
                if core else None
            manager = None
            if core and advisor is None:
                leaving = session.get(schema.Staff, request.staff_id)
                if leaving is not None and leaving.manager_id \
                        and _is_active(session, leaving.manager_id):
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
                "CustomerLifecycle", _lifecycle_input(customer_id),
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
                            currency=self.currency).sweep(when, call=_this_call())
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


# Columns a lifecycle signal's value lands in beyond those `domain.limits`
# names: consent.channel and customers.tier.
CONSENT_CHANNEL = 16
TIER = 16


def _this_call() -> str | None:
    """What names this call across its retries: the workflow run and the
    activity's id in it (the same for every attempt, different for every other
    call). None outside an activity."""
    try:
        info = activity.info()
    except RuntimeError:
        return None
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"


def _refuse_invalid_purchase(request: PurchaseRequest) -> None:
    """A purchase signal's values the store could never keep: refused before
    any write, rather than retried for ever."""
    p = request.purchase
    currency = limits.currency_problem(request.currency)
    refuse_invalid({
        "order_id": limits.text_problem(p.order_id, limits.ID),
        "currency": currency or limits.currency_problem(p.currency),
        "amount": None if currency else limits.amount_problem(p.amount, request.currency),
        "category": limits.text_problem(p.category, limits.CATEGORY),
        "coupon_code": limits.text_problem(p.coupon_code, limits.COUPON),
        "at": limits.moment_problem(p.at),
    })


def _lifecycle_input(customer_id: str) -> Any:
    from domain.lifecycle import LifecycleInput

    return LifecycleInput(customer_id=customer_id)


COUPON_CODE_BYTES = 10  # 80 random bits: 16 base32 characters after the "C"


def _new_coupon_code() -> str:
    return "C" + base64.b32encode(secrets.token_bytes(COUPON_CODE_BYTES)).decode().rstrip("=")


def _coupon_by_key(session: Session, key: str) -> schema.CouponRecord | None:
    return session.scalar(select(schema.CouponRecord).where(schema.CouponRecord.key == key))


def _redeem(session: Session, code: str, *, customer_id: str, order_id: str, at: datetime,
            check_expiry: bool = True) -> tuple[schema.CouponRecord | None, str | None]:
    """Claims coupon `code` for the order: the coupon, or why it cannot credit it.

    The claim is one conditional UPDATE, so of two orders presenting the same
    coupon at once only one claims it (the unique index on
    `orders.credited_coupon` stands behind it)."""
    coupon = session.get(schema.CouponRecord, code)
    if coupon is None:
        return None, f"coupon {code} does not exist"
    if coupon.customer_id != customer_id:
        return None, f"coupon {code} was issued to another customer"
    if check_expiry and _aware_utc(coupon.expires_at) < _aware_utc(at):
        return None, f"coupon {code} expired at {_aware_utc(coupon.expires_at).isoformat()}"
    if coupon.redeemed_order_id is not None and coupon.redeemed_order_id != order_id:
        return None, f"coupon {code} was already redeemed on order {coupon.redeemed_order_id}"
    claimed = session.execute(
        update(schema.CouponRecord)
        .where(schema.CouponRecord.code == code,
               schema.CouponRecord.redeemed_order_id.is_(None))
        .values(redeemed_order_id=order_id, redeemed_at=at)
        .execution_options(synchronize_session=False))
    # What an UPDATE returns is a CursorResult, which has the count;
    # Session.execute is typed with the Result every statement returns.
    if cast("CursorResult[Any]", claimed).rowcount != 1:
        session.refresh(coupon)
        return None, f"coupon {code} was already redeemed on order {coupon.redeemed_order_id}"
    session.refresh(coupon)
    return coupon, None


def _reject_coupon(session: Session, request: PurchaseRequest, reason: str) -> None:
    """Kept beside the journeys' signal rejections: the purchase signal's coupon
    was refused, with the reason."""
    key = f"{request.workflow_id}:coupon:{request.purchase.order_id}"
    if session.scalar(select(schema.SignalRejection.id)
                      .where(schema.SignalRejection.key == key)) is None:
        session.add(schema.SignalRejection(
            key=key, workflow_id=request.workflow_id, journey=JOURNEY,
            entity_id=request.customer_id, signal="purchase",
            payload=request.purchase.model_dump(mode="json"), reason=reason,
            at=request.now))
    log.warning("customer %s: order %s: %s", request.customer_id,
                request.purchase.order_id, reason)


def _aware_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _is_active(session: Session, staff_id: str) -> bool:
    return bool(session.scalar(select(schema.Staff.active).where(schema.Staff.id == staff_id)))


def _least_loaded_advisor(session: Session, *, excluding: str | None = None) -> str | None:
    """The active advisor holding the fewest customers (ties: the lowest id);
    never `excluding` (an advisor being replaced)."""
    load = (select(schema.Customer.advisor_id, func.count().label("n"))
            .where(schema.Customer.advisor_id.is_not(None))
            .group_by(schema.Customer.advisor_id).subquery())
    query = (select(schema.Staff.id)
             .outerjoin(load, load.c.advisor_id == schema.Staff.id)
             .where(schema.Staff.role == "advisor", schema.Staff.active.is_(True)))
    if excluding:
        query = query.where(schema.Staff.id != excluding)
    return session.execute(
        query.order_by(func.coalesce(load.c.n, 0), schema.Staff.id).limit(1)).scalar()


def _favourite_category(session: Session, customer_id: str) -> str | None:
    """The category the customer spent most on (ties: the most recent)."""
    row = session.execute(
        select(schema.Order.category)
        .where(schema.Order.customer_id == customer_id, schema.Order.category.is_not(None))
        .group_by(schema.Order.category)
        .order_by(func.sum(schema.Order.amount_minor).desc(), func.max(schema.Order.at).desc())
        .limit(1)).first()
    return row[0] if row else None


@entity_loader("customer")
def _customer_for_message(session: Session, customer_id: str) -> dict[str, Any] | None:
    customer = session.get(schema.Customer, customer_id)
    if customer is None:
        return None
    advisor = session.get(schema.Staff, customer.advisor_id) if customer.advisor_id else None
    return {
        "id": customer.id,
        "name": customer.name,
        "tier": customer.tier,
        "favourite_category": customer.favourite_category,
        "order_count": customer.order_count,
        "last_purchase_at": customer.last_purchase_at,
        "advisor": {"id": advisor.id, "name": advisor.name} if advisor else None,
    }


