"""What the rfm-daily tests share on the dev server: buyers seeded in the
store, the schedule, and waiting on the journeys the sweep tells.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest_asyncio
from temporalio.client import ScheduleHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

T = TypeVar("T")
ZONE = "Asia/Shanghai"
SCHEDULE_ID = "rfm-daily"


@pytest_asyncio.fixture
async def rfm_daily(dev_env: WorkflowEnvironment) -> AsyncIterator[ScheduleHandle]:
    """The `rfm-daily` schedule's handle; the schedule is gone after the test, so
    the shared dev server is left as it was found."""
    handle = dev_env.client.get_schedule_handle(SCHEDULE_ID)
    await delete_schedule(handle)
    yield handle
    await delete_schedule(handle)


async def delete_schedule(handle: ScheduleHandle) -> None:
    try:
        await handle.delete()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise


async def eventually_async(check: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Polls an awaitable check (in real time) until it returns something truthy."""
    for _ in range(100):
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
