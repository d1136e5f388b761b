"""OnboardingJourney on the time-skipping server: the service group's task for
the service lead, the delivery reminder a day before the 3-day deadline (not
earlier), escalation to the service lead's manager at 3 days, the welcome
with the group's contact, the delivery as the contract's acceptance, the
check-in a week after delivery, and refused signals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.onboarding import start_onboarding_journey
from activities.store import Store
from domain import schema
from domain.journeys import Decision
from domain.onboarding import (
    Delivered,
    GroupReady,
    OnboardingInput,
    OnboardingStage,
    OnboardingStatus,
)
from domain.opportunities import OpportunityInput, Win, WinContract
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


async def onboarded(h: Harness, env: WorkflowEnvironment, contract_id: str) -> WorkflowHandle:
    now = await env.get_current_time()
    workflow_id = await start_onboarding_journey(h.client, task_queue=h.task_queue,
                                                 onboarding=OnboardingInput(
                                                     contract_id=contract_id,
                                                     customer_id="cust-1", owner_id="rep-a",
                                                     signed_at=now))
    h.journeys.started.append(workflow_id)
    handle = h.client.get_workflow_handle(workflow_id, result_type=OnboardingStatus)
    await when(handle, lambda s: s.delivery_due_at is not None)
    return handle


async def when(handle: WorkflowHandle, predicate: Any) -> OnboardingStatus:
    latest = None
    for _ in range(400):
        latest = await handle.query("status", result_type=OnboardingStatus)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id}: condition never held; last {latest}")


async def test_the_service_lead_gets_the_group_task_and_a_3_day_delivery_deadline(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await onboarded(harness, env, "K1")
    status = await when(handle, lambda s: s.service_lead_id is not None)
    assert status.service_lead_id == "sup-after_sales"
    [task] = harness.rows(schema.Task, entity_id="K1", kind="service_group")
    assert task.assignee_id == "sup-after_sales" and task.due_at == status.delivery_due_at
    [row] = harness.rows(schema.Onboarding, contract_id="K1")
    assert row.delivery_due_at - row.signed_at == 3 * DAY
    await eventually(lambda: harness.touches(step="service_group_task",
                                             recipient_id="sup-after_sales", status="sent"))


async def test_reminder_a_day_before_and_escalation_at_3_days(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await onboarded(harness, env, "K2")
    await env.sleep(2 * DAY - HOUR)
    assert not harness.touches(step="delivery_reminder")
    await env.sleep(HOUR + MINUTE)
    await eventually(lambda: harness.touches(step="delivery_reminder",
                                             recipient_id="sup-after_sales"))
    await env.sleep(DAY - 2 * MINUTE)
    assert not harness.rows(schema.Escalation, entity_id="K2")
    await env.sleep(2 * MINUTE)
    status = await when(handle, lambda s: s.stage is OnboardingStage.escalated)
    assert status.escalated_to == "mgr-support"
    await eventually(lambda: harness.touches(step="delivery_escalated",
                                             recipient_id="mgr-support"))
    # Delivered late: recorded as such, and the check-in follows a week on.
    await handle.signal("delivered", Delivered(by="sup-after_sales"))
    status = await when(handle, lambda s: s.stage is OnboardingStage.delivered)
    assert status.on_time is False
    await env.sleep(7 * DAY + MINUTE)
    result = await handle.result()
    assert result.stage is OnboardingStage.completed
    await eventually(lambda: harness.touches(step="check_in", recipient_id="cust-1"))
    [row] = harness.rows(schema.Onboarding, contract_id="K2")
    assert row.breached and row.checked_in_at is not None and row.status == "completed"


async def test_a_won_deal_is_welcomed_into_its_group_and_delivery_is_acceptance(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    opportunities = Opportunities(harness.client, task_queue=harness.task_queue)
    await opportunities.start(OpportunityInput(opportunity_id="K3", customer_id="cust-1",
                                               owner_id="rep-a", amount=Decimal("50000")))
    harness.journeys.started += ["opportunity-K3", "contract-K3", "onboarding-K3"]
    await eventually(lambda: harness.rows(schema.Opportunity, id="K3"))
    assert (await opportunities.win("K3", Win(contract=WinContract()))).accepted
    handle = harness.client.get_workflow_handle("onboarding-K3", result_type=OnboardingStatus)
    await eventually(lambda: harness.rows(schema.Onboarding, contract_id="K3"))
    await handle.signal("group_ready", GroupReady(link="https://work.weixin.qq.com/g/K3"))
    [welcome] = await eventually(lambda: harness.touches(step="welcome", status="sent",
                                                         recipient_id="cust-1"))
    [message] = [m for m in harness.outbox_messages() if m["key"] == welcome.key]
    assert "https://work.weixin.qq.com/g/K3" in message["body"]
    answer = await handle.execute_update("delivered_now", Delivered(by="sup-after_sales"),
                                         result_type=Decision)
    assert answer.accepted
    status = await when(handle, lambda s: s.stage is OnboardingStage.delivered)
    assert status.on_time is True
    [contract] = await eventually(lambda: [c for c in harness.rows(schema.Contract, id="K3")
                                           if c.accepted_at is not None])
    assert contract.accepted_at == status.delivered_at


async def test_signals_that_break_a_rule_are_refused(harness: Harness,
                                                     env: WorkflowEnvironment) -> None:
    handle = await onboarded(harness, env, "K4")
    await handle.signal("group_ready", GroupReady(link=" "))
    assert "by is required" in await refused(handle.execute_update(
        "delivered_now", Delivered(by=""), result_type=Decision))
    await handle.signal("delivered", Delivered(by="sup-after_sales"))
    await handle.signal("delivered", Delivered(by="sup-after_sales"))
    status = await when(handle, lambda s: len(s.rejections) == 2)
    assert [r.reason for r in status.rejections] == [
        "link is required: how the customer joins",
        "the first delivery is already recorded (delivered)"]
