"""OpportunityJourney on the time-skipping server: the stalled-deal nudges (the
owner at 7 days and not at 6 days 23 hours, the manager at 14), a logged
activity starting the stall clock over, the expected close date passed, the
quote asked for, sent and followed up, stages forward only, one contract and
one payment journey however often `win` is sent, and a loss needing a reason
code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.opportunities import (
    Advance,
    LogActivity,
    Lose,
    OpportunityInput,
    OpportunityStage,
    SendQuote,
    UpdateForecast,
    Win,
    WinContract,
)
from starter.opportunities import Opportunities
from tests.harness import Harness, eventually, make_settings, refused, running_worker, seed_staff

DAY = timedelta(days=1)
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


def pipeline(h: Harness) -> Opportunities:
    return Opportunities(h.client, task_queue=h.task_queue)


async def opened(h: Harness, opportunity_id: str, **values: Any) -> WorkflowHandle:
    start = {"opportunity_id": opportunity_id, "customer_id": "cust-1", "owner_id": "rep-a",
             "name": "ERP rollout", "amount": "120000", **values}
    handle = await pipeline(h).start(OpportunityInput.model_validate(start))
    # Ended with the test, with the contract and onboarding journeys a win starts.
    h.journeys.started += [handle.id, f"contract-{opportunity_id}", f"onboarding-{opportunity_id}"]
    await when(h, opportunity_id, lambda s: s.stage is OpportunityStage.needs_analysis)
    return handle


async def when(h: Harness, opportunity_id: str, predicate: Any) -> Any:
    latest = None
    for _ in range(400):
        latest = await pipeline(h).status(opportunity_id)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{opportunity_id}: condition never held; last {latest}")


async def test_the_owner_is_nudged_at_7_days_without_activity_and_not_at_6_days_23_hours(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await opened(harness, "O1")
    await env.sleep(6 * DAY + 23 * HOUR)
    assert not harness.touches(step="opportunity_stalled")
    await env.sleep(HOUR + MINUTE)
    [nudge] = await eventually(lambda: harness.touches(step="opportunity_stalled",
                                                       status="sent"))
    assert nudge.recipient_id == "rep-a"
    assert not harness.touches(step="opportunity_stalled_escalated")


async def test_the_manager_is_told_at_14_days(harness: Harness, env: WorkflowEnvironment
                                              ) -> None:
    await opened(harness, "O2")
    await env.sleep(14 * DAY - HOUR)
    assert not harness.touches(step="opportunity_stalled_escalated")
    await env.sleep(HOUR + MINUTE)
    [told] = await eventually(lambda: harness.touches(step="opportunity_stalled_escalated",
                                                      status="sent"))
    assert told.recipient_id == "mgr-east"
    [escalation] = harness.rows(schema.Escalation, entity_id="O2")
    assert (escalation.level, escalation.to_staff_id) == (2, "mgr-east")


async def test_a_logged_activity_starts_the_stall_clock_over(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "O3")
    await env.sleep(6 * DAY)
    await handle.signal("log_activity", LogActivity(owner_id="rep-a", kind="visit"))
    await when(harness, "O3", lambda s: s.last_activity_at is not None)
    await env.sleep(6 * DAY + 23 * HOUR)  # 12 d 23 h after opening
    assert not harness.touches(step="opportunity_stalled")
    await env.sleep(HOUR + MINUTE)
    await eventually(lambda: harness.touches(step="opportunity_stalled", status="sent"))
    [interaction] = harness.rows(schema.Interaction, staff_id="rep-a")
    assert interaction.channel == "visit"


async def test_a_passed_close_date_tells_the_owner_and_the_manager(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    now = await env.get_current_time()
    handle = await opened(harness, "O4", close_date=(now + 2 * DAY).date().isoformat())
    await handle.signal("log_activity", LogActivity(owner_id="rep-a", kind="call"))
    await env.sleep(4 * DAY)
    told = await eventually(lambda: harness.touches(step="opportunity_close_passed",
                                                    status="sent"))
    assert sorted(t.recipient_id for t in told) == ["mgr-east", "rep-a"]
    # A new close date starts its wait over.
    await handle.signal("update_forecast", UpdateForecast(
        close_date=(now + 10 * DAY).date(), amount=Decimal("150000")))
    status = await when(harness, "O4", lambda s: s.amount == Decimal("150000"))
    assert status.close_date == (now + 10 * DAY).date()
    [row] = harness.rows(schema.Opportunity, id="O4")
    assert row.amount_minor == 15_000_000 and row.close_date == (now + 10 * DAY).date()


async def test_proposal_asks_for_the_quote_which_goes_out_and_is_followed_up(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "O5")
    assert (await pipeline(harness).advance("O5", Advance(stage="proposal"))).accepted
    await eventually(lambda: harness.touches(step="quote_requested", recipient_id="rep-a"))
    await handle.signal("send_quote", SendQuote(amount=Decimal("118000.50")))
    [quote] = await eventually(lambda: harness.touches(step="quote", status="sent"))
    assert quote.recipient_id == "cust-1"
    [message] = [m for m in harness.outbox_messages() if m["key"] == quote.key]
    assert "118,000.50" in message["body"]
    await env.sleep(3 * DAY - HOUR)
    assert not harness.touches(step="quote_follow_up")
    await env.sleep(HOUR + MINUTE)
    await eventually(lambda: harness.touches(step="quote_follow_up", recipient_id="rep-a"))


async def test_stages_move_forward_only_and_a_skip_needs_a_reason(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await opened(harness, "O6")
    opportunities = pipeline(harness)
    assert "skips proposal: a reason is required" in await refused(
        opportunities.advance("O6", Advance(stage="negotiation")))
    assert "unknown stage 'won'" in await refused(opportunities.advance("O6",
                                                                        Advance(stage="won")))
    assert (await opportunities.advance("O6", Advance(stage="negotiation",
                                                      reason="tender"))).accepted
    assert "forward only" in await refused(opportunities.advance("O6",
                                                                 Advance(stage="proposal")))
    history = harness.rows(schema.OpportunityStageChange, opportunity_id="O6")
    assert [(h.from_stage, h.stage) for h in history] == [
        (None, "needs_analysis"), ("needs_analysis", "negotiation")]
    assert "tender" in (history[1].note or "")


async def test_win_sent_twice_makes_one_contract_and_one_payment_journey(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "O7")
    win = Win(contract=WinContract(amount=Decimal("100000"), currency="CNY"))
    await handle.signal("win", win)
    await handle.signal("win", win)
    result = await handle.result()
    assert result.stage is OpportunityStage.won and result.contract_id == "O7"
    assert [r.reason for r in result.rejections] == [
        "the opportunity is already won (contract O7)"]
    contract = harness.client.get_workflow_handle("contract-O7")
    await eventually(lambda: harness.rows(schema.Contract, id="O7"))
    [row] = harness.rows(schema.Contract, id="O7")
    assert row.amount_minor == 10_000_000 and row.customer_id == "cust-1"
    assert [m.percent for m in harness.rows(schema.PaymentMilestone, contract_id="O7")] == [
        "30", "70"]
    assert (await contract.describe()).status == WorkflowExecutionStatus.RUNNING
    started = [e async for e in handle.fetch_history_events()
               if e.activity_task_scheduled_event_attributes.activity_type.name
               == "start_contract_journey"]
    assert len(started) == 1
    [opportunity] = harness.rows(schema.Opportunity, id="O7")
    assert (opportunity.stage, opportunity.contract_id) == ("won", "O7")


async def test_a_loss_needs_a_reason_code_from_the_policy(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "O8")
    opportunities = pipeline(harness)
    assert "a reason code is required" in await refused(
        opportunities.lose("O8", Lose(note="they went elsewhere")))
    assert "unknown reason code 'too_pricey'" in await refused(
        opportunities.lose("O8", Lose(reason_code="too_pricey")))
    await handle.signal("lose", Lose(note="free text only"))
    status = await when(harness, "O8", lambda s: len(s.rejections) == 1)
    assert status.stage is OpportunityStage.needs_analysis
    assert (await opportunities.lose("O8", Lose(reason_code="competitor_cheaper",
                                                note="竞品报价低"))).accepted
    result = await handle.result()
    assert result.stage is OpportunityStage.lost and result.lost_reason == "competitor_cheaper"
    [row] = harness.rows(schema.Opportunity, id="O8")
    assert (row.stage, row.lost_reason) == ("lost", "competitor_cheaper")


async def test_a_converted_lead_hands_over_to_the_opportunity_journey(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    from domain.leads import Convert
    from tests.test_lead_workflow import a_lead, started

    lead = await started(harness, a_lead("H1"))
    owner = (await harness.journeys.lead_status("H1")).owner_id
    harness.journeys.started.append("opportunity-opp-H1")
    await lead.signal("convert", Convert(opportunity_name="ERP 200 seats",
                                         amount=Decimal("200000")))
    assert (await lead.result()).opportunity_id == "opp-H1"
    status = await when(harness, "opp-H1",
                        lambda s: s.stage is OpportunityStage.needs_analysis)
    assert (status.owner_id, status.amount) == (owner, Decimal("200000.00"))
    assert status.customer_id == harness.lead("H1").customer_id
    [row] = harness.rows(schema.Opportunity, id="opp-H1")
    assert row.lead_id == "H1" and row.stage_entered_at is not None
