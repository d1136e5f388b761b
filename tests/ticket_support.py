"""The ticket journey on the time-skipping server: a worker over a seeded
SQLite store, and helpers to open a ticket and wait on its status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.ticket_status import TicketStatus
from domain.tickets import TicketInput, TicketStage
from tests.harness import Harness, make_settings, running_worker, seed_staff

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def opened(h: Harness, ticket_id: str, **overrides: Any) -> WorkflowHandle:
    values: dict[str, Any] = {"ticket_id": ticket_id, "customer_id": "cust-1",
                              "type": "technical", "priority": "normal",
                              "subject": "Printer driver crashes", "channel": "email"}
    values.update(overrides)
    handle = await h.journeys.open_ticket(TicketInput.model_validate(values))
    await ticket_when(h, ticket_id, lambda s: s.stage is not TicketStage.new)
    return handle


async def ticket_when(h: Harness, ticket_id: str, predicate: Any) -> TicketStatus:
    latest = None
    for _ in range(400):
        latest = await h.journeys.ticket_status(ticket_id)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ticket_id}: condition never held; last {latest}")


async def responded(h: Harness, ticket_id: str, agent_id: str = "tech-2") -> None:
    answer = await h.journeys.respond(ticket_id, agent_id)
    assert answer.accepted, answer.reason


def escalations(h: Harness, ticket_id: str) -> list[schema.Escalation]:
    return sorted(h.rows(schema.Escalation, entity_id=ticket_id), key=lambda e: e.id)


def events(h: Harness, ticket_id: str, kind: str) -> list[schema.TicketEvent]:
    return sorted(h.rows(schema.TicketEvent, ticket_id=ticket_id, kind=kind), key=lambda e: e.id)


def on_time(at: datetime, due: datetime | None) -> bool:
    """At the deadline, not before it (a timer fires a few ms after its time)."""
    assert due is not None
    return timedelta(0) <= at - due < SECOND


def close_to(actual: timedelta, expected: timedelta, slack: timedelta = 5 * SECOND) -> bool:
    """Activities run in real time on the time-skipping server, so the clock
    moves a little beyond each skip."""
    return abs(actual - expected) <= slack
