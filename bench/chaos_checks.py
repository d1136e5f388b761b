"""What `bench.chaos` finds once the journeys have settled, and the `Verdict` it adds up to.

Each journey's status, history and pending work (`examine_journey`); every
history replayed on the workers' code (`replay_all`); the store against the
journeys and against what the people did (`examine_store`); what the sinks
received against the touches the store says were sent (`examine_touches`);
and the histories of the journeys named in a finding, kept for replay
(`keep_evidence`). `Verdict.failures` decides the exit status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Replayer

from bench.chaos_people import RPC, Play
from domain import schema
from domain.courses import CourseStatus
from domain.leads import LeadStatus
from domain.lifecycle import LifecycleStatus
from domain.payments import ContractStatus
from domain.ticket_status import TicketStatus
from starter.client import data_converter
from worker import WORKFLOWS

# Causes of a failed workflow task that are the server's housekeeping, not the
# journey's code failing (a signal arriving as the task completed, a sticky
# queue reset after a worker died).
HOUSEKEEPING_CAUSES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_UPDATE,
}


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

