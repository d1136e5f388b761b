"""Sending a message through the store: delivered once, opt-outs, template
errors, failing channels and crashes after delivery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.delivery import DeliveryFailed, Message, TemplateRenderer
from activities.leads import LeadActivities
from activities.messaging import Deliverer, MessagingActivities
from activities.store import Store
from domain import schema
from domain.messaging import MessageClass, Recipient, SendRequest
from domain.policy import MessagingPolicy, QuietHours
from tests import store_support
from tests.store_support import HOUR, NOW, a_lead, assign, intake, rows, touch

# Fixtures shared with the other modules split from the same subject.
staffed = store_support.staffed
leads = store_support.leads
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class RecordingDeliverer(Deliverer):
    """A fake channel: keeps what it was given, and can refuse the first few.
    With `keyed`, its receiver drops repeats by the touch key."""

    def __init__(self, *, refuse: int = 0, keyed: bool = False) -> None:
        self.delivered: list[Message] = []
        self.refuse = refuse
        self.keyed = keyed

    def drops_repeats(self, channel: str) -> bool:
        return self.keyed

    def deliver(self, message: Message) -> None:
        if self.refuse:
            self.refuse -= 1
            raise DeliveryFailed(f"channel {message.channel}: gateway timed out")
        self.delivered.append(message)


class CrashOnce:
    """An after-delivery hook: the worker dies once between delivery and recording it."""

    def __init__(self) -> None:
        self.crashed = False

    def __call__(self, request: SendRequest) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("worker lost between delivery and recording")


def messaging(store: Store, deliverer: Deliverer, *, templates: Path = TEMPLATES,
              after_delivery: Any = None) -> MessagingActivities:
    return MessagingActivities(
        store=store,
        renderer=TemplateRenderer(templates),
        deliverer=deliverer,
        policy=MessagingPolicy(quiet_hours=QuietHours(enabled=False)),
        after_delivery=after_delivery,
    )


@pytest.fixture
def assigned_lead(leads: LeadActivities) -> str:
    intake(leads, a_lead("L1", 1))
    assign(leads, "L1")
    return "L1"


def to_owner(template: str = "assigned", key: str = "lead-L1:assigned:1") -> SendRequest:
    return SendRequest(key=key, journey="lead", step="assigned", message_class=MessageClass.staff,
                       recipient=Recipient(kind="staff", id="rep-a"), template=template,
                       entity_kind="lead", entity_id="L1", facts={"reason": "intake"}, now=NOW)


def test_a_staff_message_is_delivered_once(staffed: Store, assigned_lead: str) -> None:
    channel = RecordingDeliverer()
    send = messaging(staffed, channel).send_message

    first = send(to_owner())
    again = send(to_owner())

    assert (first.status, first.channel) == ("sent", "chat")
    assert again.status == "sent"
    [message] = channel.delivered
    assert (message.to, message.key) == ("rep-a", "lead-L1:assigned:1")
    assert "L1" in message.body and message.title.startswith("新线索分配")
    recorded = touch(staffed)
    assert (recorded.status, recorded.attempts, recorded.sent_at) == ("sent", 1, NOW)


def test_a_lead_who_opted_out_of_all_email_gets_none(staffed: Store, assigned_lead: str) -> None:
    with staffed.unit_of_work() as session:
        session.add(schema.Consent(subject_kind="lead", subject_id="L1", channel="email",
                                   scope="all", at=NOW - HOUR))
    channel = RecordingDeliverer()
    welcome = SendRequest(key="lead-L1:welcome:1", journey="lead", step="welcome",
                          message_class=MessageClass.reminder,
                          recipient=Recipient(kind="lead", id="L1"), template="welcome",
                          entity_kind="lead", entity_id="L1", now=NOW)

    outcome = messaging(staffed, channel).send_message(welcome)

    assert outcome.status == "suppressed"
    assert outcome.reason == "opted out of all messages on email"
    assert channel.delivered == []
    recorded = touch(staffed, "lead-L1:welcome:1")
    assert recorded.status == "suppressed"
    assert recorded.reason == "opted out of all messages on email"


@pytest.fixture
def broken_templates(tmp_path: Path) -> Path:
    (tmp_path / "lead").mkdir()
    (tmp_path / "lead" / "broken.zh-CN.j2").write_text("{{ recipient.name }}: {{ owner_nam }}")
    return tmp_path


def test_a_template_with_an_undefined_variable_is_a_non_retryable_error(
    staffed: Store, assigned_lead: str, broken_templates: Path
) -> None:
    channel = RecordingDeliverer()
    send = messaging(staffed, channel, templates=broken_templates).send_message

    with pytest.raises(ApplicationError) as failed:
        send(to_owner(template="broken"))

    assert failed.value.non_retryable is True
    assert failed.value.type == "TemplateError"
    assert "lead/broken.zh-CN.j2" in failed.value.message
    assert "'owner_nam' is undefined" in failed.value.message
    with pytest.raises(ApplicationError) as again:
        send(to_owner(template="broken"))
    assert again.value.non_retryable is True
    assert channel.delivered == []


def test_a_touch_whose_template_fails_is_recorded_as_failed(
    staffed: Store, assigned_lead: str, broken_templates: Path
) -> None:
    send = messaging(staffed, RecordingDeliverer(), templates=broken_templates).send_message

    with pytest.raises(ApplicationError):
        send(to_owner(template="broken"))

    recorded = rows(staffed, schema.Touch, key="lead-L1:assigned:1")
    assert [t.status for t in recorded] == ["failed"]
    assert "owner_nam" in (recorded[0].reason or "")


def test_a_channel_that_fails_leaves_the_touch_pending_for_a_retry(
    staffed: Store, assigned_lead: str
) -> None:
    channel = RecordingDeliverer(refuse=1)
    send = messaging(staffed, channel).send_message

    with pytest.raises(ApplicationError) as failed:
        send(to_owner())

    assert failed.value.non_retryable is False
    assert "gateway timed out" in failed.value.message
    recorded = touch(staffed)
    assert (recorded.status, recorded.reason) == ("pending", "channel chat: gateway timed out")

    assert send(to_owner()).status == "sent"
    assert len(channel.delivered) == 1
    recorded = touch(staffed)
    assert (recorded.status, recorded.attempts) == ("sent", 2)


def test_a_crash_after_delivery_on_a_channel_without_keys_is_raised_not_resent(
    staffed: Store, assigned_lead: str
) -> None:
    channel = RecordingDeliverer()
    send = messaging(staffed, channel, after_delivery=CrashOnce()).send_message

    with pytest.raises(RuntimeError):
        send(to_owner())
    assert touch(staffed).status == "sending"

    outcome = send(to_owner())
    again = send(to_owner())

    assert outcome.status == again.status == "unconfirmed"
    assert len(channel.delivered) == 1
    recorded = touch(staffed)
    assert recorded.status == "unconfirmed" and recorded.sent_at is None
    assert (recorded.reason or "").startswith("unconfirmed")
    [check] = rows(staffed, schema.Task, kind="delivery_check")
    assert (check.status, check.entity_id, check.assignee_id) == ("open", "L1", "mgr-east")


def test_a_crash_after_delivery_on_a_keyed_channel_sends_again_under_the_same_key(
    staffed: Store, assigned_lead: str
) -> None:
    channel = RecordingDeliverer(keyed=True)
    send = messaging(staffed, channel, after_delivery=CrashOnce()).send_message

    with pytest.raises(RuntimeError):
        send(to_owner())

    assert send(to_owner()).status == "sent"
    assert [m.key for m in channel.delivered] == ["lead-L1:assigned:1"] * 2
    assert channel.delivered[0] == channel.delivered[1]
    recorded = touch(staffed)
    assert (recorded.status, recorded.attempts, recorded.reason) == ("sent", 2, None)
