"""LeadJourney after the first touch: the 3-day re-follow, stale after five
missed deadlines, conversion, discarding, and an owner who leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from activities.store.staff import deactivate_staff
from domain import schema
from domain.leads import Convert, LeadStage, LogContact
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff
from tests.test_lead_workflow import HOUR, MINUTE, a_lead, started, status_when

DAY = timedelta(days=1)


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        yield h


async def contacted(h: Harness, lead_id: str, owner: str = "rep-a") -> LogContact:
    answer = await h.journeys.log_contact(lead_id, LogContact(owner_id=owner, channel="wechat"))
    assert answer.accepted, answer.reason
    return answer


async def test_follow_up_due_72h_after_the_contact_time(harness: Harness,
                                                      time_skipping_env: WorkflowEnvironment
                                                      ) -> None:
    await started(harness, a_lead("F1"))
    await time_skipping_env.sleep(2 * HOUR)
    answer = await contacted(harness, "F1")
    assert answer.due_at == answer.at + timedelta(hours=72)
    task = harness.rows(schema.Task, entity_id="F1", kind="follow_up", status="open")
    assert [t.due_at for t in task] == [answer.due_at]
    await time_skipping_env.sleep(72 * HOUR - MINUTE)
    assert not harness.touches(step="follow_up_reminder")
    await time_skipping_env.sleep(2 * MINUTE)
    reminder = await eventually(lambda: harness.touches(step="follow_up_reminder", status="sent"))
    assert reminder[0].recipient_id == "rep-a"
    status = await status_when(harness, "F1", lambda s: s.missed_follow_ups == 1)
    assert status.deadline == answer.due_at + timedelta(hours=72)


async def test_backdated_contact_counts_from_its_own_time(harness: Harness,
                                                         time_skipping_env: WorkflowEnvironment
                                                         ) -> None:
    await started(harness, a_lead("F2"))
    await time_skipping_env.sleep(5 * HOUR)
    now = await time_skipping_env.get_current_time()
    at = now - 3 * HOUR
    answer = await harness.journeys.log_contact(
        "F2", LogContact(owner_id="rep-a", channel="visit", at=at))
    assert answer.accepted and answer.due_at == at + 3 * DAY


async def test_contact_before_the_deadline_restarts_the_clock(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    await started(harness, a_lead("F3"))
    first = await contacted(harness, "F3")
    await time_skipping_env.sleep(2 * DAY)
    second = await contacted(harness, "F3")
    assert second.due_at == second.at + 3 * DAY
    await time_skipping_env.sleep(DAY + HOUR)  # past the first contact's deadline
    assert first.due_at < await time_skipping_env.get_current_time()
    status = await harness.journeys.lead_status("F3")
    assert status.missed_follow_ups == 0 and status.deadline == second.due_at
    assert not harness.touches(step="follow_up_reminder")


async def test_fifth_missed_deadline_makes_the_lead_stale_not_the_fourth(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await started(harness, a_lead("F4"))
    answer = await contacted(harness, "F4")
    await time_skipping_env.sleep(answer.due_at - await time_skipping_env.get_current_time()
                                  + 3 * DAY * 3 + HOUR)  # four deadlines passed
    status = await status_when(harness, "F4", lambda s: s.missed_follow_ups == 4)
    assert status.stage is LeadStage.following_up
    await eventually(lambda: len(harness.touches(step="follow_up_reminder", status="sent")) == 4)
    await time_skipping_env.sleep(3 * DAY)
    result = await handle.result()
    assert result.stage is LeadStage.stale and result.missed_follow_ups == 5
    assert harness.lead("F4").stage == "stale" and harness.lead("F4").closed_at is not None
    assert len(harness.touches(step="follow_up_reminder")) == 4
    assert not harness.rows(schema.Task, entity_id="F4", status="open")


async def test_convert_creates_the_opportunity_and_ends_the_journey(harness: Harness) -> None:
    handle = await started(harness, a_lead("F5"))
    await contacted(harness, "F5")
    await handle.signal("convert", Convert(opportunity_name="ERP rollout",
                                           amount=Decimal("128000.50")))
    result = await handle.result()
    assert result.stage is LeadStage.converted and result.opportunity_id == "opp-F5"
    [opportunity] = harness.rows(schema.Opportunity, lead_id="F5")
    assert (opportunity.stage, opportunity.owner_id, opportunity.amount_minor, opportunity.currency
            ) == ("needs_analysis", "rep-a", 12800050, "CNY")
    assert harness.lead("F5").customer_id is not None


async def test_discard_needs_a_reason_and_ends_the_journey(harness: Harness) -> None:
    handle = await started(harness, a_lead("F6"))
    await harness.journeys.discard_lead("F6", "")
    await harness.journeys.discard_lead("F6", "budget frozen until 2028")
    result = await handle.result()
    assert result.stage is LeadStage.discarded
    assert [r.reason for r in result.rejections] == ["a reason is required to discard a lead"]
    assert harness.lead("F6").close_reason == "budget frozen until 2028"


async def test_deactivated_owner_hands_the_lead_on(harness: Harness) -> None:
    await started(harness, a_lead("F7"))
    await contacted(harness, "F7")
    open_journeys = deactivate_staff(harness.store, "rep-a",
                                     now=await _server_now(harness))
    assert open_journeys == ["lead-F7"]
    await harness.journeys.tell_staff_deactivated(open_journeys, "rep-a")
    status = await status_when(harness, "F7", lambda s: s.owner_id == "rep-b")
    assert status.stage is LeadStage.escalated and status.previous_owners == ["rep-a"]
    assert harness.lead("F7").owner_id == "rep-b"
    await eventually(lambda: harness.touches(step="assigned", recipient_id="rep-b"))


async def test_a_deactivation_naming_nobody_is_rejected_and_changes_nothing(
    harness: Harness,
) -> None:
    handle = await started(harness, a_lead("F9"))
    await contacted(harness, "F9")
    await handle.signal("staff_deactivated", {})
    status = await status_when(harness, "F9", lambda s: s.rejections)
    assert [(r.signal, r.reason) for r in status.rejections] == [
        ("staff_deactivated", "staff_id is required")]
    assert status.owner_id == "rep-a" and harness.lead("F9").owner_id == "rep-a"


async def test_funnel_can_be_read_from_journey_events(harness: Harness) -> None:
    handle = await started(harness, a_lead("F8"))
    await contacted(harness, "F8")
    await handle.signal("convert", Convert())
    await handle.result()
    steps = [e.step for e in harness.rows(schema.JourneyEvent, entity_id="F8", journey="lead")]
    for step in ("received", "assigned", "first_contact", "converted"):
        assert step in steps


async def _server_now(h: Harness):  # noqa: ANN202
    from datetime import UTC, datetime

    return datetime.now(UTC)
