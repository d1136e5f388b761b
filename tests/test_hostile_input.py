"""Hostile starts and signals against every journey on the real dev server:
wrong types, missing, extra and repeated arguments, nulls, huge and NUL-laden
strings, unknown enums, binary and non-JSON payloads, unknown signal names —
through the SDK with raw payloads, the `temporal` CLI and the HTTP API. No
journey may fail a workflow task (a task-failure loop) or stop answering its
`status` query; a bad start fails its journey at once with the reason."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain.courses import EnrollmentInput
from domain.leads import LeadInput
from domain.lifecycle import LifecycleInput
from domain.payments import ContractInput
from domain.tickets import TicketInput
from starter.client import data_converter
from tests.conftest import _binary
from tests.harness import Harness, make_settings, running_worker, seed_staff
from workflows.kit import SEARCH_ATTRIBUTES

pytestmark = pytest.mark.devserver

NOW = datetime.now(UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Each journey: its type, a valid start input, and the signals it declares.
def _lead(key: str) -> Any:
    return LeadInput(lead_id=key, name="Li Lei", email=f"{key}@example.com", region="east",
                     product_line="erp", source="web_form")


def _contract(key: str) -> Any:
    return ContractInput(contract_id=key, customer_id="cust-1", owner_id="rep-a",
                         amount=Decimal("10000"), currency="CNY", signed_at=NOW)


def _ticket(key: str) -> Any:
    return TicketInput(ticket_id=key, customer_id="cust-1", type="technical",
                       priority="normal", subject="printer jams", channel="email")


def _enrollment(key: str) -> Any:
    return EnrollmentInput(enrollment_id=key, customer_id="cust-1", course_id="py-101",
                           advisor_id="adv-1", ends_at=NOW + timedelta(days=30))


def _customer(key: str) -> Any:
    return LifecycleInput(customer_id=key)


JOURNEYS: dict[str, tuple[str, str, Callable[[str], Any], list[str]]] = {
    "lead": ("LeadJourney", "lead", _lead,
             ["claim", "log_contact", "convert", "discard", "merge"]),
    "payment": ("PaymentJourney", "contract", _contract,
                ["accept", "record_payment", "cancel"]),
    "ticket": ("TicketJourney", "ticket", _ticket,
               ["respond", "wait_on_customer", "customer_replied", "resolve", "reopen",
                "rate"]),
    "course": ("CourseJourney", "enrollment", _enrollment, ["end_course", "log_callback"]),
    "lifecycle": ("CustomerLifecycle", "customer", _customer,
                  ["purchase", "opt_out", "tier_changed"]),
}
FIELDS = ["owner_id", "channel", "note", "at", "reason", "amount", "currency", "paid_at",
          "reference", "agent_id", "resolution", "score", "advisor_id", "outcome", "order_id",
          "category", "tier", "staff_id", "lead_id", "accepted_at", "ended_at"]


# -- hostile payloads ------------------------------------------------------------------

def _json(value: Any) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"},
                   data=json.dumps(value, ensure_ascii=False).encode())


HOSTILE_TEXT = st.one_of(
    st.text(max_size=20),
    st.just("\x00"),
    st.just("a\x00b"),
    st.just("长" * 5000),
    st.just("x" * 300),
    st.sampled_from(["fax", "ZZZZ", "platinum", "-1", "1e30", "NaN", "", "   "]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
                    st.floats(allow_nan=False, allow_infinity=False), HOSTILE_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
FIELD_OBJECTS = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5)
PAYLOADS = st.one_of(
    FIELD_OBJECTS.map(_json),
    JSON_VALUES.map(_json),
    st.binary(max_size=40).map(
        lambda b: Payload(metadata={"encoding": b"binary/plain"}, data=b)),
    st.binary(min_size=1, max_size=40).map(
        lambda b: Payload(metadata={"encoding": b"json/plain"}, data=b"\xff{" + b)),
    st.just(Payload(metadata={"encoding": b"binary/null"})),
    st.just(Payload(metadata={"encoding": b"application/x-unknown"}, data=b"??")),
)
ARGUMENTS = st.lists(PAYLOADS, max_size=3)


# -- the journeys' world ----------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def http_env() -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    """A dev server of this module's own, with its HTTP API on a free port."""
    http_port = _free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=data_converter(),
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
        dev_server_extra_args=["--http-port", str(http_port)],
    )
    yield env, http_port
    await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def world(http_env: tuple[WorkflowEnvironment, int],
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    env, _ = http_env
    workdir = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{workdir / 'crm.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as harness:
        yield harness
    store.dispose()


async def _settled(handle: WorkflowHandle[Any, Any], timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Waits until the journey has no workflow task or activity outstanding."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await handle.describe()
        raw = described.raw_description
        if described.status is not WorkflowExecutionStatus.RUNNING or (
                not raw.HasField("pending_workflow_task") and not raw.pending_activities):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{handle.id} did not settle: {raw.pending_workflow_task}")
        await asyncio.sleep(0.05)


async def _assert_healthy(client: Client, handle: WorkflowHandle[Any, Any]) -> None:
    """No workflow task ever failed, and a running journey answers `status`."""
    await _settled(handle)
    failed = [event async for event in handle.fetch_history_events()
              if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert not failed, (handle.id, failed[0].workflow_task_failed_event_attributes.failure.message)
    described = await handle.describe()
    if described.status is WorkflowExecutionStatus.RUNNING:
        await handle.query("status")


class Pool:
    """One running journey per type, renewed when a hostile signal ends one."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.handles: dict[str, WorkflowHandle[Any, Any]] = {}
        self.used: list[WorkflowHandle[Any, Any]] = []

    async def running(self, kind: str) -> WorkflowHandle[Any, Any]:
        handle = self.handles.get(kind)
        if handle is not None and (await handle.describe()).status is \
                WorkflowExecutionStatus.RUNNING:
            return handle
        workflow_type, prefix, make, _ = JOURNEYS[kind]
        key = f"H{uuid.uuid4().hex[:8]}"
        handle = await self.harness.client.start_workflow(
            workflow_type, make(key), id=f"{prefix}-{key}", task_queue=self.harness.task_queue)
        self.handles[kind] = handle
        self.used.append(handle)
        return handle


HYPOTHESIS = settings(max_examples=40, deadline=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))


async def test_hostile_signals_are_refused_and_never_fail_a_task(world: Harness) -> None:
    pool = Pool(world)
    sent: list[tuple[str, str, int]] = []

    @HYPOTHESIS
    @given(kind=st.sampled_from(sorted(JOURNEYS)), data=st.data(), args=ARGUMENTS)
    def send(kind: str, data: st.DataObject, args: list[Payload]) -> None:
        name = data.draw(st.sampled_from([*JOURNEYS[kind][3], "staff_deactivated",
                                          "no_such_signal"]))

        async def go() -> None:
            handle = await pool.running(kind)
            await handle.signal(name, args=[RawValue(p) for p in args])
            sent.append((handle.id, name, len(args)))
            await _assert_healthy(world.client, handle)

        asyncio.get_event_loop().run_until_complete(go())

    # hypothesis drives a synchronous test: run it on a loop of its own thread
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _in_new_loop, send)
    assert len(sent) >= 40
    for handle in pool.used:
        await _assert_healthy(world.client, handle)
    # every malformed one was recorded as a rejection with its reason
    rejected = 0
    for handle in pool.used:
        if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
            status = await handle.query("status")
            rejected += len(status["rejections"])
    assert rejected > 0


def _in_new_loop(test: Callable[[], None]) -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        test()
    finally:
        asyncio.get_event_loop().close()


async def test_hostile_starts_fail_at_once_with_the_reason(world: Harness) -> None:
    outcomes: list[str] = []

    @HYPOTHESIS
    @given(kind=st.sampled_from(sorted(JOURNEYS)), args=ARGUMENTS)
    def start(kind: str, args: list[Payload]) -> None:
        async def go() -> None:
            workflow_type, prefix, _, _ = JOURNEYS[kind]
            handle = await world.client.start_workflow(
                workflow_type, args=[RawValue(p) for p in args],
                id=f"{prefix}-S{uuid.uuid4().hex[:8]}", task_queue=world.task_queue)
            await _assert_healthy(world.client, handle)
            described = await handle.describe()
            outcomes.append(described.status.name)
            if described.status is WorkflowExecutionStatus.FAILED:
                [closed] = [e async for e in handle.fetch_history_events()
                            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED]
                message = closed.workflow_execution_failed_event_attributes.failure.message
                assert message, "a failed start says why"
            elif described.status is WorkflowExecutionStatus.RUNNING:
                await handle.terminate("hostile start that happened to be valid")

        asyncio.get_event_loop().run_until_complete(go())

    await asyncio.get_running_loop().run_in_executor(None, _in_new_loop, start)
    assert outcomes.count("FAILED") >= 30, outcomes


def _temporal(env: WorkflowEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("temporal"), *args, "--address", env.client.service_client.config.target_host,
         "--namespace", env.client.namespace],
        capture_output=True, text=True, timeout=60, check=False)


async def test_the_cli_and_the_http_api_cannot_break_a_journey(
    world: Harness, http_env: tuple[WorkflowEnvironment, int]
) -> None:
    env, http_port = http_env
    pool = Pool(world)
    lead = await pool.running("lead")
    ticket = await pool.running("ticket")

    # the CLI: two inputs, none, a non-object, an unknown signal
    for args in (["--name", "discard", "--input", '{"reason":"a"}', "--input", '{"reason":"b"}'],
                 ["--name", "discard"],
                 ["--name", "log_contact", "--input", "[1,2,3]"],
                 ["--name", "no_such_signal", "--input", "{}"]):
        done = _temporal(env, "workflow", "signal", "--workflow-id", lead.id, *args)
        assert done.returncode == 0, done.stderr
    bad_id = f"ticket-CLI{uuid.uuid4().hex[:6]}"
    bad_start = _temporal(env, "workflow", "start", "--type", "TicketJourney", "--task-queue",
                          world.task_queue, "--workflow-id", bad_id)
    assert bad_start.returncode == 0, bad_start.stderr

    # the HTTP API: a signal with two inputs and one with a string for an object
    def post(path: str, body: dict[str, Any]) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/api/v1/namespaces/{env.client.namespace}{path}",
            data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return int(response.status)

    assert post(f"/workflows/{ticket.id}/signal/respond",
                {"input": [{"agent_id": "tech-2"}, {"agent_id": "tech-3"}]}) == 200
    assert post(f"/workflows/{ticket.id}/signal/rate", {"input": ["five"]}) == 200

    for handle in (lead, ticket):
        await _assert_healthy(world.client, handle)
    lead_status = await lead.query("status")
    reasons = [r["reason"] for r in lead_status["rejections"]]
    assert any("got 2" in r for r in reasons), reasons
    assert any("unknown signal 'no_such_signal'" in r for r in reasons), reasons
    assert lead_status["stage"] not in ("discarded",), "a signal with two inputs changes nothing"
    ticket_reasons = [r["reason"] for r in (await ticket.query("status"))["rejections"]]
    assert any("got 2" in r for r in ticket_reasons), ticket_reasons
    assert any("expected a JSON object" in r for r in ticket_reasons), ticket_reasons

    # a start with no input fails its journey at once, saying so
    bad = world.client.get_workflow_handle(bad_id)
    await _assert_healthy(world.client, bad)
    assert (await bad.describe()).status is WorkflowExecutionStatus.FAILED
    [closed] = [e async for e in bad.fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED]
    assert "expected one input" in closed.workflow_execution_failed_event_attributes.failure.message
