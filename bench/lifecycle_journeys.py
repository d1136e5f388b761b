"""The journeys `bench.lifecycle` keeps waiting, and the latency from a
`purchase` signal to its order row in the store."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import zip_longest
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client

from activities.store import Store
from bench.lifecycle_infra import rss_mb
from bench.postgres import say
from domain import schema
from domain.lifecycle import Purchase
from starter.client import Journeys

CATEGORIES = ["tea", "coffee", "snacks", "beauty", "baby", "home", "books", "sports"]
# How often the latency run polls the store for the order rows.
POLL_S = 0.005


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
    if cache == 0:  # nothing is cached: every journey's next task replays its history
        return {"replayed": rng.sample(range(n), min(m, n))}
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
