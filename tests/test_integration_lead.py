"""A lead journey on the real Temporal dev server, delivering for real through
apprise to a local SMTP server and a local webhook receiver."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.delivery import touch_message_id
from activities.store import Store
from domain import schema
from domain.leads import LeadInput, LeadStage, LogContact
from domain.messaging import SendRequest
from domain.policy import LeadPolicy
from tests.harness import eventually, make_settings, running_worker, seed_staff
from tests.sinks import SmtpSink, WebhookSink

pytestmark = pytest.mark.devserver


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpSink, WebhookSink]]:
    smtp, webhook = SmtpSink(), WebhookSink()
    smtp.start()
    webhook.start()
    yield smtp, webhook
    smtp.stop()
    webhook.stop()


def sink_settings(tmp_path: Path, smtp: SmtpSink, webhook: WebhookSink):  # noqa: ANN201
    smtp_port = smtp.port
    hook_port = webhook.server.server_address[1]
    return make_settings(
        tmp_path,
        email_url=f"mailto://127.0.0.1:{smtp_port}?from=crm@example.com&to={{to}}&mode=insecure",
        chat_url=f"json://127.0.0.1:{hook_port}/chat/{{to}}",
    )


async def visible(env: WorkflowEnvironment, query: str, workflow_id: str) -> bool:
    async for execution in env.client.list_workflows(query):
        if execution.id == workflow_id:
            return True
    return False


async def test_a_message_whose_delivery_was_not_confirmed_comes_again_under_its_key(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    sinks: tuple[SmtpSink, WebhookSink],
) -> None:
    smtp, webhook = sinks
    seed_staff(sqlite_store)
    crashed: set[str] = set()

    def crash_once_after_delivery(request: SendRequest) -> None:
        # The worker dies after the channel accepted the message and before
        # the touch was recorded as sent: the retry sends it again under the
        # same key (and, for e-mail, the same Message-ID), so the receiver can
        # drop the repeat, and the touch is recorded as sent.
        if request.key not in crashed:
            crashed.add(request.key)
            raise RuntimeError("worker lost after delivery")

    run_id = tmp_path.name[-6:]
    lead_id = f"IT-{run_id}"
    policy = LeadPolicy(first_touch=timedelta(seconds=8), reminder_before=timedelta(seconds=4))
    async with running_worker(dev_env.client, sqlite_store, sink_settings(tmp_path, smtp, webhook),
                              after_delivery=crash_once_after_delivery) as h:
        handle = await h.journeys.start_lead(LeadInput(
            lead_id=lead_id, name="Li Na", email=f"li.na.{run_id}@example.com",
            phone="+8613912345678", region="east", product_line="erp", source="referral",
            need="wants a quote", policy=policy,
        ))
        # welcome (email), assignment notice (chat), reminder at 4 s, escalation at 8 s
        escalated = "CrmJourney='lead' AND CrmStage='escalated' AND CrmOwnerId='rep-b'"
        await eventually(lambda: h.rows(schema.Escalation, entity_id=lead_id), timeout=40,
                         what="escalation")
        for _ in range(100):
            if await visible(dev_env, escalated, handle.id):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"journey not listed by {escalated!r}")

        answer = await h.journeys.log_contact(lead_id, LogContact(owner_id="rep-b",
                                                                  channel="phone"))
        assert answer.accepted
        status = await h.journeys.lead_status(lead_id)
        assert status.stage is LeadStage.following_up
        description = await handle.describe()
        details = await handle.query("__temporal_workflow_metadata")
        assert "follow-up by rep-b" in str(details)
        assert description.search_attributes is not None

        expected = {"welcome", "assigned", "first_touch_reminder", "escalated"}

        def settled() -> list[schema.Touch]:
            touches = h.touches(workflow_id=handle.id)
            steps = {t.step for t in touches}
            done = all(t.status == "sent" for t in touches)
            return touches if expected <= steps and done else []

        touches = await eventually(settled, timeout=60, what="every touch settled")
        await h.journeys.discard_lead(lead_id, "test over")
        await handle.result()

    keys = [t.key for t in touches]
    assert all(t.reason is None and t.sent_at for t in touches)
    mail_keys = Counter(m.key for m in smtp.mails if m.key in keys)
    hook_keys = Counter(hk.key for hk in webhook.hooks if hk.key in keys)
    assert all(count == 2 for count in mail_keys.values()), mail_keys
    assert all(count == 2 for count in hook_keys.values()), hook_keys
    assert set(mail_keys) | set(hook_keys) == set(keys)
    for key in mail_keys:
        assert {m.message_id for m in smtp.mails if m.key == key} == {touch_message_id(key)}
    welcome = [m for m in smtp.mails if m.key == f"{handle.id}:welcome:1"]
    assert welcome[0].to == [f"li.na.{run_id}@example.com"] and "erp" in welcome[0].body
    assert welcome[0].body == welcome[1].body
    chat_paths = Counter(hk.path for hk in webhook.hooks if hk.key in keys)
    assert chat_paths["/chat/rep-a"] == 2 * 2  # assigned + reminder
    assert chat_paths["/chat/mgr-east"] == 1 * 2  # escalation
    assert chat_paths["/chat/rep-b"] == 1 * 2  # reassigned to rep-b
