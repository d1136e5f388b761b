"""The engine's Prometheus metrics: touch outcomes, escalations, SLA lateness."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY, start_http_server

from activities.delivery import Message, TemplateRenderer
from activities.messaging import MessagingActivities
from activities.metrics import TOUCHES  # noqa: F401 - registers the metrics
from activities.store import Store
from domain import schema
from domain.messaging import MessageClass, Recipient, SendRequest
from tests.harness import NO_QUIET_HOURS, seed_staff
from tests.sinks import free_port

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Outbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_touch_outcomes_and_escalations_are_counted(sqlite_store: Store) -> None:
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as session:
        session.add(schema.Lead(id="M1", name="n", region="east", product_line="erp",
                                source="ads", stage="assigned", owner_id="rep-a",
                                received_at=datetime.now(UTC)))
    send = MessagingActivities(store=sqlite_store, renderer=TemplateRenderer(TEMPLATES),
                               deliverer=Outbox(), policy=NO_QUIET_HOURS).send_message
    labels = {"journey": "lead", "message_class": "staff", "channel": "chat", "outcome": "sent"}
    before = sample("crm_touches_total", **labels)
    send(SendRequest(key="lead-M1:pooled:1", journey="lead", step="pooled", template="pooled",
                     message_class=MessageClass.staff, recipient=Recipient(kind="staff",
                                                                           id="mgr-east"),
                     entity_kind="lead", entity_id="M1", facts={"reason": "test"},
                     now=datetime.now(UTC)))
    assert sample("crm_touches_total", **labels) == before + 1

    escalations = sample("crm_escalations_total", journey="ticket", level="1")
    late = sample("crm_sla_lateness_seconds_count", journey="ticket")
    with sqlite_store.unit_of_work() as session:
        session.add(schema.Escalation(key="m:1", journey="ticket", entity_id="T1", level=1,
                                      reason="r", at=datetime.now(UTC) - timedelta(seconds=2)))
    assert sample("crm_escalations_total", journey="ticket", level="1") == escalations + 1
    assert sample("crm_sla_lateness_seconds_count", journey="ticket") == late + 1


def test_metrics_are_served_over_http() -> None:
    port = free_port()
    start_http_server(port, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "crm_touches_total" in body and "crm_sla_lateness_seconds" in body
