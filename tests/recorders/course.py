"""Recordings of the course journey: a full run (enrollment-R2) and every
signal (enrollment-R8).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain import schema
from domain.courses import CourseStage, CourseStatus, EndCourse, EnrollmentInput, LogCallback
from domain.policy import MessagingPolicy
from starter.client import Journeys
from tests.harness import (
    eventually,
    local_window_around,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)
from tests.recorders.common import (
    ZONE,
    _malformed,
    _rejected,
    _touches,
    _when,
    _worker,
    fresh,
    signal_all,
)


async def record_course_full(env: WorkflowEnvironment, workdir: Path,
                             enrollment_id: str = "R2") -> str:
    """Enrolment and welcome, the end moved earlier, the callback task 72 h later,
    escalation, a rejected callback from another advisor, the renewal intent."""
    url = f"sqlite:///{workdir / 'crm-course.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        now = await env.get_current_time()
        handle = await h.journeys.enroll(EnrollmentInput(
            enrollment_id=enrollment_id, customer_id="cust-1", course_id="PY-101",
            advisor_id="adv-1",
            ends_at=now + timedelta(days=10)))
        await asyncio.sleep(1)
        await handle.signal("end_course", EndCourse(ended_at=now + timedelta(days=2)))
        await env.sleep(timedelta(days=2 + 3 + 1, minutes=5))
        await eventually(lambda: h.rows(schema.Escalation, entity_id=enrollment_id))
        await handle.signal("log_callback", LogCallback(advisor_id="adv-2", outcome="no_interest"))
        answer = await h.journeys.log_callback(enrollment_id, LogCallback(advisor_id="adv-1",
                                                                 outcome="renewal_intent"))
        assert answer.accepted
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def _timers_fired(handle: WorkflowHandle) -> int:
    return sum([event.event_type == EventType.EVENT_TYPE_TIMER_FIRED
                async for event in handle.fetch_history_events()])


async def record_course_every_signal(env: WorkflowEnvironment, workdir: Path,
                                     enrollment_id: str = "R8") -> str:
    """Every course signal refused in every shape, the end moved, the advisor
    deactivated (handed on); then, the worker down, the callback step falls
    due and the callback is logged after it: the step goes first and the
    callback is taken; the feedback request and renewal offer wait out quiet
    hours, and an update and a signal are refused while they wait."""
    store, settings = fresh(workdir, "crm-course-every.db")
    task_queue = "record-enrollment-r8"
    now = await env.get_current_time()
    ends_at = now + timedelta(hours=1)
    callback_due = ends_at + timedelta(hours=72)
    quiet = MessagingPolicy(quiet_hours=local_window_around(callback_due, ZONE, before_min=10,
                                                            after_min=180))
    journeys = Journeys(env.client, task_queue=task_queue)
    status = lambda: journeys.course_status(enrollment_id)  # noqa: E731
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet, cache=False):
        handle = await journeys.enroll(EnrollmentInput(
            enrollment_id=enrollment_id, customer_id="cust-1", course_id="PY-201",
            advisor_id="adv-1",
            ends_at=now + timedelta(hours=2)))
        await _when(status, lambda s: s.stage is CourseStage.enrolled, "enrolled")
        await signal_all(handle, [
            ("log_callback", [{"advisor_id": "adv-1", "outcome": "renewal_intent"}]),  # early
            ("log_callback", [{"advisor_id": "adv-2", "outcome": "no_interest"}]),  # not theirs
            ("log_callback", [{"advisor_id": "adv-1", "outcome": "maybe"}]),  # no such outcome
            ("end_course", [{"ended_at": "next week"}]),                      # malformed
            *_malformed("log_callback", not_an_object="called"),
        ])
        await _rejected(handle, CourseStatus, 10)
        await signal_all(handle, [
            ("end_course", [{"ended_at": ends_at.isoformat()}]),
            ("staff_deactivated", [{"staff_id": "adv-1"}]),                   # handed on
        ])
        await _when(status, lambda s: s.advisor_id == "adv-2", "handed on")
        await refused(journeys.log_callback(enrollment_id, LogCallback(advisor_id="adv-2",
                                                              outcome="no_interest")))
        await env.sleep(ends_at - await env.get_current_time() + timedelta(minutes=5))
        await _when(status, lambda s: s.stage is CourseStage.course_ended, "course ended")
    # The worker is down while the callback step falls due; the advisor logs
    # the callback after that: one workflow task brings the timer and the signal.
    # (The test server stops skipping time once a workflow task waits for a
    # worker, so the last seconds before the step pass in real time.)
    timers = await _timers_fired(handle)
    await env.sleep(callback_due - await env.get_current_time() - timedelta(seconds=2))
    await _when(lambda: _timers_fired(handle), lambda n: n > timers, "callback step due")
    await handle.signal("log_callback", LogCallback(advisor_id="adv-2",
                                                    outcome="renewal_intent"))
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet):
        done = await _when(status, lambda s: s.stage is CourseStage.completed, "completed")
        assert done.outcome == "renewal_intent" and len(done.rejections) == 10
        await eventually(lambda: _touches(store, "renewal_offer", "deferred"))
        # The offer still waits: the journey answers until it completes.
        await refused(journeys.log_callback(enrollment_id, LogCallback(advisor_id="adv-2",
                                                              outcome="no_interest")))
        await handle.signal("end_course", EndCourse())
        await _rejected(handle, CourseStatus, 11)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
# The C recordings: the same journeys started since cost-per-journey (one
# patch marker for the changes before it).
RECORDINGS = {"enrollment-R2": record_course_full, "enrollment-R8": record_course_every_signal,
              "enrollment-C2": partial(record_course_full, enrollment_id="C2"),
              "enrollment-C8": partial(record_course_every_signal, enrollment_id="C8")}
