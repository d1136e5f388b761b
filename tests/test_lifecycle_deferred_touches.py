"""The customer lifecycle has no moment where its run ends while a deferred
touch waits: it continues as new once its touches have gone, and what arrives
meanwhile (a hand-over while its win-back waits) is not lost.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.lifecycle import LifecycleInput, LifecyclePolicy, LifecycleStage, Purchase
from tests import answer_support
from tests.answer_support import MINUTE, deferred, quiet_around, rejected_in_store, status_when
from tests.harness import Harness, make_settings, running_worker

# Fixtures shared with the other modules split from the same subject.
env = answer_support.env
seeded = answer_support.seeded
DAY = timedelta(days=1)


async def idle_history_length(handle: WorkflowHandle) -> int:
    """How many events a journey's history holds once it waits on its timer
    with nothing else under way (every activity closed, no workflow task)."""
    async def events() -> list[Any]:
        return [event async for event in handle.fetch_history_events()]

    def idle(history: list[Any]) -> bool:
        kinds = [e.event_type for e in history]
        closed = sum(kinds.count(k) for k in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED))
        started = {e.timer_started_event_attributes.timer_id for e in history
                   if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED}
        ended = {e.timer_fired_event_attributes.timer_id for e in history
                 if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED} | {
                 e.timer_canceled_event_attributes.timer_id for e in history
                 if e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED}
        return (kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == closed
                and bool(started - ended)
                and kinds[-1] in (EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                                  EventType.EVENT_TYPE_TIMER_STARTED))

    return len(await status_when(events, idle, "waiting on its timer"))


async def started_lifecycle(h: Harness, customer_id: str, policy: LifecyclePolicy,
                            purchase: Purchase) -> WorkflowHandle:
    """Signal-with-start, as every purchase does, with the policy in the input."""
    handle = await h.client.start_workflow(
        "CustomerLifecycle", LifecycleInput(customer_id=customer_id, policy=policy),
        id=f"customer-{customer_id}", task_queue=h.task_queue,
        start_signal="purchase", start_signal_args=[purchase])
    h.journeys.started.append(handle.id)
    await status_when(lambda: h.journeys.customer_status(customer_id),
                      lambda s: s.orders == 1, f"{customer_id}'s first order")
    return handle


async def test_lifecycle_handing_over_while_its_win_back_waits_loses_nothing(
    env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    """The lifecycle's run never ends: when its history is long it continues as
    new, once its touches have gone. What arrives while a win-back waits out
    quiet hours then (a purchase with the coupon, a malformed one) is acted on
    before the hand-over or carried over, never lost in it."""
    now = await env.get_current_time()
    first = Purchase(order_id="Q6-1", amount=Decimal("260"), category="tea", at=now)
    probes = first.model_copy(update={"order_id": "Q6-0"})
    async with running_worker(env.client, seeded, make_settings(tmp_path),
                              messaging_policy=quiet_around(now + 180 * DAY)) as h:
        # How long a customer's history is while it waits for dormancy (give or
        # take the order in which its first tasks ran): the journey below hands
        # over at its next step after that, the win-back, which adds some twenty
        # events.
        probe = await started_lifecycle(h, "probe", LifecyclePolicy(), probes)
        bound = await idle_history_length(probe) + 8
        await probe.terminate("measured")
        handle = await started_lifecycle(
            h, "cust-1", LifecyclePolicy(max_history_events=bound), first)
        assert await idle_history_length(handle) < bound

        await env.sleep(180 * DAY + MINUTE)
        winback = await deferred(h, "winback_first")
        waiting = await status_when(lambda: h.journeys.customer_status("cust-1"),
                                    lambda s: s.stage is LifecycleStage.winback_first,
                                    "win-back")
        assert waiting.runs == 1  # the hand-over waits for the win-back to go
        await handle.signal("purchase", Purchase(order_id="Q6-2", amount=Decimal("120"),
                                                 category="tea",
                                                 coupon_code=waiting.campaign[0]))
        await handle.signal("purchase", args=[{"order_id": "Q6-3", "amount": "lots"}])
        # acted on at once, while the win-back still waits: not hours later
        acted = await status_when(lambda: h.journeys.customer_status("cust-1"),
                                  lambda s: s.orders == 2 and s.rejections, "purchase taken")
        assert acted.runs == 1 and h.rows(schema.Order, id="Q6-2")
        assert h.touches(key=winback.key)[0].status == "deferred"

        await env.sleep(winback.deferred_until - await env.get_current_time() + MINUTE)
        after = await status_when(lambda: h.journeys.customer_status("cust-1"),
                                  lambda s: s.runs == 2, "continued as new")
        assert h.touches(key=winback.key)[0].status in ("sent", "suppressed")
        assert (after.orders, after.credited, after.stage) == (2, 1, LifecycleStage.active)
        [order] = h.rows(schema.Order, id="Q6-2")
        assert order.credited_coupon == waiting.campaign[0]
        assert [r.signal for r in after.rejections] == ["purchase"]
        assert "lots" in str(after.rejections[0].payload)
        assert await rejected_in_store(h, "customer-cust-1", "purchase")
