"""Three worker processes on one task queue and one PostgreSQL store (SQLite
when none is named): every journey finishes, no touch is delivered twice, no
lead is assigned twice, no payment is counted twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain import schema
from domain.leads import Convert, LeadInput, LeadStage, LogContact
from domain.payments import Accept, ContractInput, ContractStage, RecordPayment
from domain.tickets import TicketInput, TicketStage
from starter.client import Journeys
from tests.conftest import _fresh_postgres
from tests.harness import eventually, seed_staff
from tests.sinks import WebhookSink

pytestmark = pytest.mark.devserver
ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3


@pytest.fixture
def shared_store_url(postgres_server_url: str | None, tmp_path: Path) -> Iterator[str]:
    url = (_fresh_postgres(postgres_server_url) if postgres_server_url
           else f"sqlite:///{tmp_path / 'crm.db'}")
    migrate(url)
    yield url


async def test_three_workers_share_the_journeys_without_doing_anything_twice(
    dev_env: WorkflowEnvironment, shared_store_url: str, tmp_path: Path
) -> None:
    store = Store.from_url(shared_store_url)
    seed_staff(store)
    chat = WebhookSink()
    hook_port = chat.start()
    task_queue = f"crm-workers-{tmp_path.name[-6:]}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "CRM_TASK_QUEUE": task_queue,
        "CRM_DATABASE_URL": shared_store_url,
        "CRM_CHAT_URL": f"json://127.0.0.1:{hook_port}/chat/{{to}}",
        "CRM_QUIET_HOURS_ENABLED": "false",
        "CRM_METRICS_PORT": "0",
        "CRM_TEMPORAL_METRICS_PORT": "0",
    }
    workers = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT,
        env={**env, "CRM_OUTBOX_PATH": str(tmp_path / f"outbox-{n}.log")},
        stdout=(tmp_path / f"worker-{n}.log").open("wb"), stderr=asyncio.subprocess.STDOUT)
        for n in range(WORKERS)]
    journeys = Journeys(dev_env.client, task_queue=task_queue)
    suffix = tmp_path.name[-6:]
    try:
        leads = [await journeys.start_lead(LeadInput(
            lead_id=f"MW{n}-{suffix}", name=f"Lead {n}", email=f"mw{n}@example.com",
            region="east", product_line="erp", source="ads")) for n in range(12)]
        tickets = [await journeys.open_ticket(TicketInput(
            ticket_id=f"MT{n}-{suffix}", customer_id="cust-1", type="technical",
            priority="normal", subject=f"printer {n}", channel="email")) for n in range(6)]
        contracts = [await journeys.sign_contract(ContractInput(
            contract_id=f"MC{n}-{suffix}", customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("1000"), currency="CNY", signed_at=datetime.now(UTC)))
            for n in range(4)]

        async def lead_done(handle: Any) -> None:
            lead_id = handle.id.removeprefix("lead-")
            status = None
            for _ in range(300):
                status = await journeys.lead_status(lead_id)
                if status.owner_id:
                    break
                await asyncio.sleep(0.1)
            assert status is not None and status.owner_id, status
            answer = await journeys.log_contact(lead_id, LogContact(owner_id=status.owner_id,
                                                                    channel="phone"))
            assert answer.accepted
            await journeys.convert_lead(lead_id, Convert(opportunity_name="deal"))
            assert (await handle.result()).stage is LeadStage.converted

        async def ticket_done(handle: Any) -> None:
            ticket_id = handle.id.removeprefix("ticket-")
            for _ in range(300):
                status = await journeys.ticket_status(ticket_id)
                if status.assignee_id:
                    break
                await asyncio.sleep(0.1)
            assert (await journeys.respond(ticket_id, status.assignee_id)).accepted
            assert (await journeys.resolve(ticket_id, status.assignee_id, "fixed")).accepted
            assert (await journeys.rate(ticket_id, 5)).accepted
            # closed at once; the journey itself lingers a day for late signals
            assert (await journeys.ticket_status(ticket_id)).stage is TicketStage.closed

        async def contract_done(handle: Any) -> None:
            contract_id = handle.id.removeprefix("contract-")
            await handle.signal("accept", Accept())
            for part, reference in ((Decimal("300"), "A"), (Decimal("700"), "B")):
                answer = await journeys.record_payment(
                    contract_id, RecordPayment(amount=part, reference=reference))
                assert answer.accepted
            assert (await handle.result()).stage is ContractStage.paid

        await asyncio.wait_for(asyncio.gather(*map(lead_done, leads), *map(ticket_done, tickets),
                                              *map(contract_done, contracts)), timeout=120)
        ids = {h.id for h in (*leads, *tickets, *contracts)}

        def settled() -> list[schema.Touch] | None:
            with store.unit_of_work() as session:
                touches = [t for t in session.query(schema.Touch) if t.workflow_id in ids]
            return touches if touches and all(t.status in ("sent", "suppressed")
                                              for t in touches) else None

        touches = await eventually(settled, timeout=60, what="every touch settled")
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.terminate()
        for worker in workers:
            await asyncio.wait_for(worker.wait(), timeout=60)
        chat.stop()

    # each staff notice reached the webhook exactly once
    staff_keys = [t.key for t in touches if t.message_class == "staff" and t.status == "sent"]
    delivered = Counter(hook.key for hook in chat.hooks)
    assert staff_keys and all(delivered[key] == 1 for key in staff_keys), delivered
    # each customer message went out once, by one of the workers
    written = Counter(json.loads(line)["key"] for line in _outbox_lines(tmp_path))
    customer_keys = [t.key for t in touches if t.message_class != "staff" and t.status == "sent"]
    assert customer_keys and all(written[key] == 1 for key in customer_keys), written
    with store.unit_of_work() as session:
        # each lead assigned once; each contract's payments counted once
        assigned = Counter(e.entity_id for e in session.query(schema.JourneyEvent)
                           if e.step == "assigned" and e.entity_id.startswith("MW"))
        assert len(assigned) == len(leads) and set(assigned.values()) == {1}, assigned
        for handle in contracts:
            contract = session.get(schema.Contract, handle.id.removeprefix("contract-"))
            assert contract is not None and contract.paid_minor == 100000
    store.dispose()


def _outbox_lines(folder: Path) -> list[str]:
    return [line for path in folder.glob("outbox-*.log")
            for line in path.read_text().splitlines() if line.strip()]
