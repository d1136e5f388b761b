"""LeadJourney on the time-skipping server: the first-touch clock, reminder,
escalation chain, pool and claim, contact, merge, invalid input, quiet hours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.leads import Claim, Convert, Discard, LeadInput, LeadStage, LogContact
from domain.policy import MessagingPolicy, QuietHours
from tests.harness import (
    Harness,
    eventually,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def a_lead(lead_id: str, phone: str | None = None, **overrides: object) -> LeadInput:
    digits = sum(ord(c) * (i + 1) for i, c in enumerate(lead_id)) % 10**8
    values: dict[str, object] = {
        "lead_id": lead_id,
        "name": "张伟",
        "phone": phone or f"+86 138{digits:08d}",
        "email": f"{lead_id.lower()}@example.com",
        "company": f"{lead_id} 科技有限公司",
        "region": "east",
        "product_line": "erp",
        "source": "web_form",
        "need": "need an ERP for 200 staff",
    }
    values.update(overrides)
    return LeadInput.model_validate(values)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def started(h: Harness, lead: LeadInput) -> WorkflowHandle:
    """Starts a lead and waits until the journey itself has finished intake."""
    handle = await h.journeys.start_lead(lead)
    await status_when(h, lead.lead_id, lambda s: s.stage is not LeadStage.new, "intake done")
    return handle


async def status_when(h: Harness, lead_id: str, predicate: Any, what: str = "") -> Any:
    """The journey's status once `predicate` holds (activities finish in real time)."""
    latest = None

    async def probe() -> Any:
        nonlocal latest
        latest = await h.journeys.lead_status(lead_id)
        return predicate(latest)

    deadline = asyncio.get_running_loop().time() + 20
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{lead_id}: {what or 'condition'} never held; last {latest}")
        await asyncio.sleep(0.05)
    return latest


async def task_failures(handle: WorkflowHandle) -> int:
    failures = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failures += 1
    return failures


async def test_intake_assigns_least_loaded_rep_and_welcomes(harness: Harness) -> None:
    await started(harness, a_lead("L1"))
    await started(harness, a_lead("L2"))
    assert harness.lead("L1").owner_id == "rep-a"  # most senior of three idle reps
    assert harness.lead("L2").owner_id == "rep-b"  # rep-a now has one open lead
    welcome = await eventually(
        lambda: (t := harness.touches(step="welcome", status="sent")) and len(t) == 2 and t)
    assert {t.recipient_id for t in welcome} == {"L1", "L2"}
    messages = harness.outbox_messages()
    assert any(m["to"] == "l1@example.com" and "erp" in m["body"] for m in messages)
    status = await harness.journeys.lead_status("L1")
    assert status.stage is LeadStage.assigned and status.score and status.score > 50


async def test_reminder_at_20h_escalation_at_24h_not_at_23h59(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await started(harness, a_lead("L3"))
    await env.sleep(19 * HOUR + 59 * MINUTE)
    assert not harness.touches(step="first_touch_reminder")
    await env.sleep(2 * MINUTE)
    reminder = await eventually(lambda: harness.touches(step="first_touch_reminder",
                                                        status="sent"))
    assert reminder[0].recipient_id == "rep-a"

    await env.sleep(3 * HOUR + 57 * MINUTE)  # 23:59 after assignment
    assert not harness.rows(schema.Escalation, entity_id="L3")
    assert (await harness.journeys.lead_status("L3")).stage is LeadStage.assigned
    await env.sleep(2 * MINUTE)
    escalation = await eventually(lambda: harness.rows(schema.Escalation, entity_id="L3"))
    assert escalation[0].from_staff_id == "rep-a" and escalation[0].to_staff_id == "mgr-east"
    status = await status_when(harness, "L3", lambda s: s.stage is LeadStage.escalated)
    assert status.owner_id == "rep-b" and status.reassignments == 1
    await eventually(lambda: harness.touches(step="escalated", recipient_id="mgr-east",
                                             status="sent"))


async def test_reassignment_chain_then_pool_then_claim(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await started(harness, a_lead("L4"))
    owners = [(await harness.journeys.lead_status("L4")).owner_id]
    for round_ in range(1, 4):
        await env.sleep(24 * HOUR + MINUTE)
        status = await status_when(
            harness, "L4", lambda s, r=round_: len(s.previous_owners) == r, "next owner")
        owners.append(status.owner_id)
    assert owners == ["rep-a", "rep-b", "rep-c", None]
    assert status.stage is LeadStage.pooled
    assert status.previous_owners == ["rep-a", "rep-b", "rep-c"]
    assert len(harness.rows(schema.Escalation, entity_id="L4")) == 3
    await eventually(lambda: harness.touches(step="pooled", recipient_id="mgr-east"))
    assert harness.lead("L4").stage == "pooled" and harness.lead("L4").owner_id is None

    # the pool waits for a claim; a non-rep cannot claim
    assert "not a rep" in await refused(harness.journeys.claim_lead("L4", "mgr-east"))
    accepted = await harness.journeys.claim_lead("L4", "rep-b")
    assert accepted.accepted and accepted.due_at is not None
    status = await harness.journeys.lead_status("L4")
    assert status.stage is LeadStage.assigned and status.owner_id == "rep-b"
    assert harness.lead("L4").owner_id == "rep-b"


async def test_no_eligible_rep_pools_and_alerts_manager(harness: Harness) -> None:
    await started(harness, a_lead("L5", region="north"))
    status = await harness.journeys.lead_status("L5")
    assert status.stage is LeadStage.pooled and status.owner_id is None
    alert = await eventually(lambda: harness.touches(step="pooled"))
    assert alert[0].recipient_id == "mgr-east"


async def test_contact_stops_the_first_touch_clock(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await started(harness, a_lead("L6"))
    await env.sleep(10 * HOUR)
    answer = await harness.journeys.log_contact("L6", LogContact(owner_id="rep-a", channel="phone",
                                                                 note="wants a demo"))
    assert answer.accepted
    contacted_at = answer.at
    assert answer.due_at == contacted_at + timedelta(days=3)
    await env.sleep(20 * HOUR)
    status = await harness.journeys.lead_status("L6")
    assert status.stage is LeadStage.following_up and status.owner_id == "rep-a"
    assert not harness.rows(schema.Escalation, entity_id="L6")
    assert not harness.touches(step="first_touch_reminder")
    interactions = harness.rows(schema.Interaction, lead_id="L6")
    assert [(i.staff_id, i.channel, i.note) for i in interactions] == [
        ("rep-a", "phone", "wants a demo")]
    assert await task_failures(handle) == 0


async def test_duplicate_lead_merges_into_open_journey(harness: Harness) -> None:
    await started(harness, a_lead("L7", phone="13900139000"))
    dup = await harness.journeys.start_lead(
        a_lead("L8", phone="+86 139-0013-9000", email="other@example.com", company="Other")
    )
    result = await dup.result()
    assert result.stage is LeadStage.merged and result.merged_leads == ["L7"]
    original = await harness.journeys.lead_status("L7")
    assert original.merged_leads == ["L8"]
    assert harness.lead("L8").merged_into == "L7" and harness.lead("L8").stage == "merged"


async def test_invalid_signals_change_nothing_and_fail_no_task(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await started(harness, a_lead("L9"))
    before = await harness.journeys.lead_status("L9")
    await handle.signal("log_contact", LogContact(owner_id="rep-b", channel="phone"))
    await handle.signal("claim", Claim(owner_id="rep-c"))
    await handle.signal("discard", Discard(reason="  "))
    await handle.signal("convert", Convert(amount=-5))
    await handle.signal("log_contact", LogContact(owner_id="rep-a", channel="phone",
                                                   at=datetime(2020, 1, 1, tzinfo=UTC)))
    await handle.signal("log_contact", "not an object")
    await handle.signal("claim", {"owner_id": 12, "unexpected": True})
    rejections = await eventually(
        lambda: (s := harness.rows(schema.SignalRejection, entity_id="L9")) and len(s) >= 7 and s,
        what="seven rejections recorded",
    )
    after = await harness.journeys.lead_status("L9")
    assert [r.signal for r in after.rejections] == [
        "log_contact", "claim", "discard", "convert", "log_contact", "log_contact", "claim"]
    reasons = " | ".join(r.reason for r in after.rejections)
    assert "rep-b does not own this lead" in reasons
    assert "not in the pool" in reasons
    assert "reason is required" in reasons
    assert "negative" in reasons
    assert "is not between the assignment" in reasons
    assert "expected a JSON object, got str" in reasons
    assert "malformed: owner_id: Input should be a valid string" in reasons
    assert len(rejections) == 7
    assert (after.stage, after.owner_id, after.deadline, after.contacts) == (
        before.stage, before.owner_id, before.deadline, before.contacts)
    assert not harness.rows(schema.Interaction, lead_id="L9")
    assert await task_failures(handle) == 0
    # the journey still runs its clock
    await env.sleep(24 * HOUR + MINUTE)
    await status_when(harness, "L9", lambda s: s.owner_id == "rep-b", "reassigned to rep-b")


async def test_invalid_start_input_fails_the_journey_at_once(harness: Harness) -> None:
    bad_phone = await harness.journeys.start_lead(a_lead("L10", phone="12345"))
    with pytest.raises(WorkflowFailureError) as failure:
        await bad_phone.result()
    assert "phone '12345' is not a valid number" in str(failure.value.cause)
    assert not harness.rows(schema.Lead, id="L10")

    missing_region = await harness.client.start_workflow(
        "LeadJourney", {"lead_id": "L11", "name": "x", "product_line": "erp", "source": "ads"},
        id="lead-L11", task_queue=harness.task_queue)
    harness.journeys.started.append("lead-L11")
    with pytest.raises(WorkflowFailureError) as failure:
        await missing_region.result()
    assert "region" in str(failure.value.cause)
    assert await task_failures(missing_region) == 0


async def test_quiet_hours_defer_the_welcome_to_nine_local(
    env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    seed_staff(sqlite_store)
    # A zone where it is now about 03:00, inside the default 21:00-09:00 window.
    utc_hour = (await env.get_current_time()).astimezone(UTC).hour
    offset = (3 - utc_hour) % 24
    offset = offset - 24 if offset > 12 else offset
    zone = f"Etc/GMT{'+' if offset <= 0 else '-'}{abs(offset)}"
    policy = MessagingPolicy(quiet_hours=QuietHours(enabled=True))
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path),
                              messaging_policy=policy) as h:
        await started(h, a_lead("L12", timezone=zone))
        deferred = await eventually(lambda: h.touches(step="welcome", status="deferred"))
        until = deferred[0].deferred_until.astimezone(ZoneInfo(zone))
        assert (until.hour, until.minute) == (9, 0)
        # staff notices ignore quiet hours
        assert await eventually(lambda: h.touches(step="assigned", status="sent"))
        await env.sleep(7 * HOUR)
        sent = await eventually(lambda: h.touches(step="welcome", status="sent"))
        assert sent[0].sent_at >= deferred[0].deferred_until
        assert sent[0].sent_at - deferred[0].deferred_until < timedelta(minutes=1)


async def test_contact_logged_while_intake_runs_counts_from_the_assignment(
    harness: Harness,
) -> None:
    await harness.journeys.start_lead(a_lead("L13"))
    answer = await harness.journeys.log_contact("L13", LogContact(owner_id="rep-a",
                                                                  channel="phone"))
    assert answer.accepted, answer.reason
    lead = harness.lead("L13")
    # Taken after intake and assignment, it never counts from before the assignment.
    assert answer.at >= lead.assigned_at
