"""Recordings of the customer lifecycle: a full run (customer-cust-1), tier
changes (customer-cust-2) and every signal (customer-cust-3).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain import schema
from domain.lifecycle import LifecycleStatus, Purchase, TierChanged
from starter.client import Journeys
from tests.harness import eventually, make_settings, running_worker, seed_staff
from tests.recorders.common import _malformed, _rejected, _when, _worker, fresh, signal_all


async def record_customer_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Purchases (one duplicate), dormancy and the first win-back, a purchase
    with its coupon that reactivates, a tier change to core, an opt-out."""
    url = f"sqlite:///{workdir / 'crm-lifecycle.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        now = await env.get_current_time()
        handle = await h.journeys.report_purchase("cust-1", Purchase(
            order_id="R5-1", amount=Decimal("260"), category="tea", at=now))
        await h.journeys.report_purchase("cust-1", Purchase(
            order_id="R5-1", amount=Decimal("260"), category="tea", at=now))
        await asyncio.sleep(1)
        await env.sleep(timedelta(days=181))
        await eventually(lambda: h.touches(step="winback_first", status="sent"))
        code = (await h.journeys.customer_status("cust-1")).campaign[0]
        await h.journeys.report_purchase("cust-1", Purchase(
            order_id="R5-2", amount=Decimal("90"), category="coffee", coupon_code=code))
        await handle.signal("tier_changed", TierChanged(tier="core"))
        await h.journeys.opt_out("cust-1", None)
        await eventually(lambda: h.rows(schema.Consent, subject_id="cust-1"))
        await asyncio.sleep(1)
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_customer_tier_changes(env: WorkflowEnvironment, workdir: Path) -> str:
    """A purchase, then tier changes as the outbox tells them: potential (told
    twice, acted on once: one community coupon), then core."""
    url = f"sqlite:///{workdir / 'crm-tiers.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.report_purchase("cust-2", Purchase(
            order_id="R6-1", amount=Decimal("300"), category="tea",
            at=await env.get_current_time()))
        for tier, change in [("potential", 3), ("potential", 3), ("core", 5)]:
            await handle.signal("tier_changed", TierChanged(tier=tier, change=change))
        await eventually(lambda: h.touches(step="core_advisor", status="sent"))
        assert len(h.rows(schema.CouponRecord, customer_id="cust-2")) == 1
        await asyncio.sleep(1)
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_customer_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every lifecycle signal refused in every shape, a purchase told twice,
    tier changes (one told twice), the exclusive advisor deactivated, an
    opt-out and another purchase."""
    store, settings = fresh(workdir, "crm-lifecycle-every.db")
    task_queue = "record-customer-cust-3"
    async with _worker(env, store, settings, task_queue):
        journeys = Journeys(env.client, task_queue=task_queue)
        now = await env.get_current_time()
        handle = await journeys.report_purchase("cust-3", Purchase(
            order_id="R10-1", amount=Decimal("260"), category="tea", at=now))
        await signal_all(handle, [
            ("purchase", [{"order_id": "R10-1", "amount": "260", "category": "tea",
                           "at": now.isoformat()}]),                # told twice
            ("purchase", [{"order_id": " ", "amount": "10", "category": "tea"}]),
            ("purchase", [{"order_id": "R10-2", "amount": "0", "category": "tea"}]),
            ("purchase", [{"order_id": "R10-3", "amount": "10", "category": "tea",
                           "currency": "USD"}]),
            ("purchase", [{"order_id": "R10-4", "amount": "10", "category": "tea",
                           "at": (now + timedelta(days=1)).isoformat()}]),  # future
            ("purchase", [{"order_id": "R10-5", "amount": "much", "category": "tea"}]),
            ("tier_changed", [{"tier": "gold"}]),                   # no such tier
            *_malformed("purchase", not_an_object="R10-7"),
        ])
        await _rejected(handle, LifecycleStatus, 12)
        await signal_all(handle, [
            ("tier_changed", [{"tier": "potential", "change": 1}]),
            ("tier_changed", [{"tier": "potential", "change": 1}]),  # told twice
            ("tier_changed", [{"tier": "core", "change": 2}]),
            ("staff_deactivated", [{"staff_id": "adv-1"}]),
            ("staff_deactivated", [{"staff_id": "adv-2"}]),
            ("opt_out", [{"channel": "sms"}]),
            ("purchase", [{"order_id": "R10-6", "amount": "88", "category": "coffee"}]),
        ])
        await _when(lambda: journeys.customer_status("cust-3"), lambda s: s.orders == 2,
                    "second order")
        await eventually(lambda: _consents(store, "cust-3"))
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


def _consents(store: Store, customer_id: str) -> list[schema.Consent]:
    with store.unit_of_work() as session:
        return list(session.scalars(select(schema.Consent).where(
            schema.Consent.subject_id == customer_id)))


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"customer-cust-1": record_customer_full,
              "customer-cust-2": record_customer_tier_changes,
              "customer-cust-3": record_customer_every_signal}
