"""`crm overview` on a dev server: journeys counted per step (CrmStep), past
their SLA deadline and in incident (CrmIncident), with Temporal UI links that
carry the matching query, rendered as a page a browser shows."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.store import Store
from domain.leads import LeadInput
from domain.messaging import SendRequest
from domain.payments import ContractInput
from starter.cli import app
from starter.client import data_converter
from starter.overview import Overview, overview, render_html
from tests.conftest import register_search_attributes
from tests.harness import make_settings, running_worker, seed_staff

pytestmark = pytest.mark.timeout(180)


@pytest_asyncio.fixture
async def namespace(dev_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """A namespace of its own, so that the counts are this test's journeys only."""
    name = f"overview-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=name, workflow_execution_retention_period=Duration(seconds=86400)))
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  namespace=name, data_converter=data_converter())
    for _ in range(100):  # a new namespace takes a moment to reach every service
        try:
            await register_search_attributes(client)
            break
        except Exception:  # noqa: BLE001
            await _sleep(0.1)
    yield client


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def fail_welcome_of(lead_id: str) -> Any:
    def before_delivery(request: SendRequest) -> None:
        if request.step == "welcome" and request.entity_id == lead_id:
            raise ApplicationError("the channel refused the address", non_retryable=True)
    return before_delivery


def lead(lead_id: str, region: str) -> LeadInput:
    return LeadInput(lead_id=lead_id, name="测试", email=f"{lead_id.lower()}@example.com",
                     region=region, product_line="erp", source="web_form")


def steps(view: Overview, journey: str) -> dict[str, int]:
    counts = next(j for j in view.journeys if j.journey == journey)
    return {s.step: s.running for s in counts.steps if s.running}


async def until_counted(client: Client, check: Any) -> Overview:
    """Visibility lags the journeys by a moment: ask until the counts settle."""
    view = await overview(client, ui="http://ui.example")
    for _ in range(150):
        if check(view):
            return view
        await _sleep(0.2)
        view = await overview(client, ui="http://ui.example")
    raise AssertionError(json.dumps(view.as_json(), default=str)[:3000])


async def test_the_overview_counts_steps_overdue_and_incidents(
    namespace: Client, sqlite_store: Store, tmp_path: Path
) -> None:
    seed_staff(sqlite_store)
    settings = make_settings(tmp_path)
    async with running_worker(namespace, sqlite_store, settings,
                              before_delivery=fail_welcome_of("OV-3")) as h:
        for lead_id, region in (("OV-1", "east"), ("OV-2", "north"), ("OV-3", "east")):
            await h.journeys.start_lead(lead(lead_id, region))
        # Signed six weeks ago: the 30 % milestone fell due five weeks ago.
        await h.journeys.sign_contract(ContractInput(
            contract_id="OV-C1", customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("10000"), currency="CNY",
            signed_at=datetime.now(UTC) - timedelta(days=42)))

        view = await until_counted(namespace, lambda v: (
            steps(v, "lead") == {"first_touch": 2, "pooled": 1}
            and next(j for j in v.journeys if j.journey == "lead").incidents == 1
            and next(j for j in v.journeys if j.journey == "payment").overdue == 1))

        lead_counts = next(j for j in view.journeys if j.journey == "lead")
        assert lead_counts.running == 3 and lead_counts.overdue == 0
        first_touch = next(s for s in lead_counts.steps if s.step == "first_touch")
        query = parse_qs(urlparse(first_touch.url).query)["query"][0]
        assert query == ("CrmJourney = 'lead' AND ExecutionStatus = 'Running' "
                         "AND CrmStep = 'first_touch'")
        assert urlparse(first_touch.url).path == f"/namespaces/{namespace.namespace}/workflows"
        assert "CrmIncident IS NOT NULL" in parse_qs(
            urlparse(lead_counts.incidents_url).query)["query"][0]
        # Bounded: one call per step of every journey, and three per journey.
        assert view.calls == sum(len(j.steps) + 3 for j in view.journeys)

        described = await h.journeys.client.get_workflow_handle("lead-OV-3").describe()
        attributes = described.typed_search_attributes
        values = {pair.key.name: pair.value for pair in attributes}
        assert values["CrmIncident"] == "touch_failed:welcome"
        assert values["CrmStep"] == "first_touch"
        assert str(values["CrmVersion"]).startswith("lead@")

        # The command prints the same counts.
        env = {"TEMPORAL_ADDRESS": namespace.service_client.config.target_host,
               "TEMPORAL_NAMESPACE": namespace.namespace,
               "CRM_DATABASE_URL": settings.database_url}
        # (in a thread: the command runs its own event loop)
        result = await asyncio.to_thread(CliRunner().invoke, app, ["overview", "--json"], env=env)
        assert result.exit_code == 0, (result.output, result.exception)
        printed = json.loads(result.output)
        lead_printed = next(j for j in printed["journeys"] if j["journey"] == "lead")
        assert {s["step"]: s["running"] for s in lead_printed["steps"] if s["running"]} == \
            {"first_touch": 2, "pooled": 1}

    page = tmp_path / "overview.html"
    page.write_text(render_html(view), encoding="utf-8")
    shot = tmp_path / "overview.png"
    dom = await asyncio.to_thread(in_chromium, page, shot)
    assert 'data-step="first_touch"><b>2</b>first_touch' in dom
    assert 'data-step="pooled"><b>1</b>pooled' in dom
    assert "1 past their SLA deadline" in dom and "1 in incident" in dom
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one


def running(view: Overview, journey: str) -> int:
    return int(next(j for j in view.journeys if j.journey == journey).running)


def in_chromium(page: Path, shot: Path) -> str:
    """The page's DOM as headless Chromium rendered it, and its screenshot."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed (Debian package `chromium`)")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=60, check=True)
    return dom


async def test_a_batch_job_signals_then_terminates_the_journeys_a_query_matches(
    namespace: Client, sqlite_store: Store, tmp_path: Path
) -> None:
    from starter.batch import describe, signal_all, terminate_all

    seed_staff(sqlite_store)
    async with running_worker(namespace, sqlite_store, make_settings(tmp_path)) as h:
        for lead_id in ("BT-1", "BT-2", "BT-3"):
            await h.journeys.start_lead(lead(lead_id, "north"))  # pooled: nobody covers north
        await until_counted(namespace, lambda v: steps(v, "lead") == {"pooled": 3})

        query = "CrmJourney = 'lead' AND WorkflowId IN ('lead-BT-1', 'lead-BT-2')"
        job = await signal_all(namespace, query, "discard", {"reason": "duplicate campaign"},
                               "cleaning up the spring campaign")
        # A discarded lead ends once its welcome is handed over (it may still
        # be on its way when the discard is acted on).
        await until_counted(namespace, lambda v: steps(v, "lead") == {"pooled": 1}
                            and running(v, "lead") == 1)
        for lead_id in ("BT-1", "BT-2"):
            assert (await h.journeys.lead_status(lead_id)).stage.value == "discarded"
        for _ in range(100):
            done = await describe(namespace, job)
            if done.state == "completed":
                break
            await _sleep(0.1)
        assert (done.operation, done.state, done.total, done.done, done.failed) == \
            ("signal_workflow", "completed", 2, 2, 0)

        job = await terminate_all(namespace, "CrmJourney = 'lead'", "erased on request")
        await until_counted(namespace, lambda v: next(
            j for j in v.journeys if j.journey == "lead").running == 0)
        described = await namespace.get_workflow_handle("lead-BT-3").describe()
        assert described.status is not None and described.status.name == "TERMINATED"
