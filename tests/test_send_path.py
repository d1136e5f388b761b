"""The send path when an attempt is cut short, against the store and real local
sinks (an SMTP server, a webhook receiver): a touch that may not have gone is
sent again under its key where the receiver can drop a repeat, and what a
message says is what it said when the journey first asked for it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from activities.delivery import AppriseDeliverer, TemplateRenderer, touch_message_id
from activities.leads import LeadActivities
from activities.messaging import MessagingActivities
from activities.store import Store
from domain import schema
from domain.leads import AssignRequest, IntakeRequest, LeadInput, LeadStage, StageChange
from domain.messaging import MessageClass, Recipient, SendRequest
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from tests.harness import seed_staff
from tests.sinks import SmtpSink, WebhookSink

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DUE = NOW + timedelta(hours=24)


class Lost(Exception):
    """The worker died at this point of the attempt."""


class DieOnce:
    """A hook that kills the first attempt that reaches it."""

    def __init__(self) -> None:
        self.died = False

    def __call__(self, request: SendRequest) -> None:
        if not self.died:
            self.died = True
            raise Lost(request.key)


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpSink, WebhookSink]]:
    smtp, hooks = SmtpSink(), WebhookSink()
    smtp.start()
    hooks.start()
    yield smtp, hooks
    smtp.stop()
    hooks.stop()


def urls(smtp: SmtpSink, hooks: WebhookSink, *, chat: str | None = None) -> Any:
    configured = {
        "email": f"mailto://127.0.0.1:{smtp.port}?from=crm@example.com&to={{to}}&mode=insecure",
        "chat": chat or f"json://127.0.0.1:{hooks.server.server_address[1]}/chat/{{to}}",
    }
    return lambda channel: configured[channel]


@pytest.fixture
def lead(store: Store) -> Store:
    seed_staff(store)
    leads = LeadActivities(store=store, policy=LeadPolicy())
    leads.intake_lead(IntakeRequest(
        lead=LeadInput(lead_id="L1", name="张伟", phone="139 0001 0001", email="l1@example.com",
                       region="east", product_line="erp", source="web_form"),
        workflow_id="lead-L1", now=NOW))
    leads.assign_lead(AssignRequest(lead_id="L1", workflow_id="lead-L1", now=NOW,
                                    first_touch=timedelta(hours=24), n=1))
    return store


def send_path(store: Store, deliverer: Any, **hooks: Any) -> MessagingActivities:
    return MessagingActivities(store=store, renderer=TemplateRenderer(TEMPLATES),
                               deliverer=deliverer,
                               policy=MessagingPolicy(quiet_hours=QuietHours(enabled=False)),
                               **hooks)


def assigned(channel: str, key: str = "lead-L1:assigned:1") -> SendRequest:
    return SendRequest(key=key, journey="lead", step="assigned", message_class=MessageClass.staff,
                       recipient=Recipient(kind="staff", id="rep-a"), template="assigned",
                       channel=channel, entity_kind="lead", entity_id="L1",
                       facts={"reason": "intake"}, now=NOW)


def touch(store: Store, key: str = "lead-L1:assigned:1") -> schema.Touch:
    with store.unit_of_work() as session:
        found = session.scalar(select(schema.Touch).where(schema.Touch.key == key))
        assert found is not None
        return found


def test_an_e_mail_lost_before_its_hand_off_arrives_once_with_its_key(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    send = send_path(lead, AppriseDeliverer(urls(smtp, hooks)),
                     before_delivery=DieOnce()).send_message

    with pytest.raises(Lost):
        send(assigned("email"))
    assert touch(lead).status == "sending"
    outcome = send(assigned("email"))

    assert (outcome.status, outcome.channel) == ("sent", "email")
    [mail] = smtp.mails
    assert mail.to == ["rep.a@example.com"]
    assert mail.key == "lead-L1:assigned:1"
    assert mail.message_id == touch_message_id("lead-L1:assigned:1")
    recorded = touch(lead)
    assert (recorded.status, recorded.sent_at, recorded.reason) == ("sent", NOW, None)


def test_an_e_mail_whose_hand_off_was_not_confirmed_comes_again_with_the_same_message_id(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    send = send_path(lead, AppriseDeliverer(urls(smtp, hooks)),
                     after_delivery=DieOnce()).send_message

    with pytest.raises(Lost):
        send(assigned("email"))
    assert send(assigned("email")).status == "sent"
    assert send(assigned("email")).status == "sent"

    # The receiver sees one message: the repeat carries the same ids.
    assert len(smtp.mails) == 2
    assert {(m.message_id, m.key, m.body) for m in smtp.mails} == {
        (touch_message_id("lead-L1:assigned:1"), "lead-L1:assigned:1", smtp.mails[0].body)}
    assert touch(lead).status == "sent"


def test_a_webhook_lost_before_its_hand_off_arrives_once_with_its_key(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    send = send_path(lead, AppriseDeliverer(urls(smtp, hooks)),
                     before_delivery=DieOnce()).send_message

    with pytest.raises(Lost):
        send(assigned("chat"))
    outcome = send(assigned("chat"))

    assert (outcome.status, outcome.channel) == ("sent", "chat")
    [hook] = hooks.hooks
    assert (hook.path, hook.key) == ("/chat/rep-a", "lead-L1:assigned:1")
    assert touch(lead).status == "sent"


def test_a_touch_lost_on_a_channel_without_keys_is_raised_to_staff_not_called_sent(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    assert AppriseDeliverer(urls(smtp, hooks)).drops_repeats("chat")
    # A chat app whose messages carry no header the receiver could key on.
    deliverer = AppriseDeliverer(urls(smtp, hooks, chat="tgram://123456789:abcdefg/{to}"))
    assert deliverer.drops_repeats("email") and not deliverer.drops_repeats("chat")
    send = send_path(lead, deliverer, before_delivery=DieOnce()).send_message

    with pytest.raises(Lost):
        send(assigned("chat"))
    outcome = send(assigned("chat"))

    assert outcome.status == "unconfirmed"
    recorded = touch(lead)
    assert (recorded.status, recorded.sent_at) == ("unconfirmed", None)
    with lead.unit_of_work() as session:
        [task] = session.scalars(select(schema.Task).where(schema.Task.kind == "delivery_check"))
        assert (task.status, task.entity_kind, task.entity_id, task.assignee_id) == (
            "open", "lead", "L1", "mgr-east")


def test_a_retry_after_a_reassignment_says_what_the_first_attempt_read(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    send = send_path(lead, AppriseDeliverer(urls(smtp, hooks)),
                     before_delivery=DieOnce()).send_message
    with pytest.raises(Lost):
        send(assigned("chat"))
    # Meanwhile the lead goes back to the pool: no owner, no first-touch deadline.
    LeadActivities(store=lead, policy=LeadPolicy()).change_lead_stage(StageChange(
        lead_id="L1", workflow_id="lead-L1", stage=LeadStage.pooled, step="returned_to_pool",
        n=1, now=NOW + timedelta(minutes=5)))

    assert send(assigned("chat")).status == "sent"

    [hook] = hooks.hooks
    # 2026-01-06 10:00 in Shanghai, as it was when the notice was decided.
    assert "2026/1/6 10:00" in str(hook.payload), hook.payload


def test_a_value_missing_from_the_record_reads_as_a_dash_not_a_failure(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    LeadActivities(store=lead, policy=LeadPolicy()).change_lead_stage(StageChange(
        lead_id="L1", workflow_id="lead-L1", stage=LeadStage.pooled, step="returned_to_pool",
        n=1, now=NOW))
    send = send_path(lead, AppriseDeliverer(urls(smtp, hooks))).send_message

    assert send(assigned("chat")).status == "sent"

    [hook] = hooks.hooks
    assert "请在 — 前完成首次联系" in str(hook.payload), hook.payload


def test_a_record_that_cannot_be_read_fails_the_touch_for_good(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    from activities import messaging

    def unreadable(session: Any, lead_id: str) -> dict[str, Any]:
        raise KeyError(lead_id)

    original = messaging.ENTITY_LOADERS["lead"]
    messaging.ENTITY_LOADERS["lead"] = unreadable
    try:
        send = send_path(lead, AppriseDeliverer(urls(smtp, hooks))).send_message
        with pytest.raises(ApplicationError) as failed:
            send(assigned("chat"))
    finally:
        messaging.ENTITY_LOADERS["lead"] = original

    assert failed.value.non_retryable is True
    assert touch(lead).status == "failed"
    assert hooks.hooks == []


def test_the_deadline_the_journey_names_wins_over_the_record(
    lead: Store, sinks: tuple[SmtpSink, WebhookSink]
) -> None:
    smtp, hooks = sinks
    send = send_path(lead, AppriseDeliverer(urls(smtp, hooks))).send_message
    request = assigned("chat")
    request.facts["due_at"] = (NOW + timedelta(hours=30)).isoformat()

    assert send(request).status == "sent"

    [hook] = hooks.hooks
    assert "2026/1/6 16:00" in str(hook.payload), hook.payload
