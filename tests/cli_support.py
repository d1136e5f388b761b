"""How the CLI tests run `crm`: in-process through Typer's runner, on a tmp
SQLite store named by CRM_DATABASE_URL with Temporal pointed at a closed port;
journey commands run the CLI in a thread while the test's loop runs the worker
on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities.store import Store
from activities.store.staff import StaffMember, list_staff
from starter.cli import app

# Nothing listens on port 1: connecting is refused at once.
UNREACHABLE = "127.0.0.1:1"
runner = CliRunner()


# A key file that never exists: a command run on the default store (`var/`)
# must not pick up the codec keys a `./run.sh` in this checkout created there,
# which the tests' plaintext workers could not read.
NO_CODEC_KEYS = Path(tempfile.mkdtemp(prefix="crm-cli-tests-")) / "codec-keys.json"


def crm(command: str) -> Result:
    """Runs `crm <command>`, split as a shell would."""
    env = None
    if not {"CRM_DATABASE_URL", "CRM_CODEC_KEYS", "CRM_CODEC_KEY_FILE"} & set(os.environ):
        env = {"CRM_CODEC_KEY_FILE": str(NO_CODEC_KEYS)}
    return runner.invoke(app, shlex.split(command), env=env)


async def crm_in_thread(command: str) -> Result:
    """The CLI runs its own event loop (`asyncio.run`), so from an async test it
    runs in a thread while the test's loop keeps the worker going."""
    return await asyncio.to_thread(crm, command)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated tmp SQLite store named by CRM_DATABASE_URL; Temporal unreachable."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    monkeypatch.delenv("COLUMNS", raising=False)  # tables keep one line per row
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", UNREACHABLE)
    result = crm("db upgrade")
    assert result.exit_code == 0, result.output
    assert "latest schema" in result.stdout
    return url


def staff_in(url: str) -> dict[str, StaffMember]:
    store = Store.from_url(url)
    try:
        return {member.id: member for member in list_staff(store)}
    finally:
        store.dispose()


async def status_json(entity_id: str, *, stage: str, group: str = "lead") -> dict[str, Any]:
    """`crm {group} status --json` once the journey reaches `stage` (activities run
    in real time, so intake and assignment take a moment)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        result = await crm_in_thread(f"{group} status {entity_id} --json")
        assert result.exit_code == 0, result.output
        latest: dict[str, Any] = json.loads(result.stdout)
        if latest["stage"] == stage:
            return latest
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{entity_id} never reached {stage}; last {latest}")
        await asyncio.sleep(0.1)


def point_cli_at(
    env: WorkflowEnvironment, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
    monkeypatch.setenv("CRM_TASK_QUEUE", task_queue)


async def _terminate(env: WorkflowEnvironment, workflow_id: str) -> None:
    try:
        await env.client.get_workflow_handle(workflow_id).terminate("test over")
    except Exception:  # noqa: BLE001 - never started, or already over
        pass


def _rows(store_url: str, model: type[Any]) -> list[Any]:
    store = Store.from_url(store_url)
    try:
        with store.unit_of_work() as session:
            return list(session.scalars(select(model)))
    finally:
        store.dispose()


def _table(stdout: str, title: str, n: int | None = None) -> dict[str, list[str]]:
    """The first `n` rows (or up to a blank line) of the borderless table under
    `title`, by first cell."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 3 :][:n]:  # title, header, rule
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


async def _poll(command: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`crm <command> --json` until `ready` says yes (activities run in real time)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        result = await crm_in_thread(f"{command} --json")
        assert result.exit_code == 0, result.output
        latest: dict[str, Any] = json.loads(result.stdout)
        if ready(latest):
            return latest
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"`{command}` never got there; last {latest}")
        await asyncio.sleep(0.1)


ZONE = "Asia/Shanghai"
