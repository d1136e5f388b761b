"""`crm up`: the dev-server command line it builds, and (marked `devserver`)
the stack it really starts and stops.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.settings import TASK_QUEUE, Settings
from starter import devstack
from starter.cli import up as cli_up
from starter.client import data_converter
from tests.cli_support import crm_in_thread
from workflows.kit import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent


def test_dev_server_command_line_registers_every_search_attribute(tmp_path: Path) -> None:
    options = devstack.DevStackOptions(
        port=17233, ui_port=18233, http_port=17243, db_file=tmp_path / "t.db"
    )
    args = devstack.dev_server_args("/bin/temporal", options, namespace="default")

    assert args[:3] == ["/bin/temporal", "server", "start-dev"]

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert value("--ip") == "127.0.0.1"
    assert value("--port") == "17233"
    assert value("--ui-port") == "18233"
    assert value("--http-port") == "17243"
    assert value("--db-filename") == str(tmp_path / "t.db")
    assert value("--namespace") == "default"
    registered = dict(
        args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--search-attribute"
    )
    assert set(registered) == {key.name for key in SEARCH_ATTRIBUTES}
    # The public contract's attributes, with the types the dev server expects.
    assert (
        registered.items()
        >= {
            "CrmJourney": "Keyword",
            "CrmStage": "Keyword",
            "CrmCustomerId": "Keyword",
            "CrmOwnerId": "Keyword",
            "CrmTier": "Keyword",
            "CrmSlaDeadline": "Datetime",
        }.items()
    )
    assert options.ui_url == "http://127.0.0.1:18233"


def test_crm_up_suggests_the_readme_s_walkthrough_and_run_sh_the_path() -> None:
    readme = (REPO / "README.md").read_text().replace("\\\n    ", "")
    for command in cli_up.WALKTHROUGH:
        assert f".venv/bin/crm {command}\n" in readme, command
    run_sh = (REPO / "run.sh").read_text()
    assert 'export PATH=\\"$PWD/.venv/bin:\\$PATH\\"' in run_sh
    assert run_sh.index("export PATH") < run_sh.index("exec .venv/bin/crm up")
    # Where the README itself types bare `crm` and `temporal`, it says how.
    assert "puts `.venv/bin` on your `PATH`" in readme


def test_the_temporal_binary_is_found() -> None:
    assert Path(devstack.temporal_binary()).exists()


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


async def _connect_within(address: str, seconds: float) -> Client:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await Client.connect(address, data_converter=data_converter())
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def _hold_ports(*ports: int) -> list[socket.socket]:
    held = []
    for port in ports:
        s = socket.socket()
        try:
            s.bind(("0.0.0.0", port))
            s.listen()
        except OSError:
            s.close()
            continue
        held.append(s)
    return held


def _post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _read_url(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@dataclass
class Stack:
    process: subprocess.Popen[str]
    port: int
    ui_port: int
    metrics_port: int
    log: Path
    codec_port: int
    key_file: Path


@pytest.fixture
def crm_up(tmp_path: Path) -> Iterator[Stack]:
    """`python -m starter up` on free ports, as a person would run it: the
    worker's two metrics endpoints too, so a stack already running on this
    machine (on the default ports) does not make the test fail."""
    port, ui_port, http_port, metrics_port, temporal_metrics_port, codec_port = _free_ports(6)
    log = tmp_path / "up.err"
    env = {
        **os.environ,
        "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
        "CRM_OUTBOX_PATH": str(tmp_path / "outbox.log"),
        "CRM_METRICS_PORT": str(metrics_port),
        "CRM_TEMPORAL_METRICS_PORT": str(temporal_metrics_port),
    }
    env.pop("TEMPORAL_ADDRESS", None)
    command = (
        f"up --port {port} --ui-port {ui_port} --http-port {http_port} "
        f"--db-file {tmp_path / 'temporal.db'} --codec-port {codec_port}"
    )
    # A stack already running on this machine holds the default metrics ports
    # (held here if free; taken already is the same case).
    defaults = _hold_ports(*(Settings.model_fields[name].default
                             for name in ("metrics_port", "temporal_metrics_port")))
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "starter", *shlex.split(command)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        yield Stack(process=process, port=port, ui_port=ui_port, metrics_port=metrics_port,
                    log=log, codec_port=codec_port, key_file=tmp_path / "codec-keys.json")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for held in defaults:
            held.close()


@pytest.mark.devserver
@pytest.mark.timeout(60)
async def test_crm_up_runs_the_stack_and_stops_it(crm_up: Stack) -> None:
    process = crm_up.process
    address = f"127.0.0.1:{crm_up.port}"
    client = await _connect_within(address, 30)

    attributes = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert attributes.custom_attributes["CrmStage"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert (
        attributes.custom_attributes["CrmSlaDeadline"]
        == IndexedValueType.INDEXED_VALUE_TYPE_DATETIME
    )

    # The in-process worker polls the public task queue.
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=TASK_QUEUE))
        )
        if described.pollers:
            break
        assert asyncio.get_running_loop().time() < deadline, "the worker never polled"
        await asyncio.sleep(0.2)

    # The first run made the codec's key file, for its owner's eyes only, and
    # the UI decrypts through the codec server beside the dev server.
    assert crm_up.key_file.stat().st_mode & 0o777 == 0o600
    codec_url = f"http://127.0.0.1:{crm_up.codec_port}"
    ui_settings = json.loads(await asyncio.to_thread(
        _read_url, f"http://127.0.0.1:{crm_up.ui_port}/api/v1/settings"))
    assert ui_settings["Codec"]["Endpoint"] == codec_url
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
             "data": base64.b64encode(b'{"name":"Wang Fang"}').decode()}
    sealed = await asyncio.to_thread(_post_json, f"{codec_url}/encode", {"payloads": [plain]})
    assert b"Wang Fang" not in base64.b64decode(sealed["payloads"][0]["data"])
    opened = await asyncio.to_thread(_post_json, f"{codec_url}/decode", sealed)
    assert opened == {"payloads": [plain]}

    # The engine's metrics are served on the port the settings name.
    metrics = await asyncio.to_thread(_read_url, f"http://127.0.0.1:{crm_up.metrics_port}/metrics")
    assert "crm_touches_total" in metrics

    process.send_signal(signal.SIGINT)  # Ctrl-C
    stdout, _ = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0, stdout + crm_up.log.read_text()
    assert f"Temporal UI: http://127.0.0.1:{crm_up.ui_port}" in stdout
    assert f"codec server: http://127.0.0.1:{crm_up.codec_port}" in stdout
    # The README's walkthrough, with its ids, ready to paste.
    for command in cli_up.WALKTHROUGH:
        assert f"  crm {command}\n" in stdout
    assert stdout.rstrip().endswith("stopped")
    with pytest.raises(RuntimeError):  # the dev server went with it
        await Client.connect(address)


@pytest.mark.devserver
async def test_crm_up_reuses_a_running_temporal(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")
    port = dev_env.client.service_client.config.target_host.rsplit(":", 1)[1]
    result = await crm_in_thread(f"up --no-worker --port {port} --codec-port 0")
    assert result.exit_code == 0, result.output
    assert "reusing it" in result.stdout
    assert (tmp_path / "crm.db").exists()  # the store was migrated all the same
    assert not (tmp_path / "var" / "temporal.db").exists()  # no second server
