"""The workers of the two variants `bench.lead` compares: the real worker, and a
no-op twin of the lead activities with the same names and types that does
nothing; both tell `Assignments` of each assignment notice as it goes out."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

import workflows.kit
import workflows.lead
from activities.delivery import AppriseDeliverer, Message
from activities.store import Store
from bench.lead_infra import NO_QUIET_HOURS
from domain.journeys import Decision, RejectionRecord
from domain.leads import (
    AssignRequest,
    AssignResult,
    ClaimRequest,
    ContactRequest,
    ConvertRequest,
    EscalateRequest,
    EscalateResult,
    FollowUpMissed,
    IntakeAndAssign,
    IntakeRequest,
    IntakeResult,
    StageChange,
)
from domain.messaging import SendOutcome, SendRequest
from domain.opportunities import LeadHandover
from domain.policy import LeadPolicy
from domain.settings import Settings
from worker import WORKFLOWS, build_worker

# The notice that tells the owner a lead is theirs (LeadJourney._assign).
ASSIGNED_STEP = "assigned"


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

    @activity.defn(name="intake_and_assign_lead")
    def intake_and_assign_lead(self, request: IntakeAndAssign) -> IntakeResult:
        return self.intake_lead(request.intake).model_copy(
            update={"assignment": self.assign_lead(request.assign)})

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

    @activity.defn(name="convert_lead_and_start_opportunity")
    def convert_lead_and_start_opportunity(self, request: ConvertRequest) -> str:
        return f"opp-{request.lead_id}"

    @activity.defn(name="record_rejection")
    def record_rejection(self, record: RejectionRecord) -> None:
        return None

    @activity.defn(name="start_opportunity_journey")
    def start_opportunity_journey(self, request: LeadHandover) -> str | None:
        return f"opportunity-{request.opportunity_id}"

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.send_message, self.load_lead_policy, self.intake_lead, self.undo_merge,
            self.assign_lead, self.claim_lead, self.escalate_lead, self.record_contact,
            self.miss_follow_up, self.change_lead_stage, self.convert_lead, self.record_rejection,
            self.start_opportunity_journey, self.intake_and_assign_lead,
            self.convert_lead_and_start_opportunity,
        ]


def activities_journey_calls() -> set[str]:
    """The activity names LeadJourney's code (and the journey kit it is built
    on: the send helper, the rejection record) schedules."""
    names: set[str] = set()
    packages = (workflows.lead, workflows.kit)
    for path in sorted(p for package in packages
                       for p in Path(inspect.getsourcefile(package) or "").parent.glob("*.py")):
        names.update(re.findall(r'(?:call|execute_activity)\(\s*"(\w+)"', path.read_text("utf-8")))
    return names


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


class NoticingHooks(list[Any]):
    """The webhook sink's list of what it received, telling `Assignments` of
    each staff notice as it arrives: how the bench learns a lead's owner when
    the workers are processes of their own. The chat URL's path ends in the
    recipient's handle, which for a rep is their staff id (see `seed_staff`)."""

    def __init__(self, assignments: Assignments) -> None:
        super().__init__()
        self.assignments = assignments

    def append(self, hook: Any) -> None:
        super().append(hook)
        if hook.key:
            self.assignments.noticed(hook.key, hook.path.rstrip("/").rsplit("/", 1)[-1])


@asynccontextmanager
async def worker_processes(client: Client, count: int, *, workdir: Path, database_url: str,
                           smtp_port: int,
                           webhook_port: int) -> AsyncIterator[tuple[str, list[int]]]:
    """`count` workers as in production: `worker.py`, each its own process,
    configured by environment (`bench.chaos`'s: quiet hours off, delivery to
    the sinks, metrics off), on one task queue of this dev server. Yields the
    task queue and their pids once every one polls it; SIGTERM afterwards."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from bench.chaos_infra import worker_env, worker_process

    task_queue = f"bench-real-{uuid.uuid4().hex[:8]}"
    env = worker_env(workdir=workdir, temporal=client.service_client.config.target_host,
                     database_url=database_url, smtp_port=smtp_port, webhook_port=webhook_port)
    env["CRM_TASK_QUEUE"] = task_queue
    if "CRM_WORKFLOW_CACHE_SIZE" in os.environ:  # as the in-process worker's settings read it
        env["CRM_WORKFLOW_CACHE_SIZE"] = os.environ["CRM_WORKFLOW_CACHE_SIZE"]
    processes = [worker_process(n, workdir, env) for n in range(1, count + 1)]
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + 60
        while True:
            pollers = (await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(namespace=client.namespace,
                                         task_queue=TaskQueue(name=task_queue),
                                         task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
                       ).pollers
            if len({p.identity for p in pollers}) >= count:
                break
            dead = [p.name for p in processes if not p.alive]
            if dead or time.monotonic() > deadline:
                logs = "; ".join(p.log.read_text(errors="replace")[-500:] for p in processes
                                 if p.log.exists())
                raise SystemExit(f"workers not polling ({', '.join(dead) or 'timed out'}): {logs}")
            await asyncio.sleep(0.5)
        yield task_queue, [p.pid for p in processes if p.pid is not None]
    finally:
        for process in processes:
            process.terminate(45)
