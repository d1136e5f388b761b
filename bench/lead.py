"""Lead journeys per second, end to end, beside a no-op twin of the same shape.

    python -m bench.lead [--journeys N] [--concurrency C] [--database-url URL]
                         [--workers N]

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

With --workers N the real variant runs on N worker processes instead
(`worker.py` as in production, configured by environment, on one task queue of
the one dev server) and the no-op twin is not run: journeys per second of the
real journeys, with the CPU split between the workers, the dev server,
PostgreSQL (every `postgres` process on the machine) and this process (client
and sinks), and the same duplicate check. The bench learns each lead's owner
from the staff notice at the webhook sink.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from bench.lead_history import activity_profile, history, print_event_types, print_profiles, spread
from bench.lead_infra import (
    PRODUCT_LINE,
    REGION,
    bench_settings,
    check_welcomes,
    crm_database,
    postgres_cpu_seconds,
    running_sinks,
    seed_staff,
    server_cpu_seconds,
    temporal_binary,
)
from bench.lead_report import Batch, merge, print_cpu_ratio, print_cpu_split, print_rates
from bench.lead_workers import (
    Assignments,
    NoopLeadActivities,
    NoticingHooks,
    activities_journey_calls,
    noop_worker,
    real_worker,
    worker_processes,
)
from bench.lifecycle_infra import children, cpu_of
from bench.quiet import stdout_to_devnull
from domain.leads import (
    Convert,
    LeadInput,
    LeadStage,
    LeadStatus,
    LogContact,
    lead_workflow_id,
)
from domain.settings import Settings
from starter.client import Journeys, data_converter
from tests.sinks import SmtpSink, WebhookSink
from worker import ACTIVITY_THREADS
from workflows.kit import SEARCH_ATTRIBUTES

JOURNEY_TIMEOUT_S = 120.0


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


@dataclass
class CpuSplit:
    """Where the CPU goes when the workers are processes of their own: the dev
    server's pids apart from the workers', and PostgreSQL's."""

    server: list[int]
    workers: list[int]

    def read(self) -> tuple[float | None, float | None, float | None]:
        return cpu_of(self.server), cpu_of(self.workers), postgres_cpu_seconds()


def _spent(after: float | None, before: float | None) -> float | None:
    return after - before if after is not None and before is not None else None


async def run_batch(variant: str, journeys: Journeys, assignments: Assignments,
                    leads: list[LeadInput], concurrency: int,
                    split: CpuSplit | None = None) -> Batch:
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
    split_before = split.read() if split else (None, None, None)
    started = time.perf_counter()
    await asyncio.gather(*(bounded(lead) for lead in leads))
    seconds = time.perf_counter() - started
    server_after = server_cpu_seconds()
    batch = Batch(variant=variant, journeys=len(leads), seconds=seconds,
                  lead_ids=[lead.lead_id for lead in leads], failures=failures,
                  cpu_here=time.process_time() - cpu_before,
                  cpu_server=_spent(server_after, server_before))
    if split:  # the dev server apart from the worker processes, also its children
        batch.cpu_server, batch.cpu_workers, batch.cpu_postgres = (
            _spent(a, b) for a, b in zip(split.read(), split_before, strict=True))
    return batch


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
                  journeys: int, rounds: int, warmup: int, concurrency: int,
                  split: CpuSplit | None = None) -> None:
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
                                                   variant.leads(run, size), concurrency,
                                                   split))


# -- the run -----------------------------------------------------------------------


async def measure_twins(args: argparse.Namespace, client: Client, settings: Settings,
                        store: Store, assignments: Assignments, *, run: str,
                        store_name: str, smtp: SmtpSink, webhook: WebhookSink) -> bool:
    """The real worker and its no-op twin in this process, in alternating rounds;
    True if journeys failed."""
    print(f"lead journeys: {args.journeys} per variant after {args.warmup} warm-up, "
          f"in {args.rounds} alternating rounds, concurrency {args.concurrency}, "
          f"{args.threads} activity threads, store {store_name}")
    twin_lacks = activities_journey_calls() - {
        fn.__name__ for fn in NoopLeadActivities(assignments).all()
    }
    if twin_lacks:
        raise SystemExit(f"LeadJourney calls {', '.join(sorted(twin_lacks))}, which "
                         "the no-op twin in bench/lead_workers.py does not have yet")
    async with (noop_worker(client, threads=args.threads,
                            assignments=assignments) as noop_queue,
                real_worker(client, settings, store, threads=args.threads,
                            assignments=assignments) as real_queue):
        # Started as the command line starts them: the policy in the input.
        variants = [Variant("noop", Journeys(client, task_queue=noop_queue,
                                             settings=settings)),
                    Variant("real", Journeys(client, task_queue=real_queue,
                                             settings=settings))]
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
    return bool(real.failures or noop.failures)


async def measure_processes(args: argparse.Namespace, client: Client, settings: Settings,
                            assignments: Assignments, *, run: str, workdir: Path,
                            database_url: str, store: Store, smtp: SmtpSink,
                            webhook: WebhookSink) -> bool:
    """The real journeys on --workers worker processes; True if journeys failed."""
    server = children()  # the dev server, before any worker process is started
    webhook.hooks = NoticingHooks(assignments)
    async with worker_processes(client, args.workers, workdir=workdir, database_url=database_url,
                                smtp_port=smtp.port,
                                webhook_port=webhook.server.server_address[1]) as (queue, pids):
        # Started as the command line starts them: the policy in the input.
        variant = Variant("real", Journeys(client, task_queue=queue, settings=settings))
        await measure([variant], assignments, run=run, journeys=args.journeys,
                      rounds=args.rounds, warmup=args.warmup, concurrency=args.concurrency,
                      split=CpuSplit(server=server, workers=pids))
    real = merge(variant.batches)
    print()
    print_rates([real])
    print_cpu_split(real, args.workers)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if variant.warm_failures:
        print(f"warm-up: {len(variant.warm_failures)} journeys failed, "
              f"e.g. {variant.warm_failures[0]}")
    sample = min(args.profile_sample, args.journeys)
    print_profiles({"real": await activity_profile(client, spread(real.lead_ids, sample))},
                   sample)
    check_welcomes(smtp, webhook, variant.warmed + real.lead_ids, store)
    return bool(real.failures)


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
                if args.workers:
                    print(f"lead journeys: {args.journeys} on {args.workers} worker processes "
                          f"after {args.warmup} warm-up, in {args.rounds} rounds, concurrency "
                          f"{args.concurrency}, store {store_name}; load average before "
                          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
                    failed = await measure_processes(
                        args, client, settings, assignments, run=run, workdir=workdir,
                        database_url=database_url, store=store, smtp=smtp, webhook=webhook)
                else:
                    failed = await measure_twins(args, client, settings, store, assignments,
                                                 run=run, store_name=store_name, smtp=smtp,
                                                 webhook=webhook)
            finally:
                await env.shutdown()
        finally:
            store.dispose()
    print(f"\nwhole run: {time.perf_counter() - total_started:.1f} s")
    return 1 if failed else 0


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
    parser.add_argument("--workers", type=int, default=0,
                        help="run the real journeys on this many worker processes (worker.py, "
                             "configured by environment) and no no-op twin; default: the "
                             "real worker and the twin in this process")
    parser.add_argument("--profile-sample", type=int, default=50,
                        help="journeys per variant whose histories give the activity timings")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
