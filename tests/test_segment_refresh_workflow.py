"""The daily segment refresh: the `SegmentRefresh` workflow (what the
`segments-daily` schedule starts) refreshes every segment through the worker,
and the schedule runs half an hour after the RFM sweep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleHandle
from temporalio.testing import WorkflowEnvironment

from activities.segments import define_segment, segment_members
from activities.store import Store
from domain import schema
from domain.segments import SegmentDefinition, SegmentPolicy, SegmentRefreshAnswer
from domain.segments import SegmentRefreshRequest as Request
from tests import rfm_support
from tests.harness import make_settings, running_worker, seed_staff
from tests.rfm_support import delete_schedule
from worker import ensure_schedules

rfm_daily = rfm_support.rfm_daily


async def test_the_refresh_computes_every_segment_and_names_one_it_cannot(
        time_skipping_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> None:
    seed_staff(sqlite_store)  # cust-1 and cust-2
    now = datetime.now(UTC)
    with sqlite_store.unit_of_work() as s:
        s.add(schema.Order(id="o1", customer_id="cust-1", amount_minor=100, currency="CNY",
                           category="tea", at=now - timedelta(days=2), recorded_at=now))
    policy = SegmentPolicy()
    define_segment(sqlite_store, policy, SegmentDefinition(
        name="tea-buyers", rule={"orders": {"category": "tea", "within_days": 7}}), now=now)
    define_segment(sqlite_store, policy, SegmentDefinition(
        name="english", rule={"field": {"name": "locale", "equals": "en"}}), now=now)
    # A rule stored before its category left the policy.
    with sqlite_store.unit_of_work() as s:
        s.add(schema.Segment(name="retired", rule={"follows": {"category": "vinyl"}},
                             description="", defined_at=now, updated_at=now, size=0))

    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        answer = await h.client.execute_workflow(
            "SegmentRefresh", Request(), id=f"segment-refresh-{uuid.uuid4().hex[:6]}",
            task_queue=h.task_queue, result_type=SegmentRefreshAnswer)

    by_name = {s["segment"]: s for s in answer.segments}
    assert {k: (v.get("size"), v.get("entered")) for k, v in by_name.items()
            if "refused" not in v} == {"tea-buyers": (1, 1), "english": (1, 1)}
    assert "unknown category 'vinyl'" in by_name["retired"]["refused"]
    with sqlite_store.unit_of_work() as s:
        assert segment_members(s, "tea-buyers") == {"cust-1"}
        assert segment_members(s, "english") == {"cust-2"}


@pytest.mark.devserver
async def test_segments_daily_runs_half_an_hour_after_the_rfm_sweep(
        dev_env: WorkflowEnvironment, rfm_daily: ScheduleHandle, tmp_path: Path) -> None:
    handle = dev_env.client.get_schedule_handle("segments-daily")
    await delete_schedule(handle)
    task_queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    try:
        await ensure_schedules(dev_env.client, make_settings(tmp_path, task_queue=task_queue))
        await ensure_schedules(dev_env.client, make_settings(tmp_path, task_queue=task_queue))
        description = await handle.describe()
        [calendar] = description.schedule.spec.calendars
        assert [(r.start, r.end) for r in calendar.hour] == [(2, 2)]
        assert [(r.start, r.end) for r in calendar.minute] == [(30, 30)]
        assert description.schedule.spec.time_zone_name == "Asia/Shanghai"
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.id, action.task_queue) == (
            "SegmentRefresh", "segment-refresh", task_queue)
    finally:
        await delete_schedule(handle)
