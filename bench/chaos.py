"""Fault injection: do journeys survive workers killed, the store restarted and
stopped, and the delivery channels down?

    python -m bench.chaos [--journeys 1000] [--minutes 5] [--workers 2] [--kill-every 20]
                          [--pg-restarts 2] [--pg-stop-seconds 30] [--sink-down-seconds 60]
                          [--settle-minutes 5] [--malformed 0.1] [--seed 1] [--keep]

Starts, each as its own process on free ports: a Temporal dev server (the
`Crm*` search attributes registered), a PostgreSQL cluster of its own (initdb
in a temporary directory, so it can be restarted and stopped), an SMTP sink
and a webhook sink (`bench.chaos_sinks`, which log every message they accept)
and `--workers` journey workers (`worker.py`, configured by environment as in
production, all on the same task queue and store).

Then N journeys, all five kinds in turn (lead, payment, ticket, course,
lifecycle), started over the first 60% of the fault window, with the people's
part played on a schedule: reps contact and convert leads (or let some go
stale), customers accept contracts and pay in two parts (and a bank tells one
payment twice), agents respond, resolve and get rated (or not, and the survey
closes the ticket), advisors log their callbacks, customers buy again. A
fraction (`--malformed`) of journeys also get one malformed signal, which the
journey must reject and carry on. Every duration is scaled down through the
policy each start input carries, so journeys finish within minutes.

Meanwhile, for `--minutes`: a worker killed with SIGKILL every `--kill-every`
seconds and restarted; PostgreSQL restarted (`--pg-restarts` times) and once
stopped for `--pg-stop-seconds`; the SMTP sink, then the webhook sink, down for
`--sink-down-seconds`; one worker sent SIGTERM (graceful shutdown) and
restarted. Then everything is brought back and the bench waits, at most
`--settle-minutes`, until the journeys that should finish have finished or no
running journey makes progress any more.

What it reports, and what makes it exit 1:

- journeys completed, running as designed (lifecycle journeys never end),
  stuck (should have ended but are still running: with a workflow task that
  keeps failing, an activity retrying, or simply no progress) and failed;
- workflow task failures read from each history (`WorkflowTaskFailed`), and
  loops (the pending workflow task has failed again and again);
- duplicate deliveries: a touch key received twice at the sinks;
- lost touches: recorded `sent` in the store's touches but never received;
- store against journey: each contract's payments in the store against the
  journey's `status` (and against what the bench paid); each customer's orders
  in the store against the lifecycle journey's count; malformed signals the
  store has no rejection for.

It asserts no timings. The work directory (logs of every process, what the
sinks received) is kept with `--keep`, and always when something failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, func, select
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.customers import CustomerRecord, add_customer
from activities.staff import StaffMember, add_staff
from activities.store import Store
from bench.chaos_infra import (
    PgCluster,
    Process,
    code_version,
    free_port,
    migrate_store,
    sink_process,
    stdout_to_devnull,
    temporal_binary,
    wait_for_port,
    worker_env,
    worker_process,
)
from domain import schema
from domain.courses import CoursePolicy, CourseStatus, EndCourse, EnrollmentInput, LogCallback
from domain.journeys import Decision
from domain.leads import Claim, Convert, LeadInput, LeadStatus, LogContact
from domain.lifecycle import LifecycleInput, LifecyclePolicy, LifecycleStatus, Purchase
from domain.payments import Accept, ContractInput, ContractStatus, RecordPayment
from domain.policy import LeadPolicy
from domain.settings import TASK_QUEUE
from domain.tickets import Rate, Resolve, Respond, TicketInput, TicketPolicy, TicketStatus
from starter.client import data_converter
from worker import WORKFLOWS
from workflows.common import SEARCH_ATTRIBUTES

KINDS = ("lead", "payment", "ticket", "course", "lifecycle")
RPC = timedelta(seconds=15)
UPDATE_RPC = timedelta(seconds=50)
T = TypeVar("T")

# Durations scaled so that a journey's whole life fits in a few minutes. Each
# start input carries its policy, so the workers need no settings for it.
LEAD_POLICY = LeadPolicy(first_touch=timedelta(seconds=60), reminder_before=timedelta(seconds=20),
                         max_reassignments=1, follow_up_interval=timedelta(seconds=20),
                         max_missed_follow_ups=2)
TICKET_POLICY = TicketPolicy(
    first_response=timedelta(seconds=40), warning_before=timedelta(seconds=10),
    manager_after=timedelta(seconds=20),
    resolution_targets={p: timedelta(seconds=120) for p in ("urgent", "high", "normal", "low")},
    survey_after=timedelta(seconds=20), close_after_survey=timedelta(seconds=15),
    linger_after_close=timedelta(seconds=10))
COURSE_POLICY = CoursePolicy(callback_after=timedelta(seconds=15),
                             callback_window=timedelta(seconds=30))
LIFECYCLE_POLICY = LifecyclePolicy(dormant_after=timedelta(seconds=40),
                                   second_touch_after=timedelta(seconds=15),
                                   lost_after=timedelta(seconds=20),
                                   coupon_valid_for=timedelta(seconds=60))
MALFORMED_SHAPES = ("wrong fields", "not an object", "no payload", "two payloads")
CONTRACT_AMOUNT = Decimal("10000.00")
PAYMENTS = (Decimal("3000.00"), Decimal("7000.00"))

# Causes of a failed workflow task that are the server's housekeeping, not the
# journey's code failing (a signal arriving as the task completed, a sticky
# queue reset after a worker died).
HOUSEKEEPING_CAUSES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_UPDATE,
}


# -- one journey as the bench plays it ------------------------------------------------------


@dataclass
class Play:
    """A journey, what the people did to it and what should come of it."""

    kind: str
    workflow_id: str
    entity_id: str
    customer_id: str | None = None
    ends: bool = True  # lifecycle journeys run for the customer's life
    expected_stage: str | None = None
    actions: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # actions the journey or Temporal refused
    malformed_sent: int = 0
    malformed_shapes: list[str] = field(default_factory=list)
    told_twice: bool = False  # a payment signalled again with the same reference
    paid: list[tuple[str, Decimal]] = field(default_factory=list)  # (reference, amount)
    paid_unanswered: list[tuple[str, Decimal]] = field(default_factory=list)
    orders: int = 0
    done: bool = False
    error: str | None = None


@dataclass
class People:
    """Plays everyone's part: one coroutine per journey, RPCs bounded in number."""

    client: Client
    rng: random.Random
    run: str
    malformed: float
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(100))

    async def rpc(self, what: str, call: Callable[[], Awaitable[T]], attempts: int = 6) -> T:
        """An RPC retried, as a person tries again, while the worker it needs is
        being killed or the store is down (a journey answers an update only once
        the store has recorded it): about five minutes in all. Updates carry an
        id, so a retried one is the same update to the server, not a second one."""
        last: BaseException | None = None
        for attempt in range(attempts):
            try:
                async with self.gate, asyncio.timeout(60):
                    return await call()
            except WorkflowUpdateFailedError:
                raise
            except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
                last = exc
                await asyncio.sleep(2 + 3 * attempt)
        raise RuntimeError(f"{what}: no answer after {attempts} attempts: {last!r}")

    def handle(self, play: Play) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(play.workflow_id)

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    async def update(self, play: Play, name: str, arg: Any, key: str) -> Decision | None:
        play.actions.append(name)
        try:
            return await self.rpc(name, lambda: self.handle(play).execute_update(
                name, arg, id=f"{play.workflow_id}:{key}", result_type=Decision,
                rpc_timeout=UPDATE_RPC))
        except WorkflowUpdateFailedError as exc:
            play.refused.append(f"{name}: {exc.cause}")
            return None

    async def signal(self, play: Play, name: str, arg: Any) -> None:
        play.actions.append(name)
        await self.rpc(name, lambda: self.handle(play).signal(name, arg, rpc_timeout=RPC))

    async def status(self, play: Play, result_type: type[T]) -> T:
        return await self.rpc("status", lambda: self.handle(play).query(
            "status", result_type=result_type, rpc_timeout=RPC))

    async def until(self, play: Play, result_type: type[T], ready: Callable[[T], bool],
                    give_up: float = 240.0) -> T:
        """Polls the journey's status as a person glances at the CRM now and then."""
        deadline = time.monotonic() + give_up
        while True:
            status = await self.status(play, result_type)
            if ready(status) or time.monotonic() > deadline:
                return status
            await self.pause(2, 4)

    async def maybe_malformed(self, play: Play, name: str, payload: dict[str, Any]) -> None:
        """A service that sends a broken signal: fields of the wrong type, a JSON
        value that is not an object, no payload at all, or two payloads. The
        journey must reject it, record the rejection, and go on."""
        if self.rng.random() >= self.malformed:
            return
        shape = self.rng.choice(MALFORMED_SHAPES)
        args: list[Any] = {"wrong fields": [payload], "not an object": [["not", "an object"]],
                           "no payload": [], "two payloads": [payload, payload]}[shape]
        play.malformed_sent += 1
        play.malformed_shapes.append(shape)
        play.actions.append(f"{name} (malformed: {shape})")
        await self.rpc(name, lambda: self.handle(play).signal(name, args=args, rpc_timeout=RPC))

    async def start(self, play: Play, workflow: str, arg: Any) -> None:
        try:
            await self.rpc("start", lambda: self.client.start_workflow(
                workflow, arg, id=play.workflow_id, task_queue=TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                task_timeout=timedelta(seconds=10), rpc_timeout=RPC))
        except WorkflowAlreadyStartedError:
            pass  # an attempt whose answer was lost did start it

    # -- the five journeys --------------------------------------------------------------

    async def lead(self, play: Play, i: int) -> None:
        """A rep contacts the lead and converts it, or contacts it once and lets it go stale."""
        stale = i % 3 == 0
        play.expected_stage = "stale" if stale else "converted"
        await self.start(play, "LeadJourney", LeadInput(
            lead_id=play.entity_id, name=f"Chaos Lead {i}",
            email=f"lead{i}.{self.run}@example.com", company=f"Chaos {self.run} {i} Ltd",
            region="east", product_line="erp", source="web_form", need="a quote",
            policy=LEAD_POLICY))
        for attempt in range(3):
            status = await self.until(play, LeadStatus,
                                      lambda s: s.owner_id is not None or s.stage == "pooled")
            owner = status.owner_id
            if status.stage == "pooled":
                owner = "rep-01"
                await self.update(play, "claim_now", Claim(owner_id=owner), f"claim-{attempt}")
            if owner is None:
                continue
            await self.maybe_malformed(play, "log_contact", {"owner_id": ["x"], "channel": 5})
            decision = await self.update(play, "log_contact_now",
                                         LogContact(owner_id=owner, channel="phone"),
                                         f"contact-{attempt}")
            if decision is not None and decision.accepted:
                break
            if decision is not None:  # refused refusals are already listed by `update`
                play.refused.append(f"log_contact_now: {decision.reason}")
        if stale:
            return
        await self.pause(3, 20)
        await self.signal(play, "convert", Convert(amount=Decimal("12000")))

    async def payment(self, play: Play, i: int) -> None:
        """Signed, accepted, paid 30% then 70%; now and then the bank tells the
        first payment twice (same reference), which must change nothing."""
        play.expected_stage = "paid"
        await self.start(play, "PaymentJourney", ContractInput(
            contract_id=play.entity_id, customer_id=play.customer_id or "",
            owner_id=f"rep-{i % 4 + 1:02d}", amount=CONTRACT_AMOUNT,
            signed_at=datetime.now(UTC) - timedelta(minutes=1)))
        await self.pause(2, 10)
        await self.signal(play, "accept", Accept())
        for n, amount in enumerate(PAYMENTS, start=1):
            await self.pause(3, 15)
            reference = f"{play.entity_id}-P{n}"
            try:
                decision = await self.update(play, "record_payment_now",
                                             RecordPayment(amount=amount, reference=reference),
                                             f"pay-{n}")
            except RuntimeError:
                play.paid_unanswered.append((reference, amount))  # taken or not: unknown
                raise
            if decision is not None and decision.accepted:
                play.paid.append((reference, amount))
            if n == 1:
                await self.maybe_malformed(play, "record_payment",
                                           {"amount": "lots", "reference": 7})
                if i % 3 == 1:
                    await self.pause(1, 5)
                    await self.signal(play, "record_payment",
                                      RecordPayment(amount=amount, reference=reference))
                    play.told_twice = True

    async def ticket(self, play: Play, i: int) -> None:
        """An agent responds (some after the first-response deadline, so the
        ticket escalates), resolves, and the customer rates it 4-5, or never
        rates and the survey closes it."""
        play.expected_stage = "closed"
        await self.start(play, "TicketJourney", TicketInput(
            ticket_id=play.entity_id, customer_id=play.customer_id or "",
            type="technical", subject=f"Chaos ticket {i}", policy=TICKET_POLICY))
        await self.pause(3, 55)
        status = await self.until(play, TicketStatus, lambda s: s.assignee_id is not None)
        agent = status.assignee_id or "agent-01"
        await self.maybe_malformed(play, "rate", {"score": "five"})
        await self.update(play, "respond_now", Respond(agent_id=agent), "respond")
        await self.pause(3, 15)
        await self.update(play, "resolve_now", Resolve(agent_id=agent, resolution="fixed"),
                          "resolve")
        if i % 5 < 3:
            await self.pause(2, 10)
            await self.update(play, "rate_now", Rate(score=4 + i % 2), "rate")

    async def course(self, play: Play, i: int) -> None:
        """The course ends (some are told it ended early), the callback falls
        due, the advisor logs it."""
        play.expected_stage = "completed"
        await self.start(play, "CourseJourney", EnrollmentInput(
            enrollment_id=play.entity_id, customer_id=play.customer_id or "",
            course_id="CRS-CHAOS", advisor_id=f"adv-{i % 3 + 1:02d}",
            ends_at=datetime.now(UTC) + timedelta(seconds=self.rng.uniform(10, 30)),
            policy=COURSE_POLICY))
        if i % 3 == 0:
            await self.pause(2, 6)
            await self.signal(play, "end_course", EndCourse(ended_at=datetime.now(UTC)))
        await self.maybe_malformed(play, "log_callback", {"advisor_id": 7, "outcome": None})
        outcome = ("renewal_intent", "no_interest", "unreachable")[i % 3]
        for attempt in range(3):
            # The advisor calls once the CRM shows the callback due, and tries
            # again if the journey says it is not due yet.
            status = await self.until(play, CourseStatus,
                                      lambda s: s.stage in ("awaiting_callback", "escalated"))
            decision = await self.update(
                play, "log_callback_now",
                LogCallback(advisor_id=status.advisor_id, outcome=outcome), f"callback-{attempt}")
            if decision is not None:
                return
            await self.pause(3, 6)

    async def lifecycle(self, play: Play, i: int) -> None:
        """One to four purchases, some far enough apart for the win-back to begin."""
        play.ends = False
        purchases = 1 + i % 4
        for n in range(1, purchases + 1):
            order = Purchase(order_id=f"{play.entity_id}-O{n}", amount=Decimal(80 + 40 * n),
                             category="books")
            play.actions.append("purchase")
            await self.rpc("purchase", lambda order=order: self.client.start_workflow(
                "CustomerLifecycle",
                LifecycleInput(customer_id=play.entity_id, policy=LIFECYCLE_POLICY),
                id=play.workflow_id, task_queue=TASK_QUEUE, start_signal="purchase",
                start_signal_args=[order], rpc_timeout=RPC))
            play.orders += 1
            if n == 1:
                await self.maybe_malformed(play, "purchase", {"order_id": "x", "amount": "abc"})
            await self.pause(3, 50)

    async def play(self, play: Play, i: int, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        script = getattr(self, play.kind)
        try:
            await script(play, i)
        except Exception as exc:  # noqa: BLE001 - reported with the journey
            play.error = f"{type(exc).__name__}: {exc}"
        play.done = True


def make_plays(n: int, run: str) -> list[Play]:
    plays = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        entity = f"X{run}-{i:05d}"
        prefix = {"lead": "lead", "payment": "contract", "ticket": "ticket",
                  "course": "enrollment", "lifecycle": "customer"}[kind]
        customer = entity if kind == "lifecycle" else f"cust-{run}-{i:05d}"
        plays.append(Play(kind=kind, workflow_id=f"{prefix}-{entity}", entity_id=entity,
                          customer_id=customer))
    return plays


# -- seeding the store ------------------------------------------------------------------


def seed(store: Store, plays: list[Play]) -> None:
    """Staff for every journey (all reachable on chat, so their notices go to
    the webhook sink) and a customer with an e-mail address for each journey."""
    now = datetime.now(UTC)

    def staff(**fields: Any) -> None:
        add_staff(store, StaffMember(chat=fields["id"], capacity=100_000, **fields), now=now)

    staff(id="mgr-01", name="Manager", role="manager", regions=["east"])
    staff(id="sup-01", name="Supervisor", role="supervisor", group="technical",
          manager_id="mgr-01")
    staff(id="fin-01", name="Finance", role="finance")
    for k in range(1, 5):
        staff(id=f"rep-{k:02d}", name=f"Rep {k}", role="rep", regions=["east"],
              product_lines=["erp"], manager_id="mgr-01")
    for k in range(1, 5):
        staff(id=f"agent-{k:02d}", name=f"Agent {k}", role="agent", group="technical",
              seniority=3, manager_id="sup-01")
    for k in range(1, 4):
        staff(id=f"adv-{k:02d}", name=f"Advisor {k}", role="advisor", group="advisors",
              manager_id="mgr-01")
    for play in plays:
        if play.kind != "lead" and play.customer_id:
            add_customer(store, CustomerRecord(
                id=play.customer_id, name=f"Customer {play.entity_id}",
                email=f"{play.customer_id.lower()}@example.com"), now=now)


# -- faults -----------------------------------------------------------------------------


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


# -- the verdict ----------------------------------------------------------------------------


@dataclass
class Verdict:
    """Everything the run found; `failures` decides the exit status."""

    outcome: dict[str, str] = field(default_factory=dict)  # workflow id -> class
    stage: dict[str, str] = field(default_factory=dict)
    stuck: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    otherwise: list[tuple[str, str]] = field(default_factory=list)
    task_failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, cause, message
    loops: list[tuple[str, int, str]] = field(default_factory=list)  # id, attempt, message
    replay_failures: list[tuple[str, str]] = field(default_factory=list)
    timeouts: Counter[str] = field(default_factory=Counter)
    disagreements: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str, int, str]] = field(default_factory=list)
    lost: list[tuple[str, str, str]] = field(default_factory=list)  # key, channel, reason
    touches: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    received_no_key: int = 0
    message_ids: str = ""  # what the e-mails' Message-IDs say about the key
    unrecorded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return (len(self.stuck) + len(self.failed) + len(self.loops) + len(self.duplicates)
                + len(self.lost) + len(self.disagreements) + len(self.replay_failures))


def event_name(value: int) -> str:
    return EventType.Name(value).removeprefix("EVENT_TYPE_")


async def examine_journey(client: Client, play: Play, verdict: Verdict,
                          statuses: dict[str, Any], histories: dict[str, WorkflowHistory]
                          ) -> None:
    """Status, history and pending work of one journey; its own view of itself."""
    handle = client.get_workflow_handle(play.workflow_id)
    try:
        description = await handle.describe(rpc_timeout=RPC)
    except RPCError as exc:
        verdict.failed.append((play.workflow_id, f"never started: {exc}"))
        verdict.outcome[play.workflow_id] = "failed"
        return
    raw = description.raw_description
    history = histories[play.workflow_id] = await handle.fetch_history(rpc_timeout=RPC)
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            if attrs.cause in HOUSEKEEPING_CAUSES:
                continue
            verdict.task_failures.append((
                play.workflow_id, WorkflowTaskFailedCause.Name(attrs.cause).removeprefix(
                    "WORKFLOW_TASK_FAILED_CAUSE_"),
                attrs.failure.message.splitlines()[0][:160] if attrs.failure.message else ""))
        elif event.event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
                                  EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                                  EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED):
            verdict.timeouts[event_name(event.event_type)] += 1
    pending = raw.pending_workflow_task
    # After the settling every worker is up: a workflow task still pending on
    # its second attempt or later has failed (or timed out) and will again.
    failing_task = raw.HasField("pending_workflow_task") and pending.attempt > 1
    if failing_task:
        last = next((f for f in reversed(verdict.task_failures) if f[0] == play.workflow_id),
                    None)
        verdict.loops.append((play.workflow_id, pending.attempt,
                              last[2] if last else "no failure recorded in the history"))
    status = description.status
    result_type = {"lead": LeadStatus, "payment": ContractStatus, "ticket": TicketStatus,
                   "course": CourseStatus, "lifecycle": LifecycleStatus}[play.kind]
    if status == WorkflowExecutionStatus.COMPLETED:
        outcome = "completed"
        try:
            statuses[play.workflow_id] = await client.get_workflow_handle(
                play.workflow_id, result_type=result_type).result(rpc_timeout=RPC)
        except Exception as exc:  # noqa: BLE001 - a result we cannot read is reported
            verdict.notes.append(f"{play.workflow_id}: result unreadable: {exc}")
    elif status == WorkflowExecutionStatus.RUNNING:
        outcome = "running" if not play.ends and not failing_task else "stuck"
        try:
            statuses[play.workflow_id] = await asyncio.wait_for(handle.query(
                "status", result_type=result_type, rpc_timeout=RPC), 20)
        except Exception as exc:  # noqa: BLE001 - a journey that cannot answer is stuck
            statuses[play.workflow_id] = None
            verdict.notes.append(f"{play.workflow_id}: status query failed: {exc}")
        if outcome == "stuck":
            why = why_stuck(raw, failing_task, statuses[play.workflow_id])
            if play.error:
                why += f"; the bench's last action got no answer ({play.error[:100]})"
            verdict.stuck.append((play.workflow_id, why))
    else:
        outcome = "failed"
        message = ""
        if history.events and history.events[-1].event_type == \
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            message = history.events[-1].workflow_execution_failed_event_attributes \
                .failure.message
        verdict.failed.append((play.workflow_id, f"{status.name if status else '?'} {message}"))
    verdict.outcome[play.workflow_id] = outcome
    found = statuses.get(play.workflow_id)
    stage = str(getattr(found, "stage", "") or "")
    verdict.stage[play.workflow_id] = stage
    if outcome == "completed" and play.expected_stage and stage != play.expected_stage:
        verdict.otherwise.append((play.workflow_id, f"ended {stage}, the bench meant "
                                  f"{play.expected_stage}"))


async def replay_all(histories: dict[str, WorkflowHistory], verdict: Verdict) -> None:
    """Every journey's history replayed on the code the workers ran, as a worker
    that did not see it run (one restarted after a kill) would: a journey that
    does not replay fails its next task, or its next query, for good. Those
    already listed as loops are not counted twice."""
    looping = {wid for wid, _, _ in verdict.loops}
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(),
                        runtime=Runtime(telemetry=TelemetryConfig(logging=None)))

    async def each() -> Any:
        for history in histories.values():
            yield history

    # The journeys' own log lines were printed when they ran; not again.
    quiet = logging.getLogger("temporalio.workflow")
    quiet.disabled = True
    try:
        results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    finally:
        quiet.disabled = False
    run_ids = {h.events[0].workflow_execution_started_event_attributes
               .original_execution_run_id: wid for wid, h in histories.items() if h.events}
    for run_id, failure in results.replay_failures.items():
        wid = run_ids.get(run_id, run_id)
        if wid not in looping:
            message = str(failure).split('message: "', 1)[-1].split('"', 1)[0]
            verdict.replay_failures.append((wid, message[:160]))


def why_stuck(raw: Any, failing_task: bool, status: Any) -> str:
    if failing_task:
        return f"workflow task failing, attempt {raw.pending_workflow_task.attempt}"
    retrying = [a for a in raw.pending_activities if a.attempt > 1]
    if retrying:
        a = retrying[0]
        return (f"activity {a.activity_type.name} on attempt {a.attempt}: "
                f"{a.last_failure.message[:120]}")
    waiting = getattr(status, "waiting_for", None)
    stage = getattr(status, "stage", "?")
    return f"no progress: stage {stage}" + (f", waiting for {waiting}" if waiting else "")


def examine_store(database_url: str, plays: list[Play], statuses: dict[str, Any],
                  verdict: Verdict) -> dict[str, Any]:
    """Store against journey, and against what the people did. Returns the
    touches table's rows by key."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            touches = {row.key: row for row in conn.execute(select(
                schema.Touch.key, schema.Touch.workflow_id, schema.Touch.status,
                schema.Touch.channel, schema.Touch.reason))}
            contracts = {row.id: row for row in conn.execute(select(
                schema.Contract.id, schema.Contract.paid_minor, schema.Contract.amount_minor))}
            payments: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for row in conn.execute(select(schema.Payment.contract_id, schema.Payment.reference,
                                           schema.Payment.amount_minor)):
                payments[row.contract_id].append((row.reference, row.amount_minor))
            orders = dict(conn.execute(select(schema.Order.customer_id, func.count())
                                       .group_by(schema.Order.customer_id)).all())
            order_counts = dict(conn.execute(select(schema.Customer.id,
                                                    schema.Customer.order_count)).all())
            rejections = dict(conn.execute(select(schema.SignalRejection.workflow_id,
                                                  func.count())
                                           .group_by(schema.SignalRejection.workflow_id)).all())
    finally:
        engine.dispose()

    for play in plays:
        wid, status = play.workflow_id, statuses.get(play.workflow_id)
        if play.kind == "payment":
            contract = contracts.get(play.entity_id)
            rows = payments.get(play.entity_id, [])
            refs = Counter(ref for ref, _ in rows)
            twice = [ref for ref, n in refs.items() if n > 1]
            bench_paid = sum((a for _, a in play.paid), Decimal(0))
            unanswered = sum((a for _, a in play.paid_unanswered), Decimal(0))
            stored_paid = sum(a for _, a in rows)
            if twice:
                verdict.disagreements.append((wid, f"payment taken twice for {', '.join(twice)}"))
            if contract is None:
                if verdict.outcome.get(wid) != "failed":
                    verdict.disagreements.append((wid, "no contract row in the store"))
                continue
            if contract.paid_minor != stored_paid:
                verdict.disagreements.append((wid, f"contract paid {contract.paid_minor} minor "
                                              f"but payments add up to {stored_paid}"))
            if not int(bench_paid * 100) <= stored_paid <= int((bench_paid + unanswered) * 100):
                verdict.disagreements.append((wid, f"store has {stored_paid / 100:.2f} paid, "
                                              f"the customer paid {bench_paid}" + (
                                                  f" (and {unanswered} never answered)"
                                                  if unanswered else "")))
            if status is not None and int(status.paid * 100) != contract.paid_minor:
                verdict.disagreements.append((wid, f"journey says {status.paid} paid, store "
                                              f"{contract.paid_minor / 100:.2f}"))
            if status is not None and len(status.references) != len(rows):
                verdict.disagreements.append((wid, f"journey has {len(status.references)} "
                                              f"payments, store {len(rows)}"))
        elif play.kind == "lifecycle":
            stored = orders.get(play.entity_id, 0)
            counted = order_counts.get(play.entity_id)
            journey = getattr(status, "orders", None)
            if stored != play.orders or counted != play.orders or (
                    journey is not None and journey != play.orders):
                verdict.disagreements.append((wid, f"{play.orders} purchases made; store "
                                              f"orders {stored}, customer order_count "
                                              f"{counted}, journey {journey}"))
        if play.malformed_sent and rejections.get(wid, 0) < play.malformed_sent:
            verdict.disagreements.append((wid, f"malformed signal sent ("
                                          f"{', '.join(play.malformed_shapes)}), "
                                          f"{rejections.get(wid, 0)} rejection(s) stored"))
    return touches


def examine_touches(workdir: Path, touch_rows: dict[str, Any], verdict: Verdict) -> None:
    """What the sinks received against what the store says was sent."""
    received: Counter[str] = Counter()
    message_ids: dict[str, set[str]] = defaultdict(set)
    for sink in ("smtp", "webhook"):
        for record in read_jsonl(workdir / f"{sink}-received.jsonl"):
            key = record.get("key") or record.get("body_key")
            if not key:
                verdict.received_no_key += 1
                continue
            received[key] += 1
            verdict.received[sink] += 1
            if record.get("message_id"):
                message_ids[key].add(record["message_id"])
    for key, n in received.items():
        if n > 1:
            same = len(message_ids.get(key, ())) == 1
            verdict.duplicates.append((key, key.rsplit(":", 2)[0], n,
                                       "same Message-ID" if same else "distinct Message-IDs"
                                       if key in message_ids else "webhook, same key header"))
    repeated = [ids for key, ids in message_ids.items() if received[key] > 1]
    if not message_ids:
        verdict.message_ids = "no e-mail received"
    elif not repeated:
        verdict.message_ids = ("no e-mail was received twice, so whether its Message-ID stays "
                               "the same across attempts is not shown")
    elif all(len(ids) == 1 for ids in repeated):
        verdict.message_ids = ("an e-mail received twice kept its Message-ID: a receiver "
                               "can drop the repeat by it")
    else:
        verdict.message_ids = ("an e-mail received twice came with a new Message-ID: only "
                               "the X-Crm-Touch-Key header tells the repeat")
    for key, row in touch_rows.items():
        verdict.touches[row.status] += 1
        delivered_by_sink = row.channel in ("email", "chat")
        if row.status == "sent" and delivered_by_sink and key not in received:
            verdict.lost.append((key, row.channel, row.reason or ""))
        if row.status != "sent" and key in received:
            verdict.unrecorded.append(f"{key} ({row.status})")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


async def keep_evidence(client: Client, verdict: Verdict, directory: Path) -> None:
    """The history of every journey named in a finding, as the Temporal UI
    exports it, for replay and for reading."""
    named = {wid for wid, _ in verdict.stuck} | {wid for wid, _ in verdict.failed} | {
        wid for wid, _, _ in verdict.loops} | {wid for wid, _, _ in verdict.task_failures} | {
        wid for wid, _ in verdict.replay_failures} | {
        wid for wid, _ in verdict.disagreements} | {wid for _, wid, _, _ in verdict.duplicates} | {
        key.rsplit(":", 2)[0] for key, _, _ in verdict.lost}
    if not named:
        return
    histories: dict[str, str] = {}
    for wid in sorted(named):
        try:
            histories[wid] = (await client.get_workflow_handle(wid).fetch_history(
                rpc_timeout=RPC)).to_json()
        except RPCError:
            continue
    write_files(directory, {f"{wid}.json": text for wid, text in histories.items()})
    print(f"\nhistories of the {len(named)} journeys named above: {directory}")


def write_files(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, "utf-8")


# -- printing ---------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                           for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def ratio(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def listing(title: str, items: list[tuple[Any, ...]], limit: int = 15) -> None:
    print(f"\n{title}: {len(items)}")
    for item in items[:limit]:
        print("  " + " | ".join(str(x) for x in item))
    if len(items) > limit:
        print(f"  ... and {len(items) - limit} more")


def report(plays: list[Play], verdict: Verdict, faults: FaultLog, settled: str) -> None:
    print("\n== faults done ==")
    table(["fault", "count"], [[k, v] for k, v in sorted(faults.kinds.items())])
    print(f"\nquiescence: {settled}")

    print("\n== journeys ==")
    rows = []
    for kind in (*KINDS, "all"):
        mine = [p for p in plays if kind in (p.kind, "all")]
        got = Counter(verdict.outcome.get(p.workflow_id, "?") for p in mine)
        ended_ok = sum(1 for p in mine if verdict.outcome.get(p.workflow_id) == "completed"
                       and (not p.expected_stage
                            or verdict.stage.get(p.workflow_id) == p.expected_stage))
        refused = sum(len(p.refused) for p in mine)
        errors = sum(1 for p in mine if p.error)
        rows.append([kind, len(mine), got["completed"], ratio(got["completed"], len(mine)),
                     ended_ok, got["running"], got["stuck"], got["failed"], refused, errors])
    table(["journey", "started", "completed", "ratio", "as meant", "running (by design)",
           "stuck", "failed", "actions refused", "script errors"], rows)

    print("\n== the people's part ==")
    actions = Counter(a for p in plays for a in p.actions)
    table(["action", "done"], [[name, n] for name, n in sorted(actions.items())])
    print(f"  malformed signals among them: {sum(p.malformed_sent for p in plays)}; payments "
          f"told twice (same reference): {sum(p.told_twice for p in plays)}")

    print("\n== workflow tasks and activities (from the histories) ==")
    with_failures = {wid for wid, _, _ in verdict.task_failures}
    table(["event", "count", "journeys"], [
        ["WorkflowTaskFailed (journey code)", len(verdict.task_failures), len(with_failures)],
        ["workflow task failing now (loop)", len(verdict.loops), len(verdict.loops)],
        ["history does not replay (and no loop yet)", len(verdict.replay_failures),
         len(verdict.replay_failures)],
        *[[name, n, "-"] for name, n in sorted(verdict.timeouts.items())],
    ])
    causes = Counter((cause, message) for _, cause, message in verdict.task_failures)
    for (cause, message), n in causes.most_common(8):
        print(f"    {n} x {cause}: {message}")

    print("\n== touches ==")
    sent = verdict.touches.get("sent", 0)
    table(["figure", "count", "ratio"], [
        *[[f"store: {status}", n, ratio(n, sum(verdict.touches.values()))]
          for status, n in sorted(verdict.touches.items())],
        ["received at the SMTP sink", verdict.received.get("smtp", 0), "-"],
        ["received at the webhook sink", verdict.received.get("webhook", 0), "-"],
        ["received without a touch key", verdict.received_no_key, "-"],
        ["duplicate deliveries (keys)", len(verdict.duplicates), ratio(len(verdict.duplicates),
                                                                       sent)],
        ["sent in the store, never received", len(verdict.lost), ratio(len(verdict.lost), sent)],
        ["received, not recorded sent", len(verdict.unrecorded), "-"],
    ])
    print("  (keys are read from the X-Crm-Touch-Key header of each e-mail and webhook call; "
          f"\n   {verdict.message_ids};\n   touches on other "
          "channels go to the outbox file and are not counted)")

    listing("stuck journeys", verdict.stuck)
    listing("failed journeys", verdict.failed)
    listing("workflow task failure loops (id, attempt, last failure)", verdict.loops)
    listing("histories that do not replay on this code (id, first failure)",
            verdict.replay_failures)
    listing("duplicate deliveries (key, journey, times received, what a receiver sees)",
            verdict.duplicates)
    listing("touches recorded sent, never received (key, channel, store reason)", verdict.lost)
    listing("store vs journey disagreements", verdict.disagreements)
    refused = [(p.workflow_id, r) for p in plays for r in p.refused]
    if refused:
        listing("people's actions the journey refused (not counted)", refused, limit=8)
    if verdict.otherwise:
        listing("ended otherwise than the bench meant (not counted as failures)",
                verdict.otherwise, limit=8)
    if verdict.unrecorded:
        listing("received, store says not sent (not counted)",
                [(u,) for u in verdict.unrecorded], limit=8)
    errors = [(p.workflow_id, p.error) for p in plays if p.error]
    if errors:
        listing("the bench's own scripts that gave up (not counted)", errors, limit=8)
    if verdict.notes:
        listing("notes", [(n,) for n in verdict.notes], limit=8)


# -- the run ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    run = uuid.uuid4().hex[:5]
    workdir = Path(tempfile.mkdtemp(prefix="crm-chaos-"))
    print(f"chaos: {args.journeys} journeys, {args.minutes} min of faults, {args.workers} "
          f"workers, code {code_version()}; work directory {workdir}", flush=True)
    pg = PgCluster()
    processes: list[Process] = []
    env: WorkflowEnvironment | None = None
    verdict = Verdict()
    try:
        pg.create()
        migrate_store(pg.url)
        plays = make_plays(args.journeys, run)
        store = Store.from_url(pg.url)
        seed(store, plays)
        store.dispose()

        with stdout_to_devnull():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(), search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter(), dev_server_log_level="error")
        client = env.client
        address = client.service_client.config.target_host

        smtp_port, webhook_port = free_port(), free_port()
        smtp, webhook = sink_process("smtp", smtp_port, workdir), sink_process(
            "webhook", webhook_port, workdir)
        environment = worker_env(workdir=workdir, temporal=address,
                                 database_url=pg.url, smtp_port=smtp_port,
                                 webhook_port=webhook_port)
        workers = [worker_process(n, workdir, environment)
                   for n in range(1, args.workers + 1)]
        processes = [smtp, webhook, *workers]
        faults = FaultLog()
        stack = Stack(pg=pg, smtp=smtp, webhook=webhook, smtp_port=smtp_port,
                      webhook_port=webhook_port, workers=workers, log=faults)
        await stack.start_sink(smtp, smtp_port)
        await stack.start_sink(webhook, webhook_port)
        for worker in workers:
            worker.start()
        print(f"temporal {address}, postgres :{pg.port}, smtp :{smtp_port}, webhook "
              f":{webhook_port}, workers pids {[w.pid for w in workers]}", flush=True)

        people = People(client=client, rng=random.Random(args.seed), run=run,
                        malformed=args.malformed)
        window = args.minutes * 60
        faults.started = time.monotonic()
        spacing = window * 0.6 / max(1, len(plays))
        scripts = [asyncio.create_task(people.play(p, i, faults.started + i * spacing))
                   for i, p in enumerate(plays)]
        print("faults:", flush=True)
        await run_faults(stack, args)
        await asyncio.sleep(max(0.0, faults.started + window - time.monotonic()))
        await stack.restore()
        faults.note("fault window over: everything up")

        settled = await settle(client, plays, limit=args.settle_minutes * 60,
                               quiet=args.quiet_seconds)
        faults.note(f"settled: {settled}")
        for task in scripts:
            task.cancel()
        await asyncio.gather(*scripts, return_exceptions=True)

        statuses: dict[str, Any] = {}
        histories: dict[str, WorkflowHistory] = {}
        gate = asyncio.Semaphore(20)

        async def examine(play: Play) -> None:
            async with gate:
                await examine_journey(client, play, verdict, statuses, histories)

        await asyncio.gather(*(examine(p) for p in plays))
        await replay_all(histories, verdict)
        touches = examine_store(pg.url, plays, statuses, verdict)
        examine_touches(workdir, touches, verdict)
        report(plays, verdict, faults, settled)
        await keep_evidence(client, verdict, workdir / "histories")
    finally:
        for process in processes:
            process.terminate(10.0)
        if env is not None:
            await env.shutdown()
        pg.destroy()
        failed = verdict.failures > 0
        if args.keep or failed:
            print(f"\nwork directory kept: {workdir} (worker logs, sink logs)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'FAIL' if verdict.failures else 'OK'}: {verdict.failures} problems "
          f"(stuck {len(verdict.stuck)}, failed {len(verdict.failed)}, loops "
          f"{len(verdict.loops)}, not replaying {len(verdict.replay_failures)}, duplicates "
          f"{len(verdict.duplicates)}, lost touches {len(verdict.lost)}, disagreements "
          f"{len(verdict.disagreements)})")
    return 1 if verdict.failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the fault window")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=20.0,
                        help="seconds between kill -9 of a worker (0: none)")
    parser.add_argument("--restart-after", type=float, default=2.0,
                        help="seconds a killed worker stays down")
    parser.add_argument("--pg-restarts", type=int, default=2)
    parser.add_argument("--pg-stop-seconds", type=float, default=30.0)
    parser.add_argument("--sink-down-seconds", type=float, default=60.0)
    parser.add_argument("--no-sigterm", dest="sigterm", action="store_false")
    parser.add_argument("--settle-minutes", type=float, default=5.0)
    parser.add_argument("--quiet-seconds", type=float, default=90.0,
                        help="no progress this long after the scripts end counts as settled")
    parser.add_argument("--malformed", type=float, default=0.1,
                        help="share of journeys sent one malformed signal")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
