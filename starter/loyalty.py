"""Client helpers of the loyalty programme: join, tell a member's journey what
happened (orders, refunds, behaviour, grants, redemptions), ask where it
stands; and the store's figures the CLI and the report show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.store import Store
from domain import schema
from domain.journeys import Decision
from domain.loyalty import (
    MemberPurchase,
    MembershipInput,
    MembershipStatus,
    membership_workflow_id,
)


async def join(client: Client, task_queue: str, customer_id: str, *,
               birth_date: date | None = None, referral_code: str | None = None,
               joined_at: datetime | None = None) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        "MembershipJourney",
        MembershipInput(customer_id=customer_id, birth_date=birth_date,
                        referral_code=referral_code, joined_at=joined_at),
        id=membership_workflow_id(customer_id), task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


async def tell_membership(client: Client, customer_id: str, name: str, payload: Any) -> bool:
    """Signals the customer's membership, if they are a member (True); a
    customer outside the programme is left alone (False)."""
    try:
        await client.get_workflow_handle(membership_workflow_id(customer_id)).signal(
            name, payload)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def purchase_to_membership(client: Client, customer_id: str, purchase: Any) -> bool:
    """The order a purchase reports, told to the customer's membership."""
    order = MemberPurchase.model_validate(purchase.model_dump())
    return await tell_membership(client, customer_id, "purchase", order)


async def ask(client: Client, customer_id: str, update: str, payload: Any) -> Decision:
    return await client.get_workflow_handle(membership_workflow_id(customer_id)).execute_update(
        update, payload, result_type=Decision)


async def status(client: Client, customer_id: str) -> MembershipStatus:
    return await client.get_workflow_handle(membership_workflow_id(customer_id)).query(
        "status", result_type=MembershipStatus)


# -- the store's figures ---------------------------------------------------------------


def ledger(store: Store, customer_id: str) -> list[schema.LoyaltyPoints]:
    with store.unit_of_work() as session:
        return list(session.scalars(select(schema.LoyaltyPoints)
                                    .where(schema.LoyaltyPoints.customer_id == customer_id)
                                    .order_by(schema.LoyaltyPoints.id)))


def member(store: Store, customer_id: str) -> schema.LoyaltyMember | None:
    with store.unit_of_work() as session:
        return session.get(schema.LoyaltyMember, customer_id)


def figures(store: Store, start: datetime, end: datetime) -> dict[str, Any]:
    """Points issued, redeemed and expired in [start, end); members per level
    now; level changes, retention offers and those taken up (the level kept),
    referral conversions in the period."""
    with store.unit_of_work() as session:
        points: dict[str, int] = dict(session.execute(
            select(schema.LoyaltyPoints.kind, func.coalesce(func.sum(schema.LoyaltyPoints.points),
                                                            0))
            .where(schema.LoyaltyPoints.at >= start, schema.LoyaltyPoints.at < end)
            .group_by(schema.LoyaltyPoints.kind)).all())
        levels: dict[str, int] = dict(session.execute(
            select(schema.LoyaltyMember.level, func.count())
            .group_by(schema.LoyaltyMember.level)).all())
        steps: dict[str, int] = dict(session.execute(
            select(schema.JourneyEvent.step, func.count())
            .where(schema.JourneyEvent.journey == "membership",
                   schema.JourneyEvent.at >= start, schema.JourneyEvent.at < end)
            .group_by(schema.JourneyEvent.step)).all())
    issued = sum(int(v) for k, v in points.items()
                 if k in ("earned", "behaviour", "granted", "gift", "referral"))
    offered = int(steps.get("retention_offered", 0))
    kept = int(steps.get("retention_kept", 0))
    return {
        "points_issued": issued,
        "points_redeemed": -int(points.get("redeemed", 0)),
        "points_reversed": -int(points.get("reversed", 0)),
        "points_expired": -int(points.get("expired", 0)),
        "members_per_level": {k: int(v) for k, v in sorted(levels.items())},
        "joined": int(steps.get("joined", 0)),
        "level_changes": int(steps.get("level_changed", 0)),
        "retention_offers": offered,
        "retention_taken_up": kept,
        "referral_conversions": int(steps.get("referral_converted", 0)),
    }
