"""One enrolment on the real Temporal dev server, delivering for real through
apprise to a local SMTP server and a local webhook receiver."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.courses import CoursePolicy, CourseStage, EnrollmentInput, LogCallback
from tests.harness import eventually, running_worker, seed_staff
from tests.sinks import SmtpSink, WebhookSink
from tests.test_integration_lead import sink_settings, sinks  # noqa: F401 - fixture

pytestmark = pytest.mark.devserver


async def test_enrolment_to_renewal_offer_with_real_delivery(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    sinks: tuple[SmtpSink, WebhookSink],  # noqa: F811
) -> None:
    smtp, webhook = sinks
    seed_staff(sqlite_store)
    enrollment_id = f"IT-{tmp_path.name[-6:]}"
    policy = CoursePolicy(callback_after=timedelta(seconds=3),
                          callback_window=timedelta(seconds=3))
    async with running_worker(dev_env.client, sqlite_store,
                              sink_settings(tmp_path, smtp, webhook)) as h:
        handle = await h.journeys.enroll(EnrollmentInput(
            enrollment_id=enrollment_id, customer_id="cust-1", course_id="PY-101",
            advisor_id="adv-1", ends_at=datetime.now(UTC) + timedelta(seconds=2), policy=policy))

        async def stage() -> CourseStage:
            return (await h.journeys.course_status(enrollment_id)).stage

        for _ in range(300):
            if await stage() is CourseStage.escalated:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the callback was never escalated")
        answer = await h.journeys.log_callback(
            enrollment_id, LogCallback(advisor_id="adv-1", outcome="renewal_intent"))
        assert answer.accepted
        result = await handle.result()
        assert result.stage is CourseStage.completed

        expected = {"welcome", "callback_task", "feedback_request", "callback_escalated",
                    "renewal_offer"}
        touches = await eventually(
            lambda: (t := h.touches(workflow_id=handle.id))
            and {x.step for x in t} == expected and all(x.status == "sent" for x in t) and t,
            timeout=30, what="every touch sent")

    keys = {t.key for t in touches}
    mails = Counter(m.key for m in smtp.mails if m.key in keys)
    hooks = Counter(hk.key for hk in webhook.hooks if hk.key in keys)
    assert set(mails.values()) == {1} and set(hooks.values()) == {1}
    assert len(mails) + len(hooks) == len(expected)
    to_student = [m for m in smtp.mails if m.key in keys]
    assert {m.to[0] for m in to_student} == {"zhou.jie@example.com"}
    assert len(to_student) == 3  # welcome, feedback request, renewal offer
    assert Counter(hk.path for hk in webhook.hooks if hk.key in keys) == {
        "/chat/adv-1": 1, "/chat/sup-edu": 1}
