"""A period's NPS surveys: `NpsLaunch` (what the `nps-quarterly` schedule
starts) starts one survey per customer with a purchase in the period, a page
at a time, and none for a customer who was not active; the schedule runs on
the first day of each quarter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.nps import LaunchedPage, LaunchPage, NpsStage, NpsStatus
from tests.harness import eventually, make_settings, running_worker, seed_staff
from tests.rfm_support import delete_schedule
from worker import ensure_schedules


async def test_the_period_s_active_customers_are_surveyed_a_page_at_a_time(
        time_skipping_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> None:
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as s:
        for customer in ("a1", "a2", "a3", "idle"):
            s.add(schema.Customer(id=customer, name=customer,
                                  created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        s.flush()
        for n, (customer, month) in enumerate((("a1", 4), ("a2", 5), ("a2", 6), ("a3", 6),
                                               ("idle", 3), ("idle", 7))):
            at = datetime(2026, month, 10, tzinfo=UTC)
            s.add(schema.Order(id=f"o{n}", customer_id=customer, amount_minor=100,
                               currency="CNY", category="tea", at=at, recorded_at=at))
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        done = await h.client.execute_workflow(
            "NpsLaunch", LaunchPage(period="2026Q2", limit=2),
            id=f"nps-launch-{uuid.uuid4().hex[:6]}", task_queue=h.task_queue,
            result_type=LaunchedPage)
        h.journeys.started += [f"nps-{c}-2026Q2" for c in ("a1", "a2", "a3")]
        assert (done.period, done.started, done.last) == ("2026Q2", 3, "a3")
        for customer in ("a1", "a2", "a3"):
            status = await h.client.get_workflow_handle(f"nps-{customer}-2026Q2").query(
                "status", result_type=NpsStatus)
            assert status.stage is NpsStage.asked
        await eventually(lambda: len(h.rows(schema.NpsSurvey)) == 3)
        assert not h.rows(schema.NpsSurvey, customer_id="idle")


@pytest.mark.devserver
async def test_nps_quarterly_runs_on_the_first_day_of_each_quarter(
        dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    handles = [dev_env.client.get_schedule_handle(name)
               for name in ("rfm-daily", "segments-daily", "nps-quarterly")]
    for handle in handles:
        await delete_schedule(handle)
    task_queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    try:
        await ensure_schedules(dev_env.client, make_settings(tmp_path, task_queue=task_queue))
        description = await handles[2].describe()
        [calendar] = description.schedule.spec.calendars
        assert [(r.start, r.end, r.step) for r in calendar.month] == [(1, 12, 3)]
        assert [(r.start, r.end) for r in calendar.day_of_month] == [(1, 1)]
        assert [(r.start, r.end) for r in calendar.hour] == [(10, 10)]
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("NpsLaunch", task_queue)
    finally:
        for handle in handles:
            await delete_schedule(handle)
