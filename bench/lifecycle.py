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
   visibility and its order is in the store. The worker keeps up to
   `max_cached_workflows` journeys in memory between their tasks ("sticky"
   cache; the settings' `CRM_WORKFLOW_CACHE_SIZE`, default 0, unless
   --max-cached-workflows); a journey not in the cache costs nothing here and
   is rebuilt by replaying its history when it next has work.
2. Latency: M purchases to existing journeys, half to the most recently
   active (still cached) and half to the oldest (evicted from the cache when
   there are more journeys than it holds, so their next task replays their
   history); with no cache, to journeys drawn from all, every one replayed;
   --in-flight senders, each waiting for its order row before
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
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from bench.lifecycle_infra import (
    SlowTasks,
    children,
    cpu_of,
    cpu_seconds,
    make_worker,
    quiet_runtime,
    rss_mb,
    status_kb,
    store_url,
    temporal_binary,
)
from bench.lifecycle_journeys import (
    POLL_S,
    latency_groups,
    pct,
    purchase,
    signal_latency,
    start_journeys,
    wait_until_resting,
)
from bench.postgres import say
from bench.quiet import stdout_to_devnull
from domain.settings import Settings
from starter.client import Journeys, data_converter
from worker import ACTIVITY_THREADS
from workflows.kit import SEARCH_ATTRIBUTES

# -- the run ----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    run = f"b{uuid.uuid4().hex[:6]}"
    with (tempfile.TemporaryDirectory(prefix="crm-bench-life-") as tmp,
          store_url(args.database_url, Path(tmp)) as url):
        store = Store.from_url(url)
        # --max-cached-workflows as the setting, so the worker is the real one either way.
        sized = ({} if args.max_cached_workflows is None
                 else {"workflow_cache_size": args.max_cached_workflows})
        settings = Settings(database_url=url, outbox_path=Path(tmp) / "outbox.log",
                            quiet_hours_enabled=False, log_level="WARNING",
                            _env_file=None, **sized)  # type: ignore[call-arg]
        cache = settings.workflow_cache_size
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
            say(f"dev server up; store {store.engine.url.get_backend_name()}; "
                f"{args.workflows:,} journeys, max_cached_workflows {cache}"
                f"{'' if args.max_cached_workflows is not None else ' (the setting)'}"
                ", workflow runner "
                f"{'unsandboxed (diagnosis only)' if args.unsandboxed else 'sandboxed (default)'}")
            gc.collect()
            rss_before = rss_mb()
            with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS,
                                    thread_name_prefix="crm-activity") as executor:
                worker = make_worker(client, settings, store, task_queue=task_queue,
                                     executor=executor,
                                     max_cached=cache if args.unsandboxed else None,
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

                    groups = latency_groups(args.workflows, args.purchases, cache)
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
    held = min(resting, cache)
    print(f"  growth with {resting:,} journeys at rest: {rss_rest - rss_idle:.0f} MB = "
          f"{per_k:.1f} MB per 1,000 journeys; the cache (max_cached_workflows "
          f"{cache}) holds {held:,} of them"
          + (f": {(rss_rest - rss_idle) / held * 1000:.0f} MB per 1,000 cached; " if held
             else "; ")
          + f"dev server RSS {server_mb:.0f} MB")
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
                        help="the worker's workflow cache (default: the settings', "
                             "CRM_WORKFLOW_CACHE_SIZE, 0: every task replayed)")
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
