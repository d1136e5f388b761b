"""A triggered rfm sweep on the dev server: it tells the core and potential
customers' journeys once, at most 200 a second, and goes on telling after
continuing as new without sweeping again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, ScheduleHandle, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.lifecycle import LifecycleActivities
from activities.store import Store
from activities.store.customers import CustomerRecord, add_customer
from domain import schema
from domain.lifecycle import LifecyclePolicy, LifecycleStatus, business_day, customer_workflow_id
from tests import rfm_support
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff
from tests.rfm_support import ZONE, eventually_async
from worker import ensure_schedules
from workflows.kit import CRM_TIER
from workflows.lifecycle import RfmSweep

pytestmark = pytest.mark.devserver

# Fixtures shared with the other modules split from the same subject.
rfm_daily = rfm_support.rfm_daily


# The sweep tells at most this many journeys, then waits a second.
BATCH = 200


def local_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), ZoneInfo(ZONE)).astimezone(UTC)


def seed_buyers(store: Store, purchases: dict[str, list[tuple[int, str]]], *,
                today: date) -> None:
    """Customers with an e-mail address and their orders, as (days before
    `today`, amount), as the order system would have left them in the store."""
    joined = datetime(2025, 1, 1, tzinfo=UTC)
    for customer_id in purchases:
        add_customer(store, CustomerRecord(id=customer_id, name=customer_id,
                                           email=f"{customer_id}@example.com"), now=joined)
    with store.unit_of_work() as session:
        for customer_id, orders in purchases.items():
            times = [local_noon(today - timedelta(days=days)) for days, _ in orders]
            customer = session.get(schema.Customer, customer_id)
            assert customer is not None
            customer.order_count = len(orders)
            customer.first_purchase_at = min(times, default=None)
            customer.last_purchase_at = max(times, default=None)
            for n, (at, (_, amount)) in enumerate(zip(times, orders, strict=True)):
                session.add(schema.Order(
                    id=f"{customer_id}-o{n}", customer_id=customer_id,
                    amount_minor=int(Decimal(amount) * 100), currency="CNY", category="tea",
                    at=at, recorded_at=at))


def today_in_business_zone() -> date:
    return business_day(datetime.now(UTC), ZONE)


async def journey_exists(client: Client, customer_id: str) -> bool:
    try:
        await client.get_workflow_handle(customer_workflow_id(customer_id)).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def journey_status_when(h: Harness, customer_id: str, what: str,
                              holds: Any) -> LifecycleStatus:
    """The journey's `status` once `holds` is true of it (the journey may not be
    started, or not have acted on its signal yet)."""
    latest: LifecycleStatus | None = None
    for _ in range(400):
        try:
            latest = await h.journeys.customer_status(customer_id)
        except RPCError:
            latest = None
        if latest is not None and holds(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{customer_id}: never {what}; last status {latest}")


async def events(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


def signals_named(history: Iterable[HistoryEvent], name: str) -> int:
    return sum(1 for e in history
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
               and e.workflow_execution_signaled_event_attributes.signal_name == name)


async def terminate_all(client: Client, workflow_ids: Iterable[str]) -> None:
    async def terminate(workflow_id: str) -> None:
        try:
            await client.get_workflow_handle(workflow_id).terminate("test over")
        except RPCError:
            pass  # never started, or already closed

    ids = list(workflow_ids)
    for start in range(0, len(ids), 50):
        await asyncio.gather(*(terminate(w) for w in ids[start:start + 50]))


async def test_triggered_sweep_tells_core_and_potential_journeys_once(
    dev_env: WorkflowEnvironment, store: Store, rfm_daily: ScheduleHandle, tmp_path: Path
) -> None:
    client = dev_env.client
    suffix = uuid.uuid4().hex[:8]
    core, potential, new, dormant, never = (
        f"rfm-{kind}-{suffix}" for kind in ("core", "potential", "new", "dormant", "never"))
    today = today_in_business_zone()
    seed_staff(store)
    seed_buyers(store, {
        # R=3, F=5, M=600: core
        core: [(3, "120"), (4, "120"), (5, "120"), (6, "120"), (7, "120")],
        # R=40, F=3, M=300: potential (R past 30 and F under 5 keep it out of core)
        potential: [(40, "100"), (50, "100"), (60, "100")],
        # a first purchase 5 days ago, too small for anything else: new, no strategy
        new: [(5, "50")],
        # R=200, F=2, M=200: dormant, whose win-back the journey's own clock runs
        dormant: [(200, "100"), (250, "100")],
        never: [],
    }, today=today)
    expected_tiers = {core: "core", potential: "potential", new: "new", dormant: "dormant",
                      never: None}
    task_queue = f"crm-test-{suffix}"
    sweeps: list[str] = []
    async with running_worker(client, store, make_settings(tmp_path),
                              task_queue=task_queue) as h:
        h.journeys.started += [customer_workflow_id(c) for c in expected_tiers]
        try:
            await ensure_schedules(client, make_settings(tmp_path, task_queue=task_queue))
            await rfm_daily.trigger()
            description = await eventually_async(
                lambda: _with_recent_action(rfm_daily), what="the triggered sweep")
            sweep_id = description.info.recent_actions[-1].action.workflow_id
            sweeps.append(sweep_id)
            first = await asyncio.wait_for(
                client.get_workflow_handle(sweep_id, result_type=dict).result(), 60)

            assert first["changed"] == 4 and first["outboxed"] == 2 and first["told"] == 2
            assert {c.id: c.tier for c in h.rows(schema.Customer)
                    if c.id in expected_tiers} == expected_tiers
            outbox = h.rows(schema.TierOutbox)
            assert sorted((o.customer_id, o.tier) for o in outbox) == [
                (core, "core"), (potential, "potential")]
            assert all(o.sent_at is not None for o in outbox)

            # core: an exclusive advisor (the least loaded), told by a staff notice
            await journey_status_when(h, core, "core", lambda s: s.tier == "core")
            [customer] = await eventually(
                lambda: [c for c in h.rows(schema.Customer, id=core) if c.advisor_id],
                what="an advisor for the core customer")
            assert customer.advisor_id == "adv-1"
            await eventually(lambda: h.touches(step="core_advisor", recipient_id="adv-1",
                                               status="sent"), what="the advisor's notice")
            # potential: the community coupon, delivered to the customer
            await journey_status_when(h, potential, "potential",
                                      lambda s: s.tier == "potential")
            [touch] = await eventually(lambda: h.touches(step="community_coupon",
                                                         recipient_id=potential,
                                                         status="sent"),
                                       what="the community coupon")
            [coupon] = h.rows(schema.CouponRecord, customer_id=potential, campaign="community")
            [message] = [m for m in h.outbox_messages() if m["key"] == touch.key]
            assert coupon.code in message["body"]
            assert message["to"] == f"{potential}@example.com"
            assert not h.touches(recipient_id=core, step="community_coupon")
            for customer_id, tier in ((core, "core"), (potential, "potential")):
                journey = await client.get_workflow_handle(
                    customer_workflow_id(customer_id)).describe()
                assert journey.typed_search_attributes.get(CRM_TIER) == tier
            # tiers without a strategy start no journey
            for customer_id in (new, dormant, never):
                assert not await journey_exists(client, customer_id), customer_id

            # The same day again, started by hand: nothing changes, nobody is told twice.
            touches_before = len(h.touches())
            again_id = f"rfm-sweep-again-{suffix}"
            sweeps.append(again_id)
            again = await client.execute_workflow(
                RfmSweep.run, first["day"], id=again_id, task_queue=task_queue,
                execution_timeout=timedelta(minutes=2))
            assert (again["changed"], again["outboxed"], again["told"]) == (0, 0, 0)
            assert len(h.rows(schema.TierOutbox)) == 2
            for customer_id in (core, potential):
                history = await events(client.get_workflow_handle(
                    customer_workflow_id(customer_id)))
                assert signals_named(history, "tier_changed") == 1, customer_id
            assert len(h.touches()) == touches_before
            assert len(h.rows(schema.CouponRecord, customer_id=potential)) == 1
        finally:
            await terminate_all(client, sweeps)


async def _with_recent_action(handle: ScheduleHandle) -> Any:
    description = await handle.describe()
    return description if description.info.recent_actions else None


async def test_tier_changes_are_told_to_at_most_200_journeys_a_second(
    dev_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    """450 customers entering potential on one day. What the journeys then do is
    the test above; here they wait on a task queue no worker polls, so only the
    moment each was told is measured, on the server's clock."""
    client = dev_env.client
    suffix = uuid.uuid4().hex[:8]
    customers = [f"pace-{suffix}-{n:03d}" for n in range(450)]
    today = today_in_business_zone()
    seed_buyers(sqlite_store, {c: [(40, "100"), (50, "100"), (60, "100")] for c in customers},
                today=today)
    lifecycle = LifecycleActivities(store=sqlite_store, policy=LifecyclePolicy(), zone=ZONE,
                                    client=client, task_queue=f"crm-test-idle-{suffix}")
    task_queue = f"crm-test-{suffix}"
    sweep_id = f"rfm-pace-{suffix}"
    journeys = [customer_workflow_id(c) for c in customers]
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(client, task_queue=task_queue, workflows=[RfmSweep],
                          activities=[lifecycle.sweep_rfm, lifecycle.dispatch_tier_changes],
                          activity_executor=executor):
            try:
                result = await client.execute_workflow(
                    RfmSweep.run, today.isoformat(), id=sweep_id, task_queue=task_queue,
                    execution_timeout=timedelta(minutes=2))
                assert (result["outboxed"], result["told"]) == (450, 450)
                history = await events(client.get_workflow_handle(sweep_id))
                starts = await _start_times(client, journeys)
            finally:
                await terminate_all(client, [*journeys, sweep_id])

    batches = _dispatches(client, history)
    assert [asked for asked, _ in batches] == [BATCH, BATCH, BATCH]
    assert [told for _, told in batches] == [200, 200, 50]
    pauses = _timers(history)
    assert len(pauses) == 2
    assert all(set_for == timedelta(seconds=1) and waited >= set_for
               for set_for, waited in pauses)
    # Any 200 consecutive journeys (by start) span at least a second.
    starts.sort()
    assert all(starts[n + BATCH] - starts[n] >= timedelta(seconds=1)
               for n in range(len(starts) - BATCH))
    with sqlite_store.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(schema.TierOutbox)
                              .where(schema.TierOutbox.sent_at.is_(None))) == 0


async def _start_times(client: Client, workflow_ids: list[str]) -> list[datetime]:
    times: list[datetime] = []
    for start in range(0, len(workflow_ids), 50):
        described = await asyncio.gather(*(client.get_workflow_handle(w).describe()
                                            for w in workflow_ids[start:start + 50]))
        times += [d.start_time for d in described]
    return times


def _dispatches(client: Client, history: list[HistoryEvent]) -> list[tuple[int, int]]:
    """(the batch asked for, how many were told) of each dispatch, in order."""
    converter = client.data_converter.payload_converter
    asked: dict[int, int] = {}
    told: dict[int, int] = {}
    for e in history:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "dispatch_tier_changes":
                [limit] = converter.from_payloads(attrs.input.payloads, [int])
                asked[e.event_id] = limit
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_done = e.activity_task_completed_event_attributes
            if attrs_done.scheduled_event_id in asked:
                [count] = converter.from_payloads(attrs_done.result.payloads, [int])
                told[attrs_done.scheduled_event_id] = count
    return [(asked[event_id], told[event_id]) for event_id in sorted(asked)]


def _timers(history: list[HistoryEvent]) -> list[tuple[timedelta, timedelta]]:
    """(the duration set, the time from start to firing) of each timer."""
    started = {e.event_id: e for e in history
               if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED}
    pauses = []
    for e in history:
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            begun = started[e.timer_fired_event_attributes.started_event_id]
            pauses.append((begun.timer_started_event_attributes.start_to_fire_timeout
                           .ToTimedelta(),
                           e.event_time.ToDatetime() - begun.event_time.ToDatetime()))
    return pauses


async def test_a_sweep_continued_as_new_goes_on_telling_without_sweeping_again(
    sqlite_store: Store,
) -> None:
    """A first sweep can have hundreds of thousands of changes to tell: the
    workflow continues as new when the server suggests it (here after 20
    events), and the next run only goes on telling what is left."""
    from starter.client import data_converter
    from tests.conftest import _binary

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"), data_converter=data_converter(),
        dev_server_extra_args=["--dynamic-config-value",
                               "limit.historyCount.suggestContinueAsNew=20"],
    )
    try:
        client = env.client
        suffix = uuid.uuid4().hex[:8]
        customers = [f"cont-{suffix}-{n:03d}" for n in range(450)]
        today = today_in_business_zone()
        seed_buyers(sqlite_store, {c: [(40, "100"), (50, "100"), (60, "100")]
                                   for c in customers}, today=today)
        lifecycle = LifecycleActivities(store=sqlite_store, policy=LifecyclePolicy(), zone=ZONE,
                                        client=client, task_queue=f"crm-test-idle-{suffix}")
        task_queue = f"crm-test-{suffix}"
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with Worker(client, task_queue=task_queue, workflows=[RfmSweep],
                              activities=[lifecycle.sweep_rfm, lifecycle.dispatch_tier_changes],
                              activity_executor=executor):
                handle = await client.start_workflow(
                    RfmSweep.run, "", id=f"rfm-cont-{suffix}", task_queue=task_queue,
                    execution_timeout=timedelta(minutes=2))
                last = await handle.result()
                runs: list[list[HistoryEvent]] = []
                async for execution in client.list_workflows(
                        f"WorkflowId = 'rfm-cont-{suffix}'"):
                    runs.append(await events(client.get_workflow_handle(
                        execution.id, run_id=execution.run_id)))
    finally:
        await env.shutdown()

    assert len(runs) >= 2  # it did continue as new
    sweeps = sum(1 for run in runs for e in run
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name
                 == "sweep_rfm")
    assert sweeps == 1
    told = sum(count for run in runs for _, count in _dispatches(client, run))
    assert told == 450
    assert last["mode"] == "continued" and last["day"] == today.isoformat()
    with sqlite_store.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(schema.TierOutbox)
                              .where(schema.TierOutbox.sent_at.is_(None))) == 0
