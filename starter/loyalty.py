"""Client helpers of the loyalty programme: join, tell a member's journey what
happened (orders, refunds, behaviour, grants, redemptions), ask where it
stands; and the store's figures the CLI and the report show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
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
    """The programme's figures for [start, end), as the report counts them."""
    import dataclasses

    from starter.report.loyalty import loyalty_figures

    with store.unit_of_work() as session:
        return dataclasses.asdict(loyalty_figures(session, start, end))
