"""The faults `bench.chaos` does, and the wait for the journeys to settle after them.

`FaultLog` prints and counts each fault as it is done; `Stack` holds the
processes of a run (`bench.chaos_infra`) and does each fault to them, then
brings everything back; `run_faults` is the schedule, at fixed fractions of
the fault window; `settle` waits until the journeys that should end have ended
or none moves any more.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.service import RPCError

from bench.chaos_infra import PgCluster, Process, wait_for_port
from bench.chaos_people import RPC, Play


@dataclass
class FaultLog:
    """Each fault as it is done, printed at once; `kinds` counts them."""

    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def note(self, what: str, kind: str | None = None) -> None:
        at = time.monotonic() - self.started
        self.events.append((at, what))
        if kind:
            self.kinds[kind] += 1
        print(f"  [{at:6.1f} s] {what}", flush=True)


@dataclass
class Stack:
    pg: PgCluster
    smtp: Process
    webhook: Process
    smtp_port: int
    webhook_port: int
    workers: list[Process]
    log: FaultLog
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # the workers
    pg_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start_sink(self, sink: Process, port: int) -> None:
        sink.start()
        await asyncio.to_thread(wait_for_port, port)

    async def kill_worker(self, n: int, restart_after: float) -> None:
        worker = self.workers[n % len(self.workers)]
        async with self.lock:
            if not worker.alive:
                return
            pid = worker.pid
            worker.kill()
        self.log.note(f"kill -9 {worker.name} (pid {pid})", "worker killed (SIGKILL)")
        await asyncio.sleep(restart_after)
        async with self.lock:
            worker.start()
        self.log.note(f"{worker.name} restarted (pid {worker.pid})")

    async def terminate_worker(self, n: int) -> None:
        async with self.lock:
            # A worker that is running, so that the graceful shutdown is real
            # even when a kill has just taken the one first in line.
            order = [self.workers[(n + k) % len(self.workers)] for k in range(len(self.workers))]
            worker = next((w for w in order if w.alive), order[0])
            pid = worker.pid
            self.log.note(f"SIGTERM {worker.name} (pid {pid})", "worker stopped (SIGTERM)")
            took = await asyncio.to_thread(worker.terminate, 60.0)
            self.log.note(f"{worker.name} exited {took:.1f} s after SIGTERM; restarted")
            worker.start()

    async def restart_pg(self) -> None:
        async with self.pg_lock:  # one PostgreSQL fault at a time
            self.log.note("PostgreSQL restart (fast)", "PostgreSQL restarted")
            await asyncio.to_thread(self.pg.restart)
            self.log.note("PostgreSQL back")

    async def stop_pg(self, seconds: float) -> None:
        async with self.pg_lock:
            self.log.note(f"PostgreSQL stopped for {seconds:.0f} s", "PostgreSQL stopped")
            await asyncio.to_thread(self.pg.stop)
            await asyncio.sleep(seconds)
            await asyncio.to_thread(self.pg.start)
            self.log.note("PostgreSQL started again")

    async def sink_down(self, sink: Process, port: int, seconds: float) -> None:
        self.log.note(f"{sink.name} down for {seconds:.0f} s", f"{sink.name} down")
        await asyncio.to_thread(sink.terminate, 10.0)
        await asyncio.sleep(seconds)
        await self.start_sink(sink, port)
        self.log.note(f"{sink.name} up again")

    async def restore(self) -> None:
        """Everything up, whatever the schedule left behind."""
        if not await asyncio.to_thread(self.pg.running):
            await asyncio.to_thread(self.pg.start)
        for sink, port in ((self.smtp, self.smtp_port), (self.webhook, self.webhook_port)):
            if not sink.alive:
                await self.start_sink(sink, port)
        async with self.lock:
            for worker in self.workers:
                if not worker.alive:
                    worker.start()


async def run_faults(stack: Stack, args: argparse.Namespace) -> None:
    """The schedule, as fractions of the window so a short run gets every kind."""
    window = args.minutes * 60
    at: list[tuple[float, Callable[[], Awaitable[None]]]] = []
    if args.kill_every > 0:
        k, t = 0, float(args.kill_every)
        while t < window:
            at.append((t, lambda k=k: stack.kill_worker(k, args.restart_after)))
            k, t = k + 1, t + args.kill_every
    for r in range(args.pg_restarts):
        spread = 0.6 * r / (args.pg_restarts - 1) if args.pg_restarts > 1 else 0.0
        at.append((window * (0.25 + spread), stack.restart_pg))
    if args.pg_stop_seconds > 0:
        at.append((window * 0.45, lambda: stack.stop_pg(args.pg_stop_seconds)))
    if args.sink_down_seconds > 0:
        at.append((window * 0.1, lambda: stack.sink_down(stack.smtp, stack.smtp_port,
                                                           args.sink_down_seconds)))
        at.append((window * 0.55, lambda: stack.sink_down(stack.webhook, stack.webhook_port,
                                                            args.sink_down_seconds)))
    if args.sigterm:
        # The worker the next kill would not pick, so the two do not collide.
        at.append((window * 0.7, lambda: stack.terminate_worker(len(stack.workers) - 1)))

    async def at_time(seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(max(0.0, stack.log.started + seconds - time.monotonic()))
        try:
            await action()
        except Exception as exc:  # noqa: BLE001 - a fault that could not be done is reported
            stack.log.note(f"fault failed: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(at_time(s, a) for s, a in sorted(at, key=lambda x: x[0])))


# -- waiting for the dust to settle -----------------------------------------------------------


async def running_histories(client: Client) -> dict[str, int]:
    """History length of every running journey that should end (not the lifecycles)."""
    found: dict[str, int] = {}
    query = ("ExecutionStatus = 'Running' AND WorkflowType != 'CustomerLifecycle' "
             "AND WorkflowType != 'RfmSweep'")
    async for execution in client.list_workflows(query):
        found[execution.id] = execution.raw_info.history_length
    return found


async def busy_with_activities(client: Client, workflow_ids: list[str]) -> bool:
    """Whether any of these journeys has an activity scheduled or running: one
    whose attempt died with a killed worker is retried only after its
    start-to-close timeout and backoff, minutes with no new history event."""
    for wid in workflow_ids:
        try:
            description = await client.get_workflow_handle(wid).describe(rpc_timeout=RPC)
        except RPCError:
            continue
        if description.raw_description.pending_activities:
            return True
    return False


async def settle(client: Client, plays: list[Play], *, limit: float, quiet: float) -> str:
    """Until every script is done and every journey that should end has, or
    nothing has moved for `quiet` seconds with no activity still to be retried,
    or `limit` seconds have passed."""
    deadline = time.monotonic() + limit
    last: dict[str, int] | None = None
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        scripts_done = all(p.done for p in plays)
        try:
            running = await running_histories(client)
        except RPCError:
            running = last or {}
        if scripts_done and not running:
            return "every journey that should end has ended"
        if running != last:
            last, still_since = running, time.monotonic()
        elif scripts_done and time.monotonic() - still_since >= quiet:
            if not await busy_with_activities(client, list(running)):
                return (f"{len(running)} journeys still running, none progressed in "
                        f"{quiet:.0f} s and none has an activity to retry")
        await asyncio.sleep(5)
    return f"gave up waiting after {limit:.0f} s"
