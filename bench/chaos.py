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

This module is the run itself and its flags. The pieces: `bench.chaos_people`
(the journeys, the people who play them, the store seeded for them),
`bench.chaos_faults` (the fault schedule, and the wait for the journeys to
settle), `bench.chaos_checks` (what is found afterwards, and the verdict),
`bench.chaos_report` (the printed report), `bench.chaos_infra` (the processes)
and `bench.chaos_sinks` (the delivery sinks).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from bench.chaos_checks import (
    Verdict,
    examine_journey,
    examine_store,
    examine_touches,
    keep_evidence,
    replay_all,
)
from bench.chaos_faults import FaultLog, Stack, run_faults, settle
from bench.chaos_infra import (
    PgCluster,
    Process,
    code_version,
    free_port,
    migrate_store,
    sink_process,
    temporal_binary,
    worker_env,
    worker_process,
)
from bench.chaos_people import People, Play, make_plays, seed
from bench.chaos_report import report
from bench.quiet import stdout_to_devnull
from starter.client import data_converter
from workflows.kit import SEARCH_ATTRIBUTES


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
