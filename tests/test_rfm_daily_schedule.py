"""The rfm-daily schedule on the dev server: it runs the sweep at two in the
business time zone, and ensuring it again keeps one schedule that follows the
settings.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleOverlapPolicy,
)
from temporalio.testing import WorkflowEnvironment

from tests import rfm_support
from tests.harness import make_settings
from tests.rfm_support import SCHEDULE_ID, ZONE, eventually_async
from worker import ensure_schedules

pytestmark = pytest.mark.devserver

# Fixtures shared with the other modules split from the same subject.
rfm_daily = rfm_support.rfm_daily


async def schedules_named(client: Client, schedule_id: str) -> list[str]:
    return [s.id async for s in await client.list_schedules() if s.id == schedule_id]


async def test_rfm_daily_runs_the_sweep_at_two_in_the_business_time_zone(
    dev_env: WorkflowEnvironment, rfm_daily: ScheduleHandle, tmp_path: Path
) -> None:
    task_queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    await ensure_schedules(dev_env.client, make_settings(tmp_path, task_queue=task_queue))

    description = await rfm_daily.describe()
    spec = description.schedule.spec
    assert spec.time_zone_name == ZONE
    assert not spec.cron_expressions and not spec.intervals
    [calendar] = spec.calendars
    assert [(r.start, r.end) for r in calendar.hour] == [(2, 2)]
    assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]
    assert [(r.start, r.end) for r in calendar.second] == [(0, 0)]
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == ("RfmSweep", "rfm-sweep",
                                                               task_queue)
    # An empty day: each run sweeps the business day on which it runs.
    assert dev_env.client.data_converter.payload_converter.from_payloads(
        list(action.args), [str]) == [""]
    assert description.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    # What the server will actually do: every run at 02:00:00 Shanghai time, a day apart.
    runs = [at.astimezone(ZoneInfo(ZONE)) for at in description.info.next_action_times]
    assert len(runs) >= 2
    assert {(at.hour, at.minute, at.second) for at in runs} == {(2, 0, 0)}
    assert {later - earlier for earlier, later in pairwise(runs)} == {timedelta(days=1)}
    assert runs[0] > datetime.now(UTC) and runs[0] - datetime.now(UTC) <= timedelta(days=1)


async def test_ensuring_rfm_daily_again_keeps_one_schedule_that_follows_the_settings(
    dev_env: WorkflowEnvironment, rfm_daily: ScheduleHandle, tmp_path: Path
) -> None:
    client = dev_env.client
    task_queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, task_queue=task_queue)
    await ensure_schedules(client, settings)
    await ensure_schedules(client, settings)  # a second worker start: no error
    assert await eventually_async(lambda: schedules_named(client, SCHEDULE_ID),
                                  what="rfm-daily listed") == [SCHEDULE_ID]
    unchanged = await rfm_daily.describe()
    assert [r.start for r in unchanged.schedule.spec.calendars[0].hour] == [2]

    # An admin pauses the sweep; then the business moves it to 03:00 London time.
    await rfm_daily.pause(note="paused during the stocktake")
    moved_queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    await ensure_schedules(client, make_settings(
        tmp_path, task_queue=moved_queue, rfm_schedule_hour=3,
        default_timezone="Europe/London"))

    moved = await rfm_daily.describe()
    assert moved.schedule.spec.time_zone_name == "Europe/London"
    assert [r.start for r in moved.schedule.spec.calendars[0].hour] == [3]
    action = moved.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.task_queue == moved_queue
    assert moved.schedule.state.paused
    assert moved.schedule.state.note == "paused during the stocktake"
    assert await schedules_named(client, SCHEDULE_ID) == [SCHEDULE_ID]

    await rfm_daily.unpause()
    resumed = await rfm_daily.describe()
    runs = [at.astimezone(ZoneInfo("Europe/London")) for at in resumed.info.next_action_times]
    assert runs and {(at.hour, at.minute, at.second) for at in runs} == {(3, 0, 0)}
