"""CustomerLifecycle on the real Temporal dev server: continue-as-new with
purchases arriving across the hand-over (the time-skipping server never
suggests it), and a win-back delivered for real to the local SMTP sink."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.lifecycle import (
    LifecycleInput,
    LifecyclePolicy,
    LifecycleStage,
    LifecycleStatus,
    Purchase,
    customer_workflow_id,
)
from domain.policy import MessagingPolicy, QuietHours
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff
from tests.sinks import SmtpSink, WebhookSink
from tests.test_integration_lead import sink_settings, sinks  # noqa: F401 - fixture

pytestmark = pytest.mark.devserver


async def purchase(h: Harness, customer_id: str, order_id: str, policy: LifecyclePolicy,
                   amount: str = "120") -> WorkflowHandle:
    handle = await h.client.start_workflow(
        "CustomerLifecycle", LifecycleInput(customer_id=customer_id, policy=policy),
        id=customer_workflow_id(customer_id), task_queue=h.task_queue,
        start_signal="purchase",
        start_signal_args=[Purchase(order_id=order_id, amount=Decimal(amount), category="tea")])
    h.journeys.started.append(handle.id)
    return handle


async def status(h: Harness, customer_id: str) -> LifecycleStatus:
    return await h.journeys.customer_status(customer_id)


async def test_continue_as_new_loses_no_purchase_sent_across_the_hand_over(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    seed_staff(sqlite_store)
    customer_id = f"can-{tmp_path.name[-6:]}"
    policy = LifecyclePolicy(max_history_events=40)
    async with running_worker(dev_env.client, sqlite_store, make_settings(tmp_path)) as h:
        handle = await purchase(h, customer_id, "o-0", policy)
        # Bursts of purchases, some landing while a run hands over to the next.
        for burst in range(6):
            await asyncio.gather(*(purchase(h, customer_id, f"o-{burst}-{n}", policy)
                                   for n in range(5)))
            await asyncio.sleep(0.3)
        expected = 1 + 6 * 5
        final = None
        for _ in range(300):
            final = await status(h, customer_id)
            if final.orders == expected:
                break
            await asyncio.sleep(0.1)
        assert final is not None and final.orders == expected, final
        assert final.runs > 1  # it did continue as new
        assert len(h.rows(schema.Order, customer_id=customer_id)) == expected
        assert final.stage is LifecycleStage.active
        # a later run is current (the status can show the count of the run
        # being handed over a moment before the server has started the next)
        first_run = handle.result_run_id
        latest = h.client.get_workflow_handle(handle.id)
        for _ in range(100):
            if (await latest.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.1)
        assert (await latest.describe()).run_id != first_run


async def test_win_back_sent_once_to_the_real_smtp_sink(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    sinks: tuple[SmtpSink, WebhookSink],  # noqa: F811
) -> None:
    smtp, webhook = sinks
    seed_staff(sqlite_store)
    policy = LifecyclePolicy(dormant_after=timedelta(seconds=3),
                             second_touch_after=timedelta(seconds=3),
                             lost_after=timedelta(seconds=3))
    # Seconds apart instead of days: the marketing cap (a day) would hold the second.
    uncapped = MessagingPolicy(quiet_hours=QuietHours(enabled=False), marketing_per_day=10,
                               marketing_per_week=10)
    async with running_worker(dev_env.client, sqlite_store,
                              sink_settings(tmp_path, smtp, webhook),
                              messaging_policy=uncapped) as h:
        handle = await purchase(h, "cust-1", f"wb-{tmp_path.name[-6:]}", policy, amount="300")
        for _ in range(300):
            if (await status(h, "cust-1")).stage is LifecycleStage.lost:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("never marked lost")
        touches = await eventually(
            lambda: (t := h.touches(workflow_id=handle.id)) and len(t) == 2
            and all(x.status == "sent" for x in t) and t, timeout=30,
            what=f"two win-backs: {[(x.step, x.status, x.reason) for x in h.touches()]}")
    keys = {t.key for t in touches}
    mails = [m for m in smtp.mails if m.key in keys]
    assert Counter(m.key for m in mails) == {key: 1 for key in keys}
    codes = {c.code for c in h.rows(schema.CouponRecord, customer_id="cust-1")}
    assert len(codes) == 2 and all(any(code in m.body for m in mails) for code in codes)
    assert all(m.to == ["zhou.jie@example.com"] for m in mails)
