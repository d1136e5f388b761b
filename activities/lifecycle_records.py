"""The lifecycle activities' reads and writes of the store: purchase checks,
coupons (codes, redemption, refusals), advisors and their loads, a customer's
favourite category. Also the customer as a message template sees it."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session
from temporalio import activity

from activities.logs import activity_logger
from activities.message_records import entity_loader
from activities.store import refuse_invalid
from domain import limits, schema
from domain.lifecycle import JOURNEY, PurchaseRequest

log = activity_logger("crm.lifecycle")


def this_call() -> str | None:
    """What names this call across its retries: the workflow run and the
    activity's id in it (the same for every attempt, different for every other
    call). None outside an activity."""
    try:
        info = activity.info()
    except RuntimeError:
        return None
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"


def refuse_invalid_purchase(request: PurchaseRequest) -> None:
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


def lifecycle_input(customer_id: str) -> Any:
    from domain.lifecycle import LifecycleInput

    return LifecycleInput(customer_id=customer_id)


COUPON_CODE_BYTES = 10  # 80 random bits: 16 base32 characters after the "C"


def new_coupon_code() -> str:
    return "C" + base64.b32encode(secrets.token_bytes(COUPON_CODE_BYTES)).decode().rstrip("=")


def coupon_by_key(session: Session, key: str) -> schema.CouponRecord | None:
    return session.scalar(select(schema.CouponRecord).where(schema.CouponRecord.key == key))


def redeem_coupon(session: Session, code: str, *, customer_id: str, order_id: str, at: datetime,
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
    if check_expiry and aware_utc(coupon.expires_at) < aware_utc(at):
        return None, f"coupon {code} expired at {aware_utc(coupon.expires_at).isoformat()}"
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


def reject_coupon(session: Session, request: PurchaseRequest, reason: str) -> None:
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


def aware_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_active_staff(session: Session, staff_id: str) -> bool:
    return bool(session.scalar(select(schema.Staff.active).where(schema.Staff.id == staff_id)))


def least_loaded_advisor(session: Session, *, excluding: str | None = None) -> str | None:
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


def favourite_category(session: Session, customer_id: str) -> str | None:
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




def open_roles(session: Session, staff_id: str) -> list[str]:
    """The customers whose exclusive advisor the staff member is."""
    return sorted(session.scalars(select(schema.Customer.id).where(
        schema.Customer.advisor_id == staff_id)))
