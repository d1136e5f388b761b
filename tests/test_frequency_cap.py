"""The cross-journey marketing cap: the rule, and one customer in two journeys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.courses import CourseStage, EnrollmentInput, LogCallback
from domain.lifecycle import Purchase, TierChanged
from domain.messaging import FrequencyCap, cap_allows_at
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_one_a_day_three_a_week() -> None:
    cap = FrequencyCap(per_day=1, per_week=3)
    assert cap_allows_at([], now=T0, cap=cap) is None
    assert cap_allows_at([T0 - timedelta(hours=3)], now=T0, cap=cap) == T0 + timedelta(hours=21)
    assert cap_allows_at([T0 - DAY - timedelta(seconds=1)], now=T0, cap=cap) is None
    week = [T0 - 6 * DAY, T0 - 4 * DAY, T0 - 2 * DAY]
    assert cap_allows_at(week, now=T0, cap=cap) == T0 + DAY  # the oldest leaves the week
    assert cap_allows_at(week[1:], now=T0, cap=cap) is None


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        yield h


async def two_marketing_touches(h: Harness, env: WorkflowEnvironment) -> None:
    """A renewal offer from the course journey and a community coupon from the
    lifecycle journey, to the same customer at the same moment."""
    now = await env.get_current_time()
    handle = await h.journeys.enroll(EnrollmentInput(
        enrollment_id="FC1", customer_id="cust-1", course_id="PY-101", advisor_id="adv-1",
        ends_at=now - timedelta(days=4)))
    for _ in range(200):
        if (await h.journeys.course_status("FC1")).stage is CourseStage.awaiting_callback:
            break
        await asyncio.sleep(0.05)
    await h.journeys.report_purchase("cust-1", Purchase(order_id="FC-O1", amount=300))
    await eventually(lambda: h.touches(step="welcome", status="sent"))
    lifecycle = h.client.get_workflow_handle("customer-cust-1")
    await asyncio.gather(
        handle.signal("log_callback", LogCallback(advisor_id="adv-1", outcome="renewal_intent")),
        lifecycle.signal("tier_changed", TierChanged(tier="potential")),
    )


async def test_a_second_marketing_touch_the_same_day_waits_for_the_cap(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    await two_marketing_touches(harness, time_skipping_env)
    steps = ("renewal_offer", "community_coupon")

    def decided() -> list:  # type: ignore[type-arg]
        touches = [t for t in harness.touches(recipient_id="cust-1") if t.step in steps]
        return touches if {t.status for t in touches} == {"sent", "deferred"} else []

    touches = await eventually(decided, what="one sent, one deferred")
    sent = next(t for t in touches if t.status == "sent")
    deferred = next(t for t in touches if t.status == "deferred")
    assert deferred.reason == "frequency cap"
    assert deferred.deferred_until == sent.sent_at + DAY
    await time_skipping_env.sleep(DAY + timedelta(minutes=1))
    later = await eventually(lambda: [t for t in harness.touches(key=deferred.key)
                                      if t.status == "sent"])
    assert timedelta(0) <= later[0].sent_at - deferred.deferred_until < timedelta(seconds=1)


async def test_a_marketing_opt_out_holds_across_both_journeys(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    await harness.journeys.report_purchase("cust-1", Purchase(order_id="FC-O0", amount=300))
    await harness.journeys.opt_out("cust-1", None)
    await eventually(lambda: harness.rows(schema.Consent, subject_id="cust-1"))
    await two_marketing_touches(harness, time_skipping_env)
    steps = ("renewal_offer", "community_coupon")
    touches = await eventually(lambda: (t := [x for x in harness.touches(recipient_id="cust-1")
                                              if x.step in steps and x.status == "suppressed"])
                               and len(t) == 2 and t)
    assert {t.reason for t in touches} == {"opted out of marketing on all"}
    # a reminder-class message still goes
    assert harness.touches(step="welcome", status="sent")
