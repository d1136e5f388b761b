"""A worker stopped with SIGTERM in the middle of activities finishes them and
hands the rest back: another worker carries the journeys on, nothing lost and
nothing sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.leads import LeadInput, LeadStage, LogContact
from domain.policy import LeadPolicy
from tests.harness import eventually, make_settings, running_worker, seed_staff
from tests.sinks import WebhookSink

pytestmark = pytest.mark.devserver
ROOT = Path(__file__).resolve().parent.parent


async def test_sigterm_mid_activity_loses_nothing(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    seed_staff(sqlite_store)
    slow_chat = WebhookSink(hold=True)  # staff notices stay in flight until released
    hook_port = slow_chat.start()
    task_queue = f"crm-sigterm-{tmp_path.name[-6:]}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "CRM_TASK_QUEUE": task_queue,
        "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
        "CRM_OUTBOX_PATH": str(tmp_path / "outbox.log"),
        "CRM_CHAT_URL": f"json://127.0.0.1:{hook_port}/chat/{{to}}",
        "CRM_QUIET_HOURS_ENABLED": "false",
        "CRM_METRICS_PORT": "0",
        "CRM_TEMPORAL_METRICS_PORT": "0",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    policy = LeadPolicy(first_touch=timedelta(hours=1), reminder_before=timedelta(minutes=30))
    settings = make_settings(tmp_path)
    try:
        from starter.client import Journeys

        journeys = Journeys(dev_env.client, task_queue=task_queue)
        handles = [await journeys.start_lead(LeadInput(
            lead_id=f"GS{n}-{tmp_path.name[-6:]}", name=f"Lead {n}", email=f"gs{n}@example.com",
            region="east", product_line="erp", source="ads", policy=policy)) for n in range(4)]
        assert await asyncio.to_thread(slow_chat.started.wait, 30), "no notice in flight"
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        # Only once the worker is shutting down does the held notice go through:
        # it must be finished, not abandoned.
        assert worker.stdout is not None
        seen = b""
        while b"shutting down" not in seen:
            line = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
            assert line, f"the worker exited without shutting down: {seen.decode()[-2000:]}"
            seen += line
        slow_chat.release.set()
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
        assert worker.returncode == 0, (seen + output).decode()[-2000:]
        assert time.monotonic() - stopping < 40
        assert slow_chat.hooks, "the notice in flight was abandoned, not finished"
    finally:
        slow_chat.release.set()
        if worker.returncode is None:
            worker.kill()

    # A second worker takes over what was left.
    settings = make_settings(tmp_path, chat_url=env["CRM_CHAT_URL"])
    async with running_worker(dev_env.client, sqlite_store, settings,
                              task_queue=task_queue) as h:
        for handle in handles:
            lead_id = handle.id.removeprefix("lead-")
            status = None
            for _ in range(200):
                status = await h.journeys.lead_status(lead_id)
                if status.owner_id:
                    break
                await asyncio.sleep(0.1)
            assert status is not None and status.owner_id, status
            answer = await h.journeys.log_contact(lead_id, LogContact(owner_id=status.owner_id,
                                                                      channel="phone"))
            assert answer.accepted
            await h.journeys.discard_lead(lead_id, "test over")
            assert (await handle.result()).stage is LeadStage.discarded
        touches = await eventually(
            lambda: (t := [x for x in h.touches() if x.workflow_id in {hd.id for hd in handles}])
            and all(x.status == "sent" for x in t) and len(t) == 8 and t, timeout=60,
            what="every welcome and notice sent")
    chat_keys = Counter(hook.key for hook in slow_chat.hooks)
    staff_keys = [t.key for t in touches if t.message_class == "staff"]
    assert all(chat_keys[key] == 1 for key in staff_keys), chat_keys
    slow_chat.stop()


async def test_a_worker_held_by_a_stuck_workflow_task_exits_when_its_shutdown_times_out(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    task_queue = f"crm-stuck-{tmp_path.name[-6:]}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "CRM_TASK_QUEUE": task_queue,
        "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
        "CRM_OUTBOX_PATH": str(tmp_path / "outbox.log"),
        "CRM_METRICS_PORT": "0",
        "CRM_TEMPORAL_METRICS_PORT": "0",
    }
    script = ("import worker, tests.stuck_journey as stuck; "
              "worker.WORKFLOWS.append(stuck.StuckJourney); worker.main()")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, "--shutdown-timeout", "3", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    handle = await dev_env.client.start_workflow(
        "StuckJourney", id=f"stuck-{tmp_path.name[-6:]}", task_queue=task_queue)
    try:
        assert worker.stdout is not None
        seen = b""
        while b"deadlock" not in seen.lower():
            line = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
            assert line, f"the worker exited: {seen.decode()[-2000:]}"
            seen += line
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=30)
        took = time.monotonic() - stopping
        log = (seen + output).decode()
        assert worker.returncode == 2, log[-2000:]
        assert "forced exit" in log and "still shutting down 3 s after" in log, log[-2000:]
        assert took < 15, took
    finally:
        if worker.returncode is None:
            worker.kill()
        await handle.terminate("test over")


async def test_crm_worker_help_prints_usage_and_starts_no_worker() -> None:
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "--help", cwd=ROOT,
        env={**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(worker.communicate(), timeout=30)
    assert worker.returncode == 0, output.decode()
    assert output.decode().startswith("usage: crm-worker")
    assert "--shutdown-timeout" in output.decode()
