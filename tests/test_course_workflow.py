"""CourseJourney on the time-skipping server: welcome, the callback task 72 h
after the course ends (not before), escalation 24 h later, `end_course`
moving the end, each outcome, rejected callbacks, and the student handed on
when their advisor is deactivated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from activities.store.staff import StaffMember, add_staff, deactivate_staff
from domain import schema
from domain.courses import CourseStage, EndCourse, EnrollmentInput, LogCallback
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def enrolled(h: Harness, env: WorkflowEnvironment, enrollment_id: str, *,
                   ends_in: timedelta = 2 * HOUR, **overrides: Any) -> WorkflowHandle:
    now = await env.get_current_time()
    values: dict[str, Any] = {
        "enrollment_id": enrollment_id, "customer_id": "cust-1", "course_id": "PY-101",
        "advisor_id": "adv-1", "ends_at": now + ends_in,
    }
    values.update(overrides)
    handle = await h.journeys.enroll(EnrollmentInput.model_validate(values))
    await course_when(h, enrollment_id, lambda s: s.stage is CourseStage.enrolled)
    return handle


async def course_when(h: Harness, enrollment_id: str, predicate: Any) -> Any:
    latest = None
    for _ in range(400):
        latest = await h.journeys.course_status(enrollment_id)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{enrollment_id}: condition never held; last {latest}")


async def test_welcome_with_learning_path_and_community(harness: Harness,
                                                        env: WorkflowEnvironment) -> None:
    await enrolled(harness, env, "E1")
    [welcome] = await eventually(lambda: harness.touches(step="welcome", status="sent"))
    assert (welcome.recipient_id, welcome.message_class, welcome.channel) == (
        "cust-1", "reminder", "email")
    [message] = [m for m in harness.outbox_messages() if m["key"] == welcome.key]
    assert "learn.example.com/courses/PY-101" in message["body"]
    assert "community.example.com/join/PY-101" in message["body"]


async def test_callback_task_72h_after_the_end_and_not_before(harness: Harness,
                                                              env: WorkflowEnvironment) -> None:
    await enrolled(harness, env, "E2", ends_in=2 * HOUR)
    await env.sleep(2 * HOUR + MINUTE)
    await course_when(harness, "E2", lambda s: s.stage is CourseStage.course_ended)
    await env.sleep(72 * HOUR - 2 * MINUTE)
    assert not harness.rows(schema.Task, entity_id="E2", kind="callback")
    assert not harness.touches(step="feedback_request")
    await env.sleep(2 * MINUTE)
    status = await course_when(harness, "E2", lambda s: s.stage is CourseStage.awaiting_callback)
    [task] = harness.rows(schema.Task, entity_id="E2", kind="callback")
    assert task.assignee_id == "adv-1" and task.due_at == status.callback_due_at
    assert task.due_at - task.created_at == 24 * HOUR
    await eventually(lambda: harness.touches(step="callback_task", recipient_id="adv-1",
                                             status="sent"))
    await eventually(lambda: harness.touches(step="feedback_request", recipient_id="cust-1",
                                             status="sent"))


async def test_callback_not_logged_in_24h_escalates_to_the_supervisor(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await enrolled(harness, env, "E3", ends_in=MINUTE)
    await env.sleep(MINUTE + 72 * HOUR + MINUTE)
    await course_when(harness, "E3", lambda s: s.stage is CourseStage.awaiting_callback)
    await env.sleep(24 * HOUR - 2 * MINUTE)
    assert not harness.rows(schema.Escalation, entity_id="E3")
    await env.sleep(3 * MINUTE)
    status = await course_when(harness, "E3", lambda s: s.stage is CourseStage.escalated)
    assert status.escalated_to == "sup-edu"
    [escalation] = harness.rows(schema.Escalation, entity_id="E3")
    assert (escalation.from_staff_id, escalation.to_staff_id) == ("adv-1", "sup-edu")
    await eventually(lambda: harness.touches(step="callback_escalated", recipient_id="sup-edu"))
    # the late callback still closes the journey
    answer = await harness.journeys.log_callback("E3", LogCallback(advisor_id="adv-1",
                                                                   outcome="unreachable"))
    assert answer.accepted


async def test_end_course_moves_the_end_earlier(harness: Harness, env: WorkflowEnvironment
                                                ) -> None:
    handle = await enrolled(harness, env, "E4", ends_in=30 * 24 * HOUR)
    now = await env.get_current_time()
    await handle.signal("end_course", EndCourse(ended_at=now - HOUR))
    await course_when(harness, "E4", lambda s: s.stage is CourseStage.course_ended)
    await env.sleep(71 * HOUR + MINUTE)  # 72 h after the moved end, not the planned one
    await course_when(harness, "E4", lambda s: s.stage is CourseStage.awaiting_callback)
    assert harness.rows(schema.Enrollment, id="E4")[0].ends_at == now - HOUR


async def test_end_course_moves_the_end_later(harness: Harness, env: WorkflowEnvironment
                                              ) -> None:
    handle = await enrolled(harness, env, "E5", ends_in=HOUR)
    now = await env.get_current_time()
    await handle.signal("end_course", EndCourse(ended_at=now + 5 * 24 * HOUR))
    await course_when(harness, "E5", lambda s: s.ends_at == now + 5 * 24 * HOUR)
    await env.sleep(HOUR + 72 * HOUR + MINUTE)  # past the original end + 72 h
    status = await harness.journeys.course_status("E5")
    assert status.stage is CourseStage.enrolled
    assert not harness.rows(schema.Task, entity_id="E5", kind="callback")
    await env.sleep(5 * 24 * HOUR - HOUR)  # to 72 h after the moved end
    await course_when(harness, "E5", lambda s: s.stage is CourseStage.awaiting_callback)


async def callback_due(h: Harness, env: WorkflowEnvironment, enrollment_id: str
                       ) -> WorkflowHandle:
    handle = await enrolled(h, env, enrollment_id, ends_in=MINUTE)
    await env.sleep(MINUTE + 72 * HOUR + MINUTE)
    await course_when(h, enrollment_id, lambda s: s.stage is CourseStage.awaiting_callback)
    return handle


async def test_renewal_intent_sends_the_renewal_offer(harness: Harness,
                                                      env: WorkflowEnvironment) -> None:
    handle = await callback_due(harness, env, "E6")
    answer = await harness.journeys.log_callback(
        "E6", LogCallback(advisor_id="adv-1", outcome="renewal_intent", note="wants PY-201"))
    assert answer.accepted
    result = await handle.result()
    assert result.stage is CourseStage.completed and result.outcome == "renewal_intent"
    [offer] = await eventually(lambda: harness.touches(step="renewal_offer", status="sent"))
    assert offer.message_class == "marketing" and offer.recipient_id == "cust-1"
    [enrollment] = harness.rows(schema.Enrollment, id="E6")
    assert enrollment.callback_outcome == "renewal_intent" and enrollment.status == "completed"
    assert not harness.rows(schema.Task, entity_id="E6", status="open")


@pytest.mark.parametrize("outcome", ["no_interest", "unreachable"])
async def test_other_outcomes_are_recorded_without_an_offer(
    harness: Harness, env: WorkflowEnvironment, outcome: str
) -> None:
    handle = await callback_due(harness, env, f"E7{outcome}")
    await handle.signal("log_callback", LogCallback(advisor_id="adv-1", outcome=outcome))
    result = await handle.result()
    assert result.outcome == outcome
    assert not harness.touches(step="renewal_offer")
    [interaction] = harness.rows(schema.Interaction, staff_id="adv-1")
    assert outcome in (interaction.note or "")


async def test_callbacks_from_another_advisor_or_with_unknown_outcome_are_rejected(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await enrolled(harness, env, "E8", ends_in=MINUTE)
    await handle.signal("log_callback", LogCallback(advisor_id="adv-1", outcome="no_interest"))
    await env.sleep(MINUTE + 72 * HOUR + MINUTE)
    await course_when(harness, "E8", lambda s: s.stage is CourseStage.awaiting_callback)
    await handle.signal("log_callback", LogCallback(advisor_id="adv-2", outcome="no_interest"))
    await handle.signal("log_callback", LogCallback(advisor_id="adv-1", outcome="maybe"))
    await handle.signal("log_callback", {"advisor_id": ["adv-1"]})
    status = await course_when(harness, "E8", lambda s: len(s.rejections) == 4)
    reasons = [r.reason for r in status.rejections]
    assert "no callback is due yet" in reasons[0]
    assert "adv-2 is not this student's advisor" in reasons[1]
    assert "unknown outcome 'maybe'" in reasons[2]
    assert reasons[3].startswith("malformed")
    assert status.stage is CourseStage.awaiting_callback and status.outcome is None
    assert len(harness.rows(schema.SignalRejection, entity_id="E8")) == 4


async def test_unknown_student_fails_the_enrolment_at_once(harness: Harness,
                                                           env: WorkflowEnvironment) -> None:
    now = await env.get_current_time()
    handle = await harness.journeys.enroll(EnrollmentInput(
        enrollment_id="E9", customer_id="nobody", course_id="PY-101", advisor_id="rep-a",
        ends_at=now + HOUR))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "unknown customer 'nobody'" in message and "rep-a is a rep, not an advisor" in message
    assert not harness.rows(schema.Enrollment, id="E9")


# -- an advisor deactivated: the student is handed on ------------------------------------


async def deactivated(h: Harness, env: WorkflowEnvironment, staff_id: str) -> list[str]:
    return deactivate_staff(h.store, staff_id, now=await env.get_current_time())


def handover_events(h: Harness, enrollment_id: str) -> list[schema.JourneyEvent]:
    """What the handover recorded (the touch sent after it records its own event)."""
    return [e for e in h.rows(schema.JourneyEvent, entity_id=enrollment_id, journey="course")
            if e.key.startswith(f"enrollment-{enrollment_id}:handover:")]


async def enrolled_in_store(h: Harness, env: WorkflowEnvironment, enrollment_id: str, *,
                            ends_in: timedelta = 2 * HOUR, **overrides: Any) -> WorkflowHandle:
    """Enrolled and recorded, so that deactivating its advisor finds it."""
    handle = await enrolled(h, env, enrollment_id, ends_in=ends_in, **overrides)
    await eventually(lambda: h.rows(schema.Enrollment, id=enrollment_id))
    return handle


def message_for(h: Harness, touch: schema.Touch) -> dict[str, Any]:
    [message] = [m for m in h.outbox_messages() if m["key"] == touch.key]
    return message


async def test_a_deactivated_advisor_hands_the_student_to_the_least_loaded_advisor(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    for member in (StaffMember(id="adv-3", name="Advisor Three", role="advisor",
                               group="education", manager_id="sup-edu", chat="adv-3"),
                   StaffMember(id="adv-lang", name="Languages Advisor", role="advisor",
                               group="languages", manager_id="sup-edu", chat="adv-lang")):
        add_staff(harness.store, member, now=await env.get_current_time())
    await enrolled_in_store(harness, env, "E10busy", advisor_id="adv-2",
                            ends_in=30 * 24 * HOUR)
    await enrolled_in_store(harness, env, "E10", ends_in=MINUTE)

    open_journeys = await deactivated(harness, env, "adv-1")
    assert open_journeys == ["enrollment-E10"]
    await harness.journeys.tell_staff_deactivated(open_journeys, "adv-1")

    # adv-2 has an open enrolment; adv-lang is free but in another group
    status = await course_when(harness, "E10", lambda s: s.advisor_id != "adv-1")
    assert (status.advisor_id, status.previous_advisors) == ("adv-3", ["adv-1"])
    assert status.stage is CourseStage.enrolled and status.rejections == []
    assert harness.rows(schema.Enrollment, id="E10")[0].advisor_id == "adv-3"
    [event] = handover_events(harness, "E10")
    assert (event.step, event.detail) == (
        "advisor_reassigned", {"from_advisor_id": "adv-1", "advisor_id": "adv-3",
                               "fallback": False})
    [notice] = await eventually(lambda: harness.touches(step="advisor_reassigned",
                                                        status="sent"))
    assert (notice.recipient_id, notice.message_class) == ("adv-3", "staff")
    assert "adv-1" in message_for(harness, notice)["body"]

    # every later step follows the new advisor
    await env.sleep(MINUTE + 72 * HOUR + MINUTE)
    status = await course_when(harness, "E10",
                               lambda s: s.stage is CourseStage.awaiting_callback)
    [task] = harness.rows(schema.Task, entity_id="E10", kind="callback")
    assert task.assignee_id == "adv-3"
    await eventually(lambda: harness.touches(step="callback_task", recipient_id="adv-3",
                                             status="sent"))
    assert not harness.touches(recipient_id="adv-1")
    await harness.journeys.course("E10").signal(
        "log_callback", LogCallback(advisor_id="adv-1", outcome="no_interest"))
    status = await course_when(harness, "E10", lambda s: len(s.rejections) == 1)
    assert "adv-1 is not this student's advisor (adv-3)" in (status.rejections[0].reason or "")
    await env.sleep(24 * HOUR + MINUTE)
    status = await course_when(harness, "E10", lambda s: s.stage is CourseStage.escalated)
    [escalation] = harness.rows(schema.Escalation, entity_id="E10")
    assert (escalation.from_staff_id, escalation.to_staff_id) == ("adv-3", "sup-edu")
    answer = await harness.journeys.log_callback(
        "E10", LogCallback(advisor_id="adv-3", outcome="no_interest"))
    assert answer.accepted
    result = await harness.journeys.course("E10").result()
    assert result.stage is CourseStage.completed
    [interaction] = harness.rows(schema.Interaction, staff_id="adv-3")
    assert "no_interest" in (interaction.note or "")
    # a finished journey no longer needs its advisor
    assert "enrollment-E10" not in await deactivated(harness, env, "adv-3")


async def test_an_open_callback_task_moves_to_the_new_advisor(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await callback_due(harness, env, "E11")
    [task] = harness.rows(schema.Task, entity_id="E11", kind="callback")
    await harness.journeys.tell_staff_deactivated(await deactivated(harness, env, "adv-1"),
                                                  "adv-1")
    status = await course_when(harness, "E11", lambda s: s.advisor_id == "adv-2")
    assert status.stage is CourseStage.awaiting_callback
    assert status.callback_due_at == task.due_at  # the student's callback keeps its date
    [moved] = harness.rows(schema.Task, entity_id="E11", kind="callback")
    assert (moved.id, moved.assignee_id, moved.status, moved.due_at) == (
        task.id, "adv-2", "open", task.due_at)
    [notice] = await eventually(lambda: harness.touches(step="advisor_reassigned",
                                                        recipient_id="adv-2", status="sent"))
    assert "课后回访请在" in message_for(harness, notice)["body"]
    with pytest.raises(WorkflowUpdateFailedError):
        await harness.journeys.log_callback("E11", LogCallback(advisor_id="adv-1",
                                                               outcome="no_interest"))
    answer = await harness.journeys.log_callback(
        "E11", LogCallback(advisor_id="adv-2", outcome="renewal_intent"))
    assert answer.accepted
    await harness.journeys.course("E11").result()
    assert harness.rows(schema.Task, entity_id="E11", kind="callback")[0].status == "done"


async def test_a_broadcast_about_someone_else_changes_nothing(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await enrolled_in_store(harness, env, "E12", ends_in=2 * HOUR)
    assert await deactivated(harness, env, "adv-2") == []
    await harness.journeys.tell_staff_deactivated(["enrollment-E12"], "adv-2")
    # signals are acted on in order: once the end has moved, the broadcast was handled
    now = await env.get_current_time()
    await handle.signal("end_course", EndCourse(ended_at=now + 5 * HOUR))
    status = await course_when(harness, "E12", lambda s: s.ends_at == now + 5 * HOUR)
    assert (status.advisor_id, status.previous_advisors, status.rejections) == ("adv-1", [], [])
    assert harness.rows(schema.Enrollment, id="E12")[0].advisor_id == "adv-1"
    assert not harness.rows(schema.SignalRejection, entity_id="E12")
    assert not handover_events(harness, "E12")
    assert not harness.touches(step="advisor_reassigned")


async def test_a_staff_deactivated_signal_without_a_staff_id_is_rejected(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await enrolled(harness, env, "E13", ends_in=2 * HOUR)
    await handle.signal("staff_deactivated", {})
    await handle.signal("staff_deactivated", {"staff_id": ["adv-1"]})
    status = await course_when(harness, "E13", lambda s: len(s.rejections) == 2)
    reasons = [r.reason or "" for r in status.rejections]
    assert reasons[0] == "staff_id is required"
    assert reasons[1].startswith("malformed: staff_id")
    assert status.advisor_id == "adv-1" and not handover_events(harness, "E13")
    assert len(harness.rows(schema.SignalRejection, entity_id="E13")) == 2


async def test_with_no_advisor_left_the_supervisor_takes_the_student(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    assert await deactivated(harness, env, "adv-2") == []
    await callback_due(harness, env, "E14")
    await harness.journeys.tell_staff_deactivated(await deactivated(harness, env, "adv-1"),
                                                  "adv-1")
    status = await course_when(harness, "E14", lambda s: s.advisor_id == "sup-edu")
    assert status.previous_advisors == ["adv-1"] and status.rejections == []
    [event] = handover_events(harness, "E14")
    assert event.detail == {"from_advisor_id": "adv-1", "advisor_id": "sup-edu",
                            "fallback": True}
    assert harness.rows(schema.Task, entity_id="E14", kind="callback")[0].assignee_id == "sup-edu"
    [notice] = await eventually(lambda: harness.touches(step="advisor_reassigned",
                                                        recipient_id="sup-edu", status="sent"))
    assert "暂无其他可接手的顾问" in message_for(harness, notice)["body"]
    answer = await harness.journeys.log_callback(
        "E14", LogCallback(advisor_id="sup-edu", outcome="unreachable"))
    assert answer.accepted


async def test_with_nobody_active_above_the_student_stays_and_it_is_recorded(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await enrolled_in_store(harness, env, "E15", ends_in=2 * HOUR)
    for staff_id in ("adv-2", "sup-edu"):
        await deactivated(harness, env, staff_id)
    await harness.journeys.tell_staff_deactivated(await deactivated(harness, env, "adv-1"),
                                                  "adv-1")
    [event] = await eventually(lambda: handover_events(harness, "E15"))
    assert (event.step, event.detail) == (
        "advisor_unassigned", {"from_advisor_id": "adv-1", "advisor_id": None, "fallback": True})
    status = await harness.journeys.course_status("E15")
    assert (status.advisor_id, status.previous_advisors, status.rejections) == ("adv-1", [], [])
    assert not harness.touches(step="advisor_reassigned")
