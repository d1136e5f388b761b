"""What the membership tests share: a worker whose loyalty policy each module
chooses, joining, buying through the purchase route, reading the journey's
status and the member's ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.lifecycle import Purchase
from domain.loyalty import LoyaltyPolicy, MembershipStatus
from starter import loyalty
from tests.harness import Harness, make_settings, running_worker, seed_staff

DAY = timedelta(days=1)
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def membership_worker(env: WorkflowEnvironment, store: Store, tmp_path: Path,
                            policy: LoyaltyPolicy) -> AsyncIterator[Harness]:
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(tmp_path),
                              membership_policy=policy) as h:
        yield h
        for row in h.rows(schema.LoyaltyMember):
            try:
                await env.client.get_workflow_handle(
                    f"membership-{row.customer_id}").terminate("test over")
            except Exception:  # noqa: BLE001 - already over
                pass


async def join(h: Harness, customer_id: str, **values: Any) -> MembershipStatus:
    await loyalty.join(h.client, h.task_queue, customer_id, **values)
    return await status_when(h, customer_id, lambda s: s.referral_code is not None)


async def status_when(h: Harness, customer_id: str, predicate: Any) -> MembershipStatus:
    latest = None
    for _ in range(400):
        try:
            latest = await loyalty.status(h.client, customer_id)
            if predicate(latest):
                return latest
        except Exception:  # noqa: BLE001 - not started yet, or continuing as new
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{customer_id}: condition never held; last {latest}")


async def buy(h: Harness, env: WorkflowEnvironment, customer_id: str, order_id: str,
              amount: str, at: datetime | None = None) -> None:
    """An order through the purchase route (the lifecycle, then the membership)."""
    before = len(ledger(h, customer_id))
    rejected = len((await loyalty.status(h.client, customer_id)).rejections)
    await h.journeys.report_purchase(customer_id, Purchase(
        order_id=order_id, amount=Decimal(amount), category="tea",
        at=at or await env.get_current_time()))
    await status_when(h, customer_id, lambda s: len(ledger(h, customer_id)) > before
                      or len(s.rejections) > rejected)


async def signal(h: Harness, customer_id: str, name: str, payload: Any, *,
                 changes: bool = True) -> None:
    """Sends a signal; waits for what it writes or refuses, unless it `changes`
    nothing (a repeat): a later signal's effect then shows it was taken."""
    if not changes:
        await loyalty.tell_membership(h.client, customer_id, name, payload)
        return
    rejected = len((await loyalty.status(h.client, customer_id)).rejections)
    before = len(ledger(h, customer_id))
    await loyalty.tell_membership(h.client, customer_id, name, payload)
    await status_when(h, customer_id, lambda s: len(ledger(h, customer_id)) > before
                      or len(s.rejections) > rejected)


def ledger(h: Harness, customer_id: str) -> list[schema.LoyaltyPoints]:
    with h.store.unit_of_work() as session:
        return list(session.scalars(select(schema.LoyaltyPoints).where(
            schema.LoyaltyPoints.customer_id == customer_id).order_by(schema.LoyaltyPoints.id)))


def balance(h: Harness, customer_id: str) -> int:
    rows = ledger(h, customer_id)
    return rows[-1].balance_after if rows else 0


def local_today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def first_of_next_month(now: datetime) -> datetime:
    """10:00 in Shanghai on the first day of next month, as UTC."""
    today = local_today(now)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return datetime(year, month, 1, 10, tzinfo=SHANGHAI).astimezone(UTC)


async def skip_to(env: WorkflowEnvironment, at: datetime) -> None:
    now = await env.get_current_time()
    if at > now:
        await env.sleep(at - now)
