"""Campaigns beyond launch, on the time-skipping server: customers who enter
the segment later are enrolled by the segment refresh, once, by the re-entry
policy and with the hold-out, and nobody while the campaign is paused; a
reply ends a wait for it and a branch takes it; each run of a coupon
campaign carries its own code in every message."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.campaigns import define_campaign, launch, set_status
from activities.segments import define_segment, refresh_segment
from activities.store import Store
from domain import schema
from domain.campaigns import HOLDOUT, CampaignStage, CampaignStatus, arm
from domain.policy import MessagingPolicy, QuietHours
from domain.segments import SegmentDefinition, SegmentPolicy, SegmentRefreshAnswer
from domain.segments import SegmentRefreshRequest as Request
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

DAY = timedelta(days=1)
# Several campaigns write to the same customers here: no frequency cap.
UNCAPPED = MessagingPolicy(quiet_hours=QuietHours(enabled=False), marketing_per_day=-1,
                           marketing_per_week=-1)
# The audience: English-speaking customers.
AUDIENCE = {"all": [{"field": {"name": "locale", "equals": "en"}}]}
EMAIL = {"message": {"channel": "email", "template": "offer"}}


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment, sqlite_store: Store,
                  tmp_path: Path) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as s:
        for n in range(12):
            s.add(schema.Customer(id=f"c{n:02d}", name=f"c{n:02d}",
                                  locale="en" if n < 6 else "zh-CN",
                                  email=f"c{n:02d}@example.com", phone=f"+861380000{n:04d}",
                                  created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    now = datetime.now(UTC)
    define_segment(sqlite_store, SegmentPolicy(), SegmentDefinition(name="audience",
                                                                    rule=AUDIENCE), now=now)
    refresh_segment(sqlite_store, SegmentPolicy(), "audience", now=now)
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path), messaging_policy=UNCAPPED) as h:
        yield h


def speaks(store: Store, locale: str, *customers: str) -> None:
    with store.unit_of_work() as s:
        for customer in customers:
            row = s.get(schema.Customer, customer)
            assert row is not None
            row.locale = locale


async def refresh(h: Harness) -> None:
    """What the `segments-daily` schedule starts."""
    await h.client.execute_workflow(
        "SegmentRefresh", Request(), id=f"segment-refresh-{uuid.uuid4().hex[:6]}",
        task_queue=h.task_queue, result_type=SegmentRefreshAnswer)


def runs(h: Harness, campaign: str) -> dict[str, list[str]]:
    """customer -> arm of each run, in run order."""
    found: dict[str, list[str]] = {}
    for m in sorted(h.rows(schema.CampaignMember, campaign=campaign), key=lambda m: m.run):
        found.setdefault(m.customer_id, []).append(m.arm)
    return found


def track(h: Harness, campaign: str) -> None:
    h.journeys.started += [f"campaign-{campaign}-{c}" for c in runs(h, campaign)]


async def test_customers_who_enter_later_are_enrolled_once_and_none_while_paused(
        harness: Harness, time_skipping_env: WorkflowEnvironment) -> None:
    env, h = time_skipping_env, harness
    now = datetime.now(UTC)
    late = define_campaign(h.store, {
        "name": "late", "audience": {"segment": "audience", "entry": "on_entry"},
        "holdout": 0.3, "steps": [EMAIL]}, now=now)
    define_campaign(h.store, {"name": "again", "segment": "audience", "entry": "on_entry",
                              "holdout": 0, "reentry": "after_end", "steps": [EMAIL]}, now=now)
    define_campaign(h.store, {"name": "once", "segment": "audience", "holdout": 0,
                              "steps": [EMAIL]}, now=now)
    for name in ("late", "again", "once"):
        await launch(h.store, h.client, task_queue=h.task_queue, name=name,
                     now=await env.get_current_time())
        track(h, name)
    first = {f"c{n:02d}" for n in range(6)} | {"cust-2"}  # seed_staff's English customer
    assert set(runs(h, "late")) == first

    # Two customers start speaking English: the next refresh enrols them in
    # the on_entry campaigns, each in the arm the hash gives, with a run only
    # outside the hold-out; the launch-only campaign takes no one.
    speaks(h.store, "en", "c06", "c07", "c08", "c09")
    await refresh(h)
    track(h, "late")
    track(h, "again")
    assert set(runs(h, "late")) == first | {"c06", "c07", "c08", "c09"}
    assert {c: arms[0] for c, arms in runs(h, "late").items()} == {
        c: arm(late, c) for c in runs(h, "late")}
    assert HOLDOUT in {arm(late, c) for c in runs(h, "late")}
    assert set(runs(h, "once")) == first
    entered = [c for c in ("c06", "c07", "c08", "c09") if arm(late, c) != HOLDOUT]
    await eventually(lambda: all(h.touches(workflow_id=f"campaign-late-{c}", status="sent")
                                 for c in entered), timeout=60)
    assert not [t for t in h.touches(step="0_email")
                if t.workflow_id.startswith("campaign-late-")
                and arm(late, t.recipient_id) == HOLDOUT]

    # A refresh that finds no one new enrols no one twice.
    await refresh(h)
    assert sum(len(a) for a in runs(h, "late").values()) == 11

    # Paused, the campaign enrols no one; resumed, those who entered meanwhile
    # and are still in the segment are enrolled, those who left are not.
    set_status(h.store, "late", "paused", now=datetime.now(UTC))
    speaks(h.store, "en", "c10", "c11")
    await refresh(h)
    assert not {"c10", "c11"} & set(runs(h, "late"))
    speaks(h.store, "zh-CN", "c11")
    await refresh(h)
    set_status(h.store, "late", "active", now=datetime.now(UTC))
    await refresh(h)
    track(h, "late")
    assert {"c10", "c11"} & set(runs(h, "late")) == {"c10"}

    # c01 leaves and comes back: `again` (after the run ended) runs it a
    # second time, `late` (never) does not.
    await eventually(lambda: all(m.ended_at is not None
                                 for m in h.rows(schema.CampaignMember, campaign="again",
                                                 customer_id="c01")), timeout=60)
    speaks(h.store, "zh-CN", "c01")
    await refresh(h)
    speaks(h.store, "en", "c01")
    await refresh(h)
    assert runs(h, "again")["c01"] == ["a", "a"]
    assert len(runs(h, "late")["c01"]) == 1
    await eventually(lambda: len(h.touches(workflow_id="campaign-again-c01",
                                           status="sent")) == 2, timeout=60)


def reply_campaign(name: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "segment": "audience", "holdout": 0, **more,
            "steps": [EMAIL, {"wait_for": {"event": "reply", "days": 2}},
                      {"branch": {"on": "reply", "then": [],
                                  "else": [{"message": {"channel": "sms",
                                                        "template": "offer_reminder"}}]}}]}


async def test_a_reply_ends_the_wait_for_it_and_the_branch_takes_it(
        harness: Harness, time_skipping_env: WorkflowEnvironment) -> None:
    env, h = time_skipping_env, harness
    define_campaign(h.store, reply_campaign("ask"), now=datetime.now(UTC))
    await launch(h.store, h.client, task_queue=h.task_queue, name="ask",
                 now=await env.get_current_time())
    track(h, "ask")
    handle = h.client.get_workflow_handle("campaign-ask-c00", result_type=CampaignStatus)
    await eventually(lambda: len(h.touches(step="0_email", status="sent")) == 7, timeout=60)

    # c00 answers by the channel's hook: its run goes on at once and ends.
    await handle.signal("replied", {"channel": "email"})
    done = await handle.result()
    assert done.stage is CampaignStage.completed and done.replied_at is not None
    assert [e.step for e in h.rows(schema.JourneyEvent, entity_id="ask:c00")
            if e.step == "replied"] == ["replied"]
    # c01 called back and staff logged it; c02 is told a reply from the future.
    at = await env.get_current_time()
    with h.store.unit_of_work() as s:
        s.add(schema.Interaction(key="call-c01", customer_id="c01", staff_id="rep-a",
                                 channel="phone", note="called back", at=at, recorded_at=at))
    later = h.client.get_workflow_handle("campaign-ask-c02", result_type=CampaignStatus)
    await later.signal("replied", {"at": (at + DAY).isoformat()})
    await env.sleep(2 * DAY + timedelta(minutes=5))
    # (the branch's else is step 4; seed_staff's cust-2 has no phone)
    sms = await eventually(lambda: len(h.touches(step="4_sms", status="sent")) == 4
                           and h.touches(step="4_sms", status="sent"), timeout=60)
    assert {t.recipient_id for t in sms} == {"c02", "c03", "c04", "c05"}
    status = await later.result()
    assert [r.signal for r in status.rejections] == ["replied"]
    assert status.rejections[0].reason.endswith("is in the future")


async def test_each_run_of_a_coupon_campaign_carries_its_own_code(
        harness: Harness, time_skipping_env: WorkflowEnvironment) -> None:
    env, h = time_skipping_env, harness
    define_campaign(h.store, {
        "name": "coupon", "segment": "audience", "holdout": 0, "coupon": {"percent": 15},
        "steps": [{"message": {"channel": "email", "template": "repurchase_coupon"}},
                  {"wait": {"days": 1}},
                  {"message": {"channel": "sms", "template": "repurchase_coupon_reminder"}}]},
        now=datetime.now(UTC))
    await launch(h.store, h.client, task_queue=h.task_queue, name="coupon",
                 now=await env.get_current_time())
    track(h, "coupon")
    await eventually(lambda: len(h.touches(step="0_email", status="sent")) == 7, timeout=60)
    await env.sleep(DAY + timedelta(minutes=5))
    sms = await eventually(lambda: len(h.touches(step="2_sms", status="sent")) == 6
                           and h.touches(step="2_sms", status="sent"), timeout=60)
    coupons = {c.customer_id: c for c in h.rows(schema.CouponRecord, campaign="coupon")}
    assert set(coupons) == {f"c{n:02d}" for n in range(6)} | {"cust-2"}
    assert len({c.code for c in coupons.values()}) == 7
    assert {c.discount_percent for c in coupons.values()} == {15}
    bodies = {m["key"]: m["body"] for m in h.outbox_messages()}
    for touch in [*h.touches(step="0_email"), *sms]:
        assert coupons[touch.recipient_id].code in bodies[touch.key]
    status = await h.client.get_workflow_handle(
        "campaign-coupon-c00", result_type=CampaignStatus).result()
    assert status.coupon_code == coupons["c00"].code
