"""Shared helpers for workflow and integration tests: a worker on its own task
queue over a fresh store, staff fixtures, and reading what the store recorded."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.store import Store
from activities.store.customers import CustomerRecord, add_customer
from activities.store.staff import StaffMember, add_staff
from domain import schema
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from domain.settings import Settings
from starter.client import Journeys
from worker import build_worker

T = TypeVar("T")

NO_QUIET_HOURS = MessagingPolicy(quiet_hours=QuietHours(enabled=False))


def make_settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'crm.db'}",
        outbox_path=tmp_path / "outbox.log",
        quiet_hours_enabled=False,
        _env_file=None,  # type: ignore[call-arg]
        **values,
    )


@dataclass
class Harness:
    client: Client
    store: Store
    journeys: Journeys
    task_queue: str
    outbox: Path

    def outbox_messages(self) -> list[dict[str, Any]]:
        if not self.outbox.exists():
            return []
        return [json.loads(line) for line in self.outbox.read_text("utf-8").splitlines()]

    def touches(self, **where: Any) -> list[schema.Touch]:
        with self.store.unit_of_work() as session:
            query = select(schema.Touch).order_by(schema.Touch.id)
            for name, value in where.items():
                query = query.where(getattr(schema.Touch, name) == value)
            return list(session.scalars(query))

    def rows(self, model: type[Any], **where: Any) -> list[Any]:
        with self.store.unit_of_work() as session:
            query = select(model)
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return list(session.scalars(query))

    def rows_escalated(self, lead_id: str) -> list[schema.Escalation]:
        return self.rows(schema.Escalation, entity_id=lead_id)

    def lead(self, lead_id: str) -> schema.Lead:
        with self.store.unit_of_work() as session:
            lead = session.get(schema.Lead, lead_id)
            assert lead is not None, f"lead {lead_id} is not in the store"
            return lead


class TrackingJourneys(Journeys):
    """Remembers what a test started, so it can be ended when the test ends: on
    the time-skipping server a journey left waiting on a timer whose worker
    is gone would hold the clock for every later test."""

    def __init__(self, client: Client, *, task_queue: str) -> None:
        super().__init__(client, task_queue=task_queue)
        self.started: list[str] = []

    async def start_lead(self, lead: Any) -> Any:
        handle = await super().start_lead(lead)
        self.started.append(handle.id)
        return handle

    async def sign_contract(self, contract: Any) -> Any:
        handle = await super().sign_contract(contract)
        self.started.append(handle.id)
        return handle

    async def report_purchase(self, customer_id: str, purchase: Any) -> Any:
        handle = await super().report_purchase(customer_id, purchase)
        self.started.append(handle.id)
        return handle

    async def enroll(self, enrollment: Any) -> Any:
        handle = await super().enroll(enrollment)
        self.started.append(handle.id)
        return handle

    async def open_ticket(self, ticket: Any) -> Any:
        handle = await super().open_ticket(ticket)
        self.started.append(handle.id)
        return handle

    async def end_all(self) -> None:
        for workflow_id in self.started:
            try:
                await self.client.get_workflow_handle(workflow_id).terminate("test over")
            except Exception:  # noqa: BLE001 - already finished
                pass


@asynccontextmanager
async def running_worker(
    client: Client,
    store: Store,
    settings: Settings,
    *,
    lead_policy: LeadPolicy | None = None,
    messaging_policy: MessagingPolicy | None = None,
    task_queue: str | None = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    task_queue = task_queue or f"crm-test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(
            client,
            settings,
            store,
            task_queue=task_queue,
            executor=executor,
            lead_policy=lead_policy or LeadPolicy(),
            messaging_policy=messaging_policy or NO_QUIET_HOURS,
            **overrides,
        )
        journeys = TrackingJourneys(client, task_queue=task_queue)
        async with worker:
            try:
                yield Harness(
                    client=client,
                    store=store,
                    journeys=journeys,
                    task_queue=task_queue,
                    outbox=settings.outbox_path,
                )
            finally:
                await journeys.end_all()


STAFF = [
    StaffMember(id="mgr-east", name="Manager East", role="manager", regions=["east"],
                chat="mgr-east", email="mgr.east@example.com"),
    StaffMember(id="rep-a", name="Rep A", role="rep", regions=["east"], product_lines=["erp"],
                manager_id="mgr-east", seniority=3, chat="rep-a", email="rep.a@example.com"),
    StaffMember(id="rep-b", name="Rep B", role="rep", regions=["east"], product_lines=["erp"],
                manager_id="mgr-east", seniority=2, chat="rep-b", email="rep.b@example.com"),
    StaffMember(id="rep-c", name="Rep C", role="rep", regions=["east"], product_lines=["erp"],
                manager_id="mgr-east", seniority=1, chat="rep-c", email="rep.c@example.com"),
    StaffMember(id="rep-west", name="Rep West", role="rep", regions=["west"],
                product_lines=["erp"], manager_id="mgr-east", chat="rep-west"),
    StaffMember(id="fin-1", name="Finance One", role="finance", chat="fin-1",
                email="fin.1@example.com"),
    StaffMember(id="sup-edu", name="Supervisor Edu", role="supervisor", group="education",
                chat="sup-edu", email="sup.edu@example.com"),
    StaffMember(id="adv-1", name="Advisor One", role="advisor", group="education",
                manager_id="sup-edu", chat="adv-1", email="adv.1@example.com"),
    StaffMember(id="adv-2", name="Advisor Two", role="advisor", group="education",
                manager_id="sup-edu", chat="adv-2"),
    # Support: a manager over one supervisor per ticket group and their agents.
    StaffMember(id="mgr-support", name="Support Manager", role="manager", chat="mgr-support",
                email="mgr.support@example.com"),
    *[StaffMember(id=f"sup-{group}", name=f"Supervisor {group}", role="supervisor",
                  group=group, manager_id="mgr-support", chat=f"sup-{group}")
      for group in ("technical", "after_sales", "complaints", "orders", "general")],
    StaffMember(id="tech-1", name="Tech One", role="agent", group="technical", seniority=1,
                manager_id="sup-technical", chat="tech-1", email="tech.1@example.com"),
    StaffMember(id="tech-2", name="Tech Two", role="agent", group="technical", seniority=4,
                manager_id="sup-technical", chat="tech-2"),
    StaffMember(id="tech-3", name="Tech Three", role="agent", group="technical", seniority=2,
                manager_id="sup-technical", chat="tech-3"),
    StaffMember(id="as-1", name="After-sales One", role="agent", group="after_sales",
                seniority=2, manager_id="sup-after_sales", chat="as-1"),
    StaffMember(id="cmp-1", name="Complaints One", role="agent", group="complaints",
                seniority=5, manager_id="sup-complaints", chat="cmp-1"),
    StaffMember(id="cmp-2", name="Complaints Two", role="agent", group="complaints",
                seniority=1, manager_id="sup-complaints", chat="cmp-2"),
    StaffMember(id="ord-1", name="Orders One", role="agent", group="orders", seniority=1,
                manager_id="sup-orders", chat="ord-1"),
    StaffMember(id="gen-1", name="General One", role="agent", group="general", seniority=1,
                manager_id="sup-general", chat="gen-1"),
]

CUSTOMERS = [
    CustomerRecord(id="cust-1", name="周杰", email="zhou.jie@example.com", phone="+8613600136000"),
    CustomerRecord(id="cust-2", name="Emma Stone", locale="en", timezone="Europe/London",
                   email="emma@example.com"),
]


def seed_staff(store: Store, members: list[StaffMember] | None = None) -> None:
    for member in members or STAFF:
        add_staff(store, member, now=datetime(2026, 1, 1, tzinfo=UTC))
    if members is None:
        for customer in CUSTOMERS:
            add_customer(store, customer, now=datetime(2026, 1, 1, tzinfo=UTC))


async def refused(update: Awaitable[Any]) -> str:
    """The reason an update was refused, in the one shape every update refuses
    with: an update failure whose cause is an ApplicationError of type Refused."""
    try:
        answer = await update
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        assert isinstance(cause, ApplicationError) and cause.type == "Refused", cause
        return cause.message
    raise AssertionError(f"the update was accepted: {answer}")


async def eventually(check: Callable[[], T], *, timeout: float = 20.0,  # noqa: ASYNC109
                     what: str = "") -> T:
    """Polls `check` (in real time) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def local_window_around(now: datetime, tz: str, *, before_min: int, after_min: int) -> QuietHours:
    """A quiet window that contains `now` in `tz` (tests cannot choose the server's clock)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(tz))
    start = (local - timedelta(minutes=before_min)).time().replace(second=0, microsecond=0)
    end = (local + timedelta(minutes=after_min)).time().replace(second=0, microsecond=0)
    return QuietHours(enabled=True, start=time(start.hour, start.minute),
                      end=time(end.hour, end.minute))
