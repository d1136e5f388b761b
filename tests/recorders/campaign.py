"""Recordings of a campaign run: the seed's e-mail, a wait for a purchase, the
SMS to a customer who did not buy, a branch and a wait until a local time
(campaign-R1), and every signal in every shape, the run converted by a
`converted` signal (campaign-R2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.campaigns import CampaignInput, CampaignStage, CampaignStatus
from tests.recorders.common import _malformed, _rejected, _when, _worker, fresh, signal_all

STEPS = [{"message": {"channel": "email", "template": "offer"}},
         {"wait_for": {"event": "purchase", "days": 3}},
         {"message": {"channel": "sms", "template": "offer_reminder"}},
         {"branch": {"on": "purchase", "then": [], "else": [{"wait": {"until": "10:00"}}]}},
         {"message": {"channel": "chat", "template": "offer"}}]


def _campaign(store: Store, name: str) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with store.unit_of_work() as session:
        session.add(schema.Campaign(name=name, definition={"name": name}, status="active",
                                    defined_at=now, updated_at=now))


async def _start(env: WorkflowEnvironment, task_queue: str, workflow_id: str,
                 name: str) -> None:
    await env.client.start_workflow("CampaignJourney", CampaignInput(
        campaign=name, customer_id="cust-1", arm="b", steps=STEPS,
        templates={"offer": "offer_b"}, entered_at=await env.get_current_time()),
        id=workflow_id, task_queue=task_queue)


async def record_campaign_full(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-campaign.db")
    _campaign(store, "r1")
    task_queue = "record-campaign-r1"
    handle = env.client.get_workflow_handle("campaign-R1", result_type=CampaignStatus)
    status = lambda: handle.query("status", result_type=CampaignStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await _start(env, task_queue, "campaign-R1", "r1")
        await _when(status, lambda s: s.waiting_until is not None, "waiting for a purchase")
        await env.sleep(timedelta(days=3, minutes=5))
        await _when(status, lambda s: len(s.touches) == 2, "the SMS")
        await env.sleep(timedelta(days=1, hours=1))
        result = await handle.result()
        assert result.stage is CampaignStage.completed and len(result.touches) == 3
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_campaign_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-campaign-every.db")
    _campaign(store, "r2")
    task_queue = "record-campaign-r2"
    handle = env.client.get_workflow_handle("campaign-R2", result_type=CampaignStatus)
    status = lambda: handle.query("status", result_type=CampaignStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await _start(env, task_queue, "campaign-R2", "r2")
        await _when(status, lambda s: s.waiting_until is not None, "waiting for a purchase")
        await signal_all(handle, _malformed("converted", not_an_object="o1"))
        await _rejected(handle, CampaignStatus, 6)
        await handle.signal("converted", {"order_id": "o-9"})  # the run ends converted
        result = await handle.result()
        assert result.stage is CampaignStage.converted and result.converted_by == "o-9", result
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"campaign-R1": record_campaign_full, "campaign-R2": record_campaign_every_signal}
