"""SLA lateness: how long after its deadline a ticket's escalation is in the store.

    python -m bench.ticket [--tickets 1000] [--spread 60] [--lead-in S] [--warning 60]
                           [--scenario both|spread|instant] [--database-url URL] [--sinks]

Starts a local Temporal dev server (with the Crm* search attributes) and the
real worker (`worker.build_worker`: real activities, a real store — SQLite in a
temporary directory unless --database-url names a PostgreSQL server — and real
delivery through apprise, to the local outbox file, or with --sinks to a local
SMTP server and webhook receiver running in this process). Then two
scenarios of N open tickets each, none of which is ever answered:

- spread: the first-response deadlines fall evenly over `--spread` seconds;
- instant: all N deadlines fall at one instant (reported without a target).

How the deadlines are placed. Every ticket of a scenario is opened with the
same `opened_at` (a moment just before the first start; the journey runs its
SLA from then) and its own first-response policy in the start input, so that
ticket i falls due at exactly T0 + i * spread / N (or T0 for all), T0 being
`--lead-in` seconds after `opened_at`: long enough to open every ticket first
(recorded, routed, the assignee told; by default the lead-in is worked out
from a first batch of 60). The warning goes out `--warning` seconds before
each deadline: as in production (5 minutes before a 15-minute deadline), the
warnings for a minute's deadlines go out before that minute. The manager
level and the resolution targets lie beyond the run.
The intended deadline is the one the journey computed and stored
(`tickets.first_response_due`); the bench checks it is the one it meant.

How lateness is measured. An escalation's `at` is workflow time (the moment
its workflow task ran), so it says nothing of the activity that records it.
The worker runs in this process, so SQLAlchemy session events here see each
unit of work: a ticket_events row of kind `escalated` seen in a flush is
stamped with the wall clock when its transaction *commits*. Lateness =
commit time - deadline, on the one clock of this machine (the dev server's
timers run on it too). Beside it: `at` - deadline (timer firing plus the
workflow task), and the `recorded_at` column the activity fills with the
wall clock as it writes the row (before the commit, so it may be earlier).

Prints median, p99 and max for both scenarios (target: p99 <= 1 s for
spread), and the CPU spent per ticket from the first warning to the last
escalation by this process (worker and client) and by the dev server, beside
the machine's cores and load: the worker, the dev server and anything else on
the machine share its cores. It reports; it asserts nothing. A run takes
about five minutes on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from activities.store.customers import CustomerRecord, add_customer
from activities.store.staff import StaffMember, add_staff
from bench.lead_infra import (
    bench_settings,
    crm_database,
    running_sinks,
    server_cpu_seconds,
    temporal_binary,
)
from bench.quiet import stdout_to_devnull
from bench.ticket_lateness import CommitClock, Result, print_results
from domain import schema
from domain.policy import MessagingPolicy, QuietHours
from domain.settings import Settings
from domain.tickets import TicketInput, TicketPolicy, ticket_workflow_id
from starter.client import Journeys, data_converter
from worker import ACTIVITY_THREADS, build_worker
from workflows.kit import SEARCH_ATTRIBUTES

NO_QUIET_HOURS = MessagingPolicy(quiet_hours=QuietHours(enabled=False))
GROUP = "technical"
AGENTS = 20
CUSTOMER = "bench-customer"


# -- the run ----------------------------------------------------------------------------


def seed(store: Store) -> None:
    now = datetime.now(UTC)
    add_staff(store, StaffMember(id="bench-mgr", name="Bench Manager", role="manager",
                                 chat="bench-mgr"), now=now)
    add_staff(store, StaffMember(id="bench-sup", name="Bench Supervisor", role="supervisor",
                                 group=GROUP, manager_id="bench-mgr", chat="bench-sup"), now=now)
    for k in range(1, AGENTS + 1):
        add_staff(store, StaffMember(id=f"bench-agent-{k:02d}", name=f"Agent {k:02d}",
                                     role="agent", group=GROUP, seniority=k % 5,
                                     capacity=10_000, manager_id="bench-sup",
                                     chat=f"bench-agent-{k:02d}"), now=now)
    add_customer(store, CustomerRecord(id=CUSTOMER, name="Bench Customer",
                                       email="bench.customer@example.com"), now=now)


async def opened(store: Store, ticket_ids: set[str], *, give_up: float) -> None:
    """Until every ticket is opened: recorded, routed and its assignee told. Only
    then is the worker idle again, waiting for the deadlines."""
    workflow_ids = [ticket_workflow_id(t) for t in ticket_ids]
    started = time.perf_counter()
    while time.perf_counter() - started < give_up:
        with store.unit_of_work() as session:
            sent = session.scalar(select(func.count()).select_from(schema.Touch).where(
                schema.Touch.workflow_id.in_(workflow_ids),
                schema.Touch.step == "ticket_assigned", schema.Touch.status == "sent"))
        if sent == len(ticket_ids):
            return
        await asyncio.sleep(0.5)


async def end_all(journeys: Journeys, ticket_ids: set[str], concurrency: int) -> None:
    """Ends the journeys, so that what runs next runs on an idle server."""
    gate = asyncio.Semaphore(concurrency)

    async def end(ticket_id: str) -> None:
        async with gate:
            try:
                await journeys.ticket(ticket_id).terminate("benchmark over")
            except Exception:  # noqa: BLE001 - already ended
                pass

    await asyncio.gather(*(end(t) for t in ticket_ids))


async def calibrate(journeys: Journeys, store: Store, *, concurrency: int,
                    tickets: int = 60) -> float:
    """Seconds per ticket to open a batch on this machine now (deadlines far off)."""
    run = uuid.uuid4().hex[:6]
    ids = {f"calibrate-{run}-{i:03d}" for i in range(tickets)}
    started = time.perf_counter()
    await asyncio.gather(*(journeys.open_ticket(TicketInput(
        ticket_id=t, customer_id=CUSTOMER, type="technical", subject="calibration",
        policy=TicketPolicy(first_response=timedelta(hours=1)))) for t in ids))
    await opened(store, ids, give_up=300)
    per_ticket = (time.perf_counter() - started) / tickets
    await end_all(journeys, ids, concurrency)
    return per_ticket


async def run_scenario(name: str, journeys: Journeys, store: Store, clock: CommitClock, *,
                       tickets: int, spread: float, lead_in: float, warning: float,
                       concurrency: int, offset: Callable[[int], float]) -> Result:
    run = uuid.uuid4().hex[:6]
    opened_at = datetime.now(UTC)
    t0 = opened_at + timedelta(seconds=lead_in)
    intended = {f"{name}-{run}-{i:04d}": t0 + timedelta(seconds=offset(i))
                for i in range(tickets)}
    gate = asyncio.Semaphore(concurrency)

    async def open_one(ticket_id: str, due: datetime) -> None:
        policy = TicketPolicy(first_response=due - opened_at,
                              warning_before=timedelta(seconds=warning),
                              manager_after=timedelta(hours=1))
        async with gate:
            await journeys.open_ticket(TicketInput(
                ticket_id=ticket_id, customer_id=CUSTOMER, type="technical",
                priority="normal", subject=f"Bench ticket {ticket_id}", channel="web",
                opened_at=opened_at, policy=policy))

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(open_one(t, due) for t, due in intended.items()))
    ids = set(intended)
    await opened(store, ids, give_up=lead_in + 120)
    start_seconds = time.perf_counter() - started
    first_due = min(intended.values())
    print(f"  {name}: {tickets} tickets opened (routed, assignee told) in {start_seconds:.1f} s; "
          f"first deadline in {(first_due - datetime.now(UTC)).total_seconds():.1f} s")
    if datetime.now(UTC) > first_due - timedelta(seconds=warning):
        print(f"  {name}: WARNING: opening took longer than the lead-in allows (raise "
              "--lead-in): the warnings overlap the opening, and the figures include it")

    last_due = max(intended.values())
    give_up = last_due + timedelta(seconds=120)
    await asyncio.sleep(max(0.0, (first_due - timedelta(seconds=warning + 1)
                                  - datetime.now(UTC)).total_seconds()))
    cpu_opened, server_opened = time.process_time(), server_cpu_seconds()
    while clock.count(ids) < tickets and datetime.now(UTC) < give_up:  # noqa: ASYNC110
        await asyncio.sleep(0.5)  # the commits happen in activity threads: polled
    cpu_window = time.process_time() - cpu_opened
    server_now = server_cpu_seconds()
    server_window = (server_now - server_opened
                     if server_now is not None and server_opened is not None else None)
    await asyncio.sleep(1)  # rows committed just now: let their readers see them

    with store.unit_of_work() as session:
        stored = dict(session.execute(
            select(schema.Ticket.id, schema.Ticket.first_response_due)
            .where(schema.Ticket.id.in_(ids))).all())
        rows = session.execute(
            select(schema.TicketEvent.ticket_id, schema.TicketEvent.at,
                   schema.TicketEvent.recorded_at)
            .where(schema.TicketEvent.ticket_id.in_(ids),
                   schema.TicketEvent.kind == "escalated")).all()
    escalated = {ticket_id: (at, recorded) for ticket_id, at, recorded in rows}
    lateness, timer, written, profile = [], [], [], []
    for ticket_id, (at, recorded) in escalated.items():
        due = stored[ticket_id]
        committed = clock.committed.get(ticket_id)
        if committed is not None:
            lateness.append((committed - due).total_seconds())
            profile.append(((due - first_due).total_seconds(), lateness[-1]))
        timer.append((at - due).total_seconds())
        written.append((recorded - due).total_seconds())
    deadline_error = max(abs((stored[t] - intended[t]).total_seconds()) for t in stored)

    await end_all(journeys, ids, concurrency)
    return Result(name=name, tickets=tickets, start_seconds=start_seconds, lateness=lateness,
                  timer=timer, written=written, deadline_error=deadline_error,
                  missing=tickets - len(lateness), cpu_opening=cpu_opened - cpu_started,
                  cpu_window=cpu_window, server_window=server_window, profile=sorted(profile))


async def main(args: argparse.Namespace) -> int:
    total = time.perf_counter()
    load_before = os.getloadavg()
    clock = CommitClock()
    clock.install()
    with (tempfile.TemporaryDirectory(prefix="crm-bench-ticket-") as tmp,
          crm_database(args.database_url, Path(tmp)) as database_url,
          ExitStack() as stack):
        store = Store.from_url(database_url)
        try:
            seed(store)
            if args.sinks:
                smtp, webhook = stack.enter_context(running_sinks())
                settings = bench_settings(Path(tmp), database_url, smtp, webhook)
            else:
                settings = Settings(database_url=database_url,
                                    outbox_path=Path(tmp) / "outbox.log",
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
                results = await run_all(env.client, settings, store, clock, args)
            finally:
                await env.shutdown()
        finally:
            store.dispose()
    print(f"store {make_url(database_url).get_backend_name()}, {args.threads} activity "
          f"threads, delivery to {'the SMTP/webhook sinks' if args.sinks else 'the outbox'}; "
          f"whole run {time.perf_counter() - total:.0f} s")
    print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after")
    print_results(results)
    return 0


async def run_all(client: Client, settings: Any, store: Store, clock: CommitClock,
                  args: argparse.Namespace) -> list[Result]:
    task_queue = f"bench-ticket-{uuid.uuid4().hex[:8]}"
    n, spread = args.tickets, args.spread
    scenarios: list[tuple[str, Callable[[int], float]]] = [
        ("spread", lambda i: spread * i / n),
        ("instant", lambda i: 0.0),
    ]
    results = []
    with ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="bench") as executor:
        worker = build_worker(client, settings, store, task_queue=task_queue,
                              executor=executor, messaging_policy=NO_QUIET_HOURS)
        async with worker:
            journeys = Journeys(client, task_queue=task_queue)
            lead_in = args.lead_in
            if lead_in is None:
                per_ticket = await calibrate(journeys, store, concurrency=args.concurrency)
                # Opening must be over, and the dev server done with its
                # aftermath (visibility, timers), before the first warning:
                # otherwise the figures measure the opening rush. Opening a
                # thousand slows as it goes, hence twice the calibrated time.
                lead_in = args.warning + 30 + 2 * per_ticket * n
                print(f"calibration: opening takes {per_ticket * 1000:.0f} ms per ticket here")
            print(f"ticket SLA lateness: {n} tickets per scenario, deadlines "
                  f"{lead_in:.0f} s after opening, warning {args.warning:.0f} s before")
            for name, offset in scenarios:
                if args.scenario not in ("both", name):
                    continue
                results.append(await run_scenario(
                    name, journeys, store, clock, tickets=n, spread=spread,
                    lead_in=lead_in, warning=args.warning,
                    concurrency=args.concurrency, offset=offset))
    with store.unit_of_work() as session:
        escalations = session.scalar(select(func.count()).select_from(schema.Escalation))
    print(f"escalation rows in the store: {escalations}")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ticket",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1000, help="open tickets per scenario")
    parser.add_argument("--spread", type=float, default=60.0,
                        help="seconds over which the spread scenario's deadlines fall")
    parser.add_argument("--lead-in", type=float, default=None,
                        help="seconds from opening to the first deadline (default: enough "
                             "to open every ticket before the first warning, measured on a "
                             "first batch)")
    parser.add_argument("--warning", type=float, default=60.0,
                        help="the assignee's warning, seconds before each deadline (by "
                             "default the warnings, like production's 5 minutes before a "
                             "15-minute deadline, go out before the escalations begin)")
    parser.add_argument("--sinks", action="store_true",
                        help="deliver to a local SMTP server and webhook receiver (in this "
                             "process) instead of the outbox file")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="ticket starts in flight at once")
    parser.add_argument("--threads", type=int, default=ACTIVITY_THREADS,
                        help="activity threads of the worker (default: the worker's own)")
    parser.add_argument("--scenario", choices=["both", "spread", "instant"], default="both")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server, e.g. "
                             "postgresql://postgres@127.0.0.1:5432/postgres (a throwaway "
                             "database is created there); default: SQLite in a temp dir")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
