"""On the real dev server, with the payload codec on: a lead's name, phone and
e-mail never stand in Temporal's history (as `temporal workflow show -o json`
and the SDK's `fetch_history` give it), the codec server decodes them back
for the `temporal` CLI, the encrypted history replays with the key, and the
search attributes the journey upserted carry none of them."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.store import Store
from domain.leads import LeadInput, LeadStage, LogContact
from starter.client import Journeys, data_converter
from starter.codec import EncryptionCodec, KeyRing, new_key
from starter.codec_server import CodecServer
from starter.devstack import temporal_binary
from tests.harness import make_settings, running_worker, seed_staff
from worker import WORKFLOWS

pytestmark = pytest.mark.devserver

NAME, EMAIL = "王芳菲", "wang.fangfei@example.com"
# The phone in every form a copy could take.
PHONES = ("13800138123", "+8613800138123", "138 0013 8123", "138-0013-8123")
PERSONAL = (NAME, EMAIL, *PHONES)
TOKEN = "codec-test-token"


def leaks(data: bytes | str) -> list[str]:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return [value for value in PERSONAL if value in text]


def payload_bytes(shown: Any) -> list[bytes]:
    """Every payload's data in `temporal workflow show -o json` output, decoded."""
    found: list[bytes] = []
    if isinstance(shown, dict):
        if isinstance(shown.get("data"), str) and "metadata" in shown:
            found.append(base64.b64decode(shown["data"]))
        for value in shown.values():
            found += payload_bytes(value)
    elif isinstance(shown, list):
        for value in shown:
            found += payload_bytes(value)
    return found


def temporal_show(env: WorkflowEnvironment, workflow_id: str, *extra: str) -> str:
    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "--workflow-id", workflow_id,
         "--address", env.client.service_client.config.target_host,
         "--namespace", env.client.namespace, "--output", "json", *extra],
        capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


async def assigned(journeys: Journeys, lead_id: str) -> str:
    """The owner, once the journey itself has taken in the assignment."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        status = await journeys.lead_status(lead_id)
        if status.owner_id:
            return status.owner_id
        assert asyncio.get_running_loop().time() < deadline, f"never assigned: {status}"
        await asyncio.sleep(0.1)


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(KeyRing.parse({"test-1": new_key()}, source="test"))


async def test_a_lead_s_contact_details_never_stand_in_plaintext_in_history(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, codec: EncryptionCodec,
) -> None:
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  namespace=dev_env.client.namespace,
                                  data_converter=data_converter(codec))
    seed_staff(sqlite_store)
    lead_id = f"PRIV-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, sqlite_store, make_settings(tmp_path)) as h:
        handle = await h.journeys.start_lead(LeadInput(
            lead_id=lead_id, name=NAME, phone=PHONES[2], email=EMAIL, company="芳菲贸易",
            region="east", product_line="erp", source="web_form"))
        owner = await assigned(h.journeys, lead_id)
        answer = await h.journeys.log_contact(lead_id,
                                              LogContact(owner_id=owner, channel="phone"))
        assert answer.accepted
        status = await h.journeys.lead_status(lead_id)
        assert status.stage is LeadStage.following_up

        history = await handle.fetch_history()
        shown = await asyncio.to_thread(temporal_show, dev_env, handle.id)
        with CodecServer(codec, token=TOKEN, origins=[]) as server:
            decoded = await asyncio.to_thread(
                temporal_show, dev_env, handle.id, "--codec-endpoint", server.url,
                "--codec-auth", f"Bearer {TOKEN}")
        await h.journeys.discard_lead(lead_id, "test over")
        await handle.result()

    # The raw history: the SDK's and the CLI's, every payload's bytes included.
    assert leaks(history.to_json()) == []
    events = history.events
    assert leaks(b"".join(event.SerializeToString() for event in events)) == []
    assert leaks(shown) == []
    sealed = payload_bytes(json.loads(shown))
    assert sealed and all(leaks(data) == [] for data in sealed)
    started = events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert started.metadata["encoding"] == b"binary/encrypted"
    # Through the codec server the CLI shows them again.
    opened = b"".join(payload_bytes(json.loads(decoded))).decode()
    assert NAME in opened and EMAIL in opened

    # The search attributes the journey upserted: ids and stages only.
    upserted = [json_format.MessageToJson(e.upsert_workflow_search_attributes_event_attributes)
                for e in events
                if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    assert upserted and all(leaks(attributes) == [] for attributes in upserted)
    for payload in (p for e in events
                    if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
                    for p in e.upsert_workflow_search_attributes_event_attributes
                    .search_attributes.indexed_fields.values()):
        assert leaks(payload.data) == []

    # The encrypted history replays with the key.
    recorded = WorkflowHistory.from_json(handle.id, history.to_json())
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter(codec)) \
        .replay_workflow(recorded)
