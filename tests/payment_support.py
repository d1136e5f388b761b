"""The payment journey on the time-skipping server: a worker over a seeded
SQLite store, a signed contract, and waiting on its status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.payments import ContractInput
from tests.harness import Harness, make_settings, running_worker, seed_staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
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


async def signed(h: Harness, env: WorkflowEnvironment, contract_id: str, *,
                 amount: str = "10000.00", **overrides: Any) -> tuple[WorkflowHandle, datetime]:
    now = await env.get_current_time()
    values: dict[str, Any] = {"contract_id": contract_id, "customer_id": "cust-1",
                              "owner_id": "rep-a", "amount": amount, "currency": "CNY",
                              "signed_at": now}
    values.update(overrides)
    handle = await h.journeys.sign_contract(ContractInput.model_validate(values))
    await contract_when(h, contract_id, lambda s: len(s.milestones) > 0)
    return handle, now


async def contract_when(h: Harness, contract_id: str, predicate: Any) -> Any:
    latest = None
    for _ in range(400):
        latest = await h.journeys.contract_status(contract_id)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{contract_id}: condition never held; last {latest}")


def at_ten(day: date) -> datetime:
    return datetime.combine(day, time(10), tzinfo=SHANGHAI).astimezone(UTC)
