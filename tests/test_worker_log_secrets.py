"""No secret in the worker's log: a worker whose e-mail channel URL carries the
SMTP password, delivering (and failing to deliver) a lead's welcome, never
writes that password to its log output."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.leads import LeadInput
from starter.client import Journeys
from tests.harness import eventually, seed_staff

pytestmark = pytest.mark.devserver
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Sm7p-pa55word"


def welcome_failed(store: Store, workflow_id: str) -> bool:
    """The welcome's delivery was attempted and failed (the channel is down)."""
    with store.unit_of_work() as session:
        touch = session.scalar(select(schema.Touch).where(
            schema.Touch.key == f"{workflow_id}:welcome:1"))
        return touch is not None and touch.status == "pending" and bool(touch.reason)


async def test_the_smtp_password_in_a_channel_url_never_reaches_the_log(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    seed_staff(sqlite_store)
    task_queue = f"crm-secrets-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "CRM_TASK_QUEUE": task_queue,
        "CRM_DATABASE_URL": str(sqlite_store.engine.url),
        "CRM_OUTBOX_PATH": str(tmp_path / "outbox.log"),
        # Nothing listens on port 1: every delivery fails, and says so.
        "CRM_EMAIL_URL": f"mailto://crm:{PASSWORD}@127.0.0.1:1?from=crm@example.com"
                         "&to={to}&mode=insecure",
        "CRM_QUIET_HOURS_ENABLED": "false",
        "CRM_METRICS_PORT": "0",
        "CRM_TEMPORAL_METRICS_PORT": "0",
        "CRM_LOG_LEVEL": "DEBUG",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lead_id = f"SEC-{uuid.uuid4().hex[:6]}"
    try:
        handle = await Journeys(dev_env.client, task_queue=task_queue).start_lead(LeadInput(
            lead_id=lead_id, name="Li Lei", email="li.lei@example.com", region="east",
            product_line="erp", source="ads"))
        await eventually(lambda: welcome_failed(sqlite_store, handle.id), timeout=60,
                         what="a failed delivery of the welcome")
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
        await handle.terminate("test over")
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    log = output.decode()

    assert "mailto://crm:***@127.0.0.1:1" in log  # the channel is named, masked
    assert PASSWORD not in log
