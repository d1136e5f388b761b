"""The engine's Prometheus metrics (touch outcomes, escalations, SLA lateness)
and the Temporal runtime's, each on its port."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, start_http_server
from temporalio.client import Client

from activities.delivery import Message, TemplateRenderer
from activities.messaging import MessagingActivities
from activities.metrics import TOUCHES  # noqa: F401 - registers the metrics
from activities.store import Store
from domain import schema
from domain.messaging import MessageClass, Recipient, SendRequest
from tests.harness import NO_QUIET_HOURS, make_settings, seed_staff
from tests.sinks import free_port
from worker import metrics_runtime

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Outbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


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


async def test_the_temporal_runtime_serves_its_own_metrics(dev_env: Any, tmp_path: Path) -> None:
    """The SDK's metrics (requests, task latencies, ...) on their own port, from a
    client on the runtime the worker builds."""
    port = free_port()
    settings = make_settings(tmp_path, metrics_port=0, temporal_metrics_port=port)
    runtime = metrics_runtime(settings)
    assert runtime is not None
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  namespace=dev_env.client.namespace, runtime=runtime)
    await client.count_workflows()
    body = ""
    for _ in range(50):
        body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        if "temporal_request" in body:
            break
        await asyncio.sleep(0.1)
    assert 'operation="CountWorkflowExecutions"' in body


def test_an_escalation_with_nobody_to_tell_is_a_warning_and_a_metric(
    sqlite_store: Store, caplog: Any
) -> None:
    seed_staff(sqlite_store)
    unrouted = sample("crm_escalations_unrouted_total", journey="ticket")
    with caplog.at_level("WARNING", logger="crm.escalations"), \
            sqlite_store.unit_of_work() as session:
        session.add(schema.Escalation(key="m:2", journey="ticket", entity_id="T2", level=1,
                                      reason="r", at=datetime.now(UTC)))
        session.add(schema.Escalation(key="m:3", journey="ticket", entity_id="T3", level=1,
                                      reason="r", to_staff_id="sup-technical",
                                      at=datetime.now(UTC)))
    assert sample("crm_escalations_unrouted_total", journey="ticket") == unrouted + 1
    [warning] = [r for r in caplog.records if r.name == "crm.escalations"]
    assert warning.levelname == "WARNING" and "T2" in warning.getMessage()
    assert "nobody to tell" in warning.getMessage()
