"""NpsJourney on the time-skipping server: the survey and its reminder after 3
days (not earlier), closing unanswered after 14; a promoter thanked; a
detractor's follow-up task for the owner, escalated to the owner's manager
when not done within 2 days, and one done in time; the reason's category;
refused answers and follow-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.nps import start_nps_journey
from activities.store import Store
from domain import schema
from domain.journeys import Decision
from domain.nps import Answer, LogFollowUp, NpsInput, NpsStage, NpsStatus, Respondent
from tests.harness import Harness, eventually, make_settings, refused, running_worker, seed_staff

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
PERIOD = "2026Q3"


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as s:
        s.get(schema.Customer, "cust-1").owner_id = "rep-a"  # type: ignore[union-attr]
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def asked(h: Harness, customer_id: str = "cust-1") -> WorkflowHandle:
    workflow_id = await start_nps_journey(h.client, task_queue=h.task_queue,
                                          survey=NpsInput(customer_id=customer_id,
                                                          period=PERIOD))
    h.journeys.started.append(workflow_id)
    handle = h.client.get_workflow_handle(workflow_id, result_type=NpsStatus)
    await when(handle, lambda s: s.closes_at is not None)
    return handle


async def when(handle: WorkflowHandle, predicate: Any) -> NpsStatus:
    latest = None
    for _ in range(400):
        latest = await handle.query("status", result_type=NpsStatus)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id}: condition never held; last {latest}")


async def answer(handle: WorkflowHandle, score: int | None, reason: str | None = None
                 ) -> Decision:
    return await handle.execute_update("answer_now", Answer(score=score, reason=reason),
                                       result_type=Decision)


async def test_the_survey_a_reminder_after_3_days_and_closing_unanswered_after_14(
        harness: Harness, env: WorkflowEnvironment) -> None:
    handle = await asked(harness)
    await eventually(lambda: harness.touches(step="survey", recipient_id="cust-1",
                                             status="sent"))
    await env.sleep(3 * DAY - HOUR)
    assert not harness.touches(step="survey_reminder")
    await env.sleep(HOUR + MINUTE)
    await eventually(lambda: harness.touches(step="survey_reminder", recipient_id="cust-1"))
    await env.sleep(11 * DAY)
    result = await handle.result()
    assert result.stage is NpsStage.expired and result.score is None
    [row] = harness.rows(schema.NpsSurvey, id=f"cust-1-{PERIOD}")
    assert (row.status, row.reminded_at is not None, row.answered_at) == ("expired", True, None)


async def test_a_promoter_is_thanked_and_the_journey_ends(harness: Harness,
                                                          env: WorkflowEnvironment) -> None:
    handle = await asked(harness)
    decision = await answer(handle, 10, "great service")
    assert decision.accepted and decision.due_at is None
    result = await handle.result()
    assert (result.stage, result.respondent, result.category) == (
        NpsStage.completed, Respondent.promoter, None)
    await eventually(lambda: harness.touches(step="thanks", recipient_id="cust-1"))
    assert not harness.rows(schema.Task, entity_id=f"cust-1-{PERIOD}")


async def test_a_detractor_follow_up_not_done_in_2_days_goes_to_the_owner_s_manager(
        harness: Harness, env: WorkflowEnvironment) -> None:
    handle = await asked(harness)
    decision = await answer(handle, 3, "响应太慢，等了三天才有人回复")
    assert decision.accepted
    status = await when(handle, lambda s: s.stage is NpsStage.follow_up)
    assert (status.respondent, status.category) == (Respondent.detractor, "slow_response")
    [task] = harness.rows(schema.Task, entity_id=f"cust-1-{PERIOD}", kind="nps_follow_up")
    assert task.assignee_id == "rep-a" and task.due_at == status.follow_up_due == decision.due_at
    await eventually(lambda: harness.touches(step="follow_up_task", recipient_id="rep-a"))
    await env.sleep(2 * DAY - 2 * MINUTE)
    assert not harness.rows(schema.Escalation, entity_id=f"cust-1-{PERIOD}")
    await env.sleep(3 * MINUTE)
    status = await when(handle, lambda s: s.stage is NpsStage.escalated)
    assert status.escalated_to == "mgr-east"
    [escalation] = harness.rows(schema.Escalation, entity_id=f"cust-1-{PERIOD}")
    assert (escalation.from_staff_id, escalation.to_staff_id) == ("rep-a", "mgr-east")
    await eventually(lambda: harness.touches(step="follow_up_escalated",
                                             recipient_id="mgr-east"))
    # Someone else cannot log it; the manager can, late.
    assert "neither the owner" in await refused(handle.execute_update(
        "log_follow_up_now", LogFollowUp(staff_id="rep-b"), result_type=Decision))
    done = await handle.execute_update("log_follow_up_now",
                                       LogFollowUp(staff_id="mgr-east", note="called, refund"),
                                       result_type=Decision)
    assert done.accepted
    result = await handle.result()
    assert (result.stage, result.on_time) == (NpsStage.completed, False)
    [row] = harness.rows(schema.NpsSurvey, id=f"cust-1-{PERIOD}")
    assert (row.followed_up_by, row.escalated_to, row.status) == (
        "mgr-east", "mgr-east", "completed")


async def test_a_follow_up_in_time_is_on_time_and_never_escalated(
        harness: Harness, env: WorkflowEnvironment) -> None:
    handle = await asked(harness)
    assert (await answer(handle, 6, "the price went up")).accepted
    status = await when(handle, lambda s: s.stage is NpsStage.follow_up)
    assert status.category == "price"
    await env.sleep(DAY)
    assert (await handle.execute_update("log_follow_up_now", LogFollowUp(staff_id="rep-a"),
                                        result_type=Decision)).accepted
    result = await handle.result()
    assert (result.stage, result.on_time, result.escalated_to) == (
        NpsStage.completed, True, None)
    assert not harness.rows(schema.Escalation, entity_id=f"cust-1-{PERIOD}")
    [task] = harness.rows(schema.Task, entity_id=f"cust-1-{PERIOD}")
    assert task.status == "done"


async def test_answers_and_follow_ups_that_break_a_rule_are_refused(
        harness: Harness, env: WorkflowEnvironment) -> None:
    handle = await asked(harness)
    assert "score is required" in await refused(answer(handle, None))
    assert "score 11 is not between 0 and 10" in await refused(answer(handle, 11))
    assert "score -1" in await refused(answer(handle, -1))
    assert "no follow-up is due (stage asked)" in await refused(handle.execute_update(
        "log_follow_up_now", LogFollowUp(staff_id="rep-a"), result_type=Decision))
    await handle.signal("answer", {"score": "ten"})  # malformed: recorded, nothing changes
    assert (await answer(handle, 8)).accepted
    assert "already answered (8)" in await refused(answer(handle, 2))
    result = await handle.result()
    assert (result.score, result.respondent) == (8, Respondent.passive)
    assert any("answer" in r.signal for r in result.rejections)
