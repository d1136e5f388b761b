"""Runs the CRM journey worker: every journey and activity on task queue `crm-journeys`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.delivery import AppriseDeliverer, TemplateRenderer
from activities.failures import ShortFailures
from activities.journal import JournalActivities
from activities.logs import mask_secrets
from activities.messaging import MessagingActivities
from activities.parts import ActivityParts, build_journey_activities, defined
from activities.segments import SegmentActivities
from activities.store import Store
from domain.registry import JOURNEYS, load
from domain.segments import SegmentPolicy, SegmentRefreshRequest
from domain.settings import Settings
from starter.client import connect
from starter.codec import CodecKeyError, key_ring

# Every journey's workflow, and the workflows its activities start, as the
# registry lists them.
WORKFLOWS: list[type] = [load(path) for entry in JOURNEYS
                          for path in (entry.workflow, *entry.more_workflows)]
# The daily segment refresh (not a journey: no entity, no signals).
WORKFLOWS.append(load("workflows.segments:SegmentRefresh"))
# Activities are synchronous (SQLAlchemy, apprise) and run on this many threads.
ACTIVITY_THREADS = 32
# On SIGTERM running activities get this long to finish before their tasks are
# handed back to the server for another worker.
GRACEFUL_SHUTDOWN = timedelta(seconds=30)
# A worker still shutting down this long after SIGTERM is held by something
# that will not finish (an activity stuck in I/O, a workflow task stuck in a
# potential deadlock, whose thread cannot be interrupted): it exits anyway,
# with EXIT_FORCED, and the server hands its work to another worker. It stays
# under docker-compose.yml's stop_grace_period (45 s), so the worker says why
# before it is killed.
SHUTDOWN_LIMIT = GRACEFUL_SHUTDOWN + timedelta(seconds=10)
EXIT_FORCED = 2
# The segment refresh runs this long after the RFM sweep starts.
SEGMENTS_AFTER_RFM_MINUTES = 30


class JsonLogFormatter(logging.Formatter):
    """One JSON line per event, with the workflow id, journey and activity when known."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            # Apprise URLs carry passwords, and apprise quotes them in its messages.
            "message": mask_secrets(record.getMessage()),
        }
        for attr in ("temporal_workflow", "temporal_activity"):
            info = getattr(record, attr, None)
            if isinstance(info, dict):
                line["workflow_id"] = info.get("workflow_id")
                line["workflow_type"] = info.get("workflow_type")
                if "activity_type" in info:
                    line["activity"] = info["activity_type"]
                    line["attempt"] = info.get("attempt")
        if line.get("workflow_id"):
            line["journey"] = str(line["workflow_id"]).split("-", 1)[0]
        for field in ("step", "touch_key", "stage"):
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["error"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def build_activities(settings: Settings, store: Store, client: Client | None = None,
                     task_queue: str | None = None, **overrides: Any) -> list[Any]:
    """Every activity, as bound methods of classes that receive their
    dependencies: the send path, the journal, and each journey's (the
    registry's), with its policy from the settings unless `overrides` give
    one (`lead_policy=…`); `deliverer`, `messaging_policy`, `after_delivery`
    and `before_delivery` override the send path's."""
    messaging = MessagingActivities(
        store=store,
        renderer=TemplateRenderer(settings.templates_dir, default_locale=settings.default_locale),
        deliverer=overrides.get("deliverer") or AppriseDeliverer(settings.channel_url),
        policy=overrides.get("messaging_policy") or settings.messaging_policy,
        after_delivery=overrides.get("after_delivery"),
        before_delivery=overrides.get("before_delivery"),
    )
    parts = ActivityParts(store=store, settings=settings, client=client,
                          task_queue=task_queue or settings.task_queue)
    journeys = [
        build_journey_activities(
            load(entry.activities), parts,
            overrides.get(f"{entry.name}_policy")
            or settings.policy_for(entry.name, load(entry.policy)))
        for entry in JOURNEYS
    ]
    segments = SegmentActivities(store=store, policy=overrides.get("segment_policy")
                                 or settings.policy_for("segment", SegmentPolicy))
    return defined(messaging, JournalActivities(store=store), *journeys, segments)


def build_worker(
    client: Client,
    settings: Settings,
    store: Store,
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor,
    **overrides: Any,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings, store, client, task_queue, **overrides),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        # An activity failure reaches history short, whatever raised it.
        interceptors=[ShortFailures()],
        max_cached_workflows=settings.workflow_cache_size,
    )


def metrics_runtime(settings: Settings) -> Runtime | None:
    """Starts the engine's metrics endpoint; returns a Temporal runtime that
    exports the SDK's own metrics on the other port (or None for the default)."""
    if settings.metrics_port:
        from prometheus_client import start_http_server

        import activities.metrics  # noqa: F401 - registers the engine's metrics

        start_http_server(settings.metrics_port)
    if not settings.temporal_metrics_port:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"0.0.0.0:{settings.temporal_metrics_port}")))


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Every journey's schedules, as the registry names them (the daily RFM
    sweep, `rfm-daily`; the NPS surveys at the start of each period,
    `nps-quarterly`), and the segment refresh half an hour after the sweep
    (`segments-daily`, so rules on the tier see the day's tiers): created on
    the first start, brought in line with the settings on every later one."""
    from temporalio.client import Schedule, ScheduleActionStartWorkflow

    from activities.schedules import daily, ensure

    schedules: dict[str, Schedule] = {}
    for entry in JOURNEYS:
        if entry.schedules:
            schedules |= load(entry.schedules)(settings)
    schedules["segments-daily"] = daily(settings, ScheduleActionStartWorkflow(
        "SegmentRefresh", SegmentRefreshRequest(), id="segment-refresh",
        task_queue=settings.task_queue), minute=SEGMENTS_AFTER_RFM_MINUTES)
    await ensure(client, schedules)


class ShutdownTimedOut(Exception):
    """The worker did not finish shutting down within its limit."""


async def stop_within(worker: Any, limit: timedelta) -> None:
    """Shuts the worker down, waiting at most `limit`; raises `ShutdownTimedOut`
    (the worker's own wait is left running: what holds it cannot be stopped)."""
    try:
        await asyncio.wait_for(asyncio.shield(worker.shutdown()), limit.total_seconds())
    except TimeoutError as exc:
        raise ShutdownTimedOut(
            f"the worker was still shutting down {limit.total_seconds():g} s after it was "
            "told to stop (a stuck activity or workflow task)") from exc


async def run(settings: Settings, *, shutdown_limit: timedelta = SHUTDOWN_LIMIT) -> None:
    """Runs the worker until SIGTERM or SIGINT, then shuts it down gracefully.

    Raises `ShutdownTimedOut` when the shutdown takes longer than
    `shutdown_limit`, or when a second signal asks not to wait: the caller
    must then end the process, which threads still running would hold up."""
    configure_logging(settings.log_level)
    log = logging.getLogger("crm.worker")
    store = Store.from_url(settings.database_url)
    client = await connect(settings, runtime=metrics_runtime(settings))
    executor = ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="crm-activity")
    worker = build_worker(client, settings, store, executor=executor)
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    log.info("worker on %s / %s, task queue %s", settings.temporal_address,
             settings.temporal_namespace, settings.task_queue)
    log.info("channels: %s", ", ".join(f"{channel} {settings.channel_url(channel)}"
                                        for channel in ("email", "sms", "chat")))
    ring = key_ring(settings)
    if ring is None:
        log.warning("payload codec off: no CRM_CODEC_KEYS and no key file; journey inputs "
                    "and results reach Temporal's history in plaintext")
    else:
        log.info("payload codec on: encrypting with key %s (%d keys decrypt)",
                 ring.current, len(ring.keys))
    running = asyncio.create_task(worker.run())
    try:
        await ensure_schedules(client, settings)
    except Exception:  # noqa: BLE001 - a server without schedules still runs journeys
        log.exception("could not create or update rfm-daily")
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([running, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if running.done():  # the worker failed on its own: nothing left to stop
        executor.shutdown(wait=False, cancel_futures=True)
        store.dispose()
        running.result()
        return
    log.info("shutting down: finishing running activities (at most %g s)",
             shutdown_limit.total_seconds())
    stopping = asyncio.create_task(stop_within(worker, shutdown_limit))
    hurried = asyncio.create_task(hurry.wait())
    await asyncio.wait([stopping, hurried], return_when=asyncio.FIRST_COMPLETED)
    hurried.cancel()
    if not stopping.done():
        stopping.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
        raise ShutdownTimedOut("told to stop a second time: not waiting for the shutdown")
    try:
        stopping.result()
    except ShutdownTimedOut:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    await running
    executor.shutdown(wait=True)
    store.dispose()
    log.info("worker stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="crm-worker",
        description="Runs the CRM journey worker: every journey and activity, on the task "
        "queue, Temporal server and store named by the settings (environment variables "
        "TEMPORAL_ADDRESS, CRM_TASK_QUEUE, CRM_DATABASE_URL, ... or a .env file). SIGTERM "
        "or Ctrl-C stops it gracefully; a second one stops it at once.",
    )
    parser.add_argument(
        "--shutdown-timeout", type=float, metavar="SECONDS",
        default=SHUTDOWN_LIMIT.total_seconds(),
        help="how long a shutdown may take before the worker exits anyway with status "
        f"{EXIT_FORCED} (default: %(default)g)")
    args = parser.parse_args(argv)
    if args.shutdown_timeout <= 0:
        parser.error("--shutdown-timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Not asyncio.run: on a forced exit its clean-up would wait for the very
    # tasks and threads that hold the worker up.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            run(Settings(), shutdown_limit=timedelta(seconds=args.shutdown_timeout)))
    except ShutdownTimedOut as exc:
        logging.getLogger("crm.worker").error("forced exit: %s; the server hands its work "
                                              "to another worker", exc)
        logging.shutdown()
        sys.stderr.flush()
        # Not sys.exit: the threads still running would keep the process alive.
        os._exit(EXIT_FORCED)
    except CodecKeyError as exc:
        logging.getLogger("crm.worker").error("payload codec: %s", exc)
        sys.exit(1)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


if __name__ == "__main__":
    main()
