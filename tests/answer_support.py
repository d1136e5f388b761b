"""What the tests of journeys that wait on deferred touches share.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.policy import MessagingPolicy
from tests.harness import Harness, eventually, local_window_around, seed_staff

MINUTE = timedelta(minutes=1)
ZONE = "Asia/Shanghai"  # every seeded customer's zone, and the leads' here


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest.fixture
def seeded(sqlite_store: Store) -> Store:
    seed_staff(sqlite_store)
    return sqlite_store


def quiet_around(moment: datetime) -> MessagingPolicy:
    """Quiet hours from a little before `moment` to two hours after it, in the
    customers' zone: a reminder or marketing touch due then is deferred."""
    return MessagingPolicy(quiet_hours=local_window_around(moment, ZONE, before_min=10,
                                                           after_min=120))


async def deferred(h: Harness, step: str) -> schema.Touch:
    """The touch of `step` once the send path has deferred it."""
    touches = await eventually(lambda: h.touches(step=step, status="deferred"),
                               what=f"{step} deferred")
    return touches[0]


async def rejected_in_store(h: Harness, workflow_id: str, signal: str) -> list[Any]:
    return await eventually(
        lambda: h.rows(schema.SignalRejection, workflow_id=workflow_id, signal=signal),
        what=f"{signal} rejection stored for {workflow_id}")


async def status_when(query: Any, predicate: Any, what: str) -> Any:
    """The status once `predicate` holds (activities run in real time)."""
    latest = None
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        latest = await query()
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never held; last {latest}")
