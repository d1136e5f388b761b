"""Recordings of a campaign run: the seed's e-mail, a wait for a purchase, the
SMS to a customer who did not buy, a branch and a wait until a local time
(campaign-R1), and every signal in every shape, the run converted by a
`converted` signal (campaign-R2); a run with its own coupon code, a wait for
a reply ended by `replied` (one from the future refused first, then every
shape) and a branch on it (campaign-R3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.campaigns import CampaignInput, CampaignStage, CampaignStatus, CouponTerms
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


REPLY_STEPS = [{"message": {"channel": "email", "template": "repurchase_coupon"}},
               {"wait_for": {"event": "reply", "days": 2}},
               {"branch": {"on": "reply", "then": [{"wait": {"days": 1}}],
                           "else": [{"message": {"channel": "sms",
                                                 "template": "repurchase_coupon_reminder"}}]}},
               {"message": {"channel": "sms", "template": "repurchase_coupon_reminder"}}]


async def record_campaign_reply_and_coupon(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-campaign-reply.db")
    _campaign(store, "r3")
    task_queue = "record-campaign-r3"
    handle = env.client.get_workflow_handle("campaign-R3", result_type=CampaignStatus)
    status = lambda: handle.query("status", result_type=CampaignStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await env.client.start_workflow("CampaignJourney", CampaignInput(
            campaign="r3", customer_id="cust-1", arm="a", steps=REPLY_STEPS,
            coupon=CouponTerms(percent=15, valid_days=14),
            entered_at=await env.get_current_time()), id="campaign-R3", task_queue=task_queue)
        waiting = await _when(status, lambda s: s.waiting_until is not None and s.step == 2,
                              "waiting for a reply")
        assert waiting.coupon_code, waiting
        future = (await env.get_current_time()) + timedelta(days=1)
        await handle.signal("replied", {"channel": "email", "at": future.isoformat()})
        # Among them a `replied` with no argument: a reply told without
        # details, which ends the wait at once.
        await signal_all(handle, _malformed("replied", not_an_object="yes"))
        await _rejected(handle, CampaignStatus, 6)
        await handle.signal("replied", {"channel": "sms"})  # a second reply, kept too
        await _when(status, lambda s: s.replied_at is not None and s.step == 4,
                    "the branch on the reply")
        await env.sleep(timedelta(days=1, minutes=5))
        result = await handle.result()
        assert result.stage is CampaignStage.completed and len(result.touches) == 2, result
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"campaign-R1": record_campaign_full, "campaign-R2": record_campaign_every_signal,
              "campaign-R3": record_campaign_reply_and_coupon}
