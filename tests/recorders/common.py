"""What the recorders share: a fresh store per recording, a worker with every
journey, and waiting on a journey's answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHandle
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.failures import ShortFailures
from activities.store import Store, migrate
from domain import schema
from domain.policy import LeadPolicy
from domain.settings import Settings
from tests.harness import NO_QUIET_HOURS, make_settings, seed_staff
from worker import WORKFLOWS, build_activities

#
# The histories below send each journey every signal it takes, accepted and
# refused (a rule broken, a malformed payload, no argument, two arguments, a
# payload that is not JSON, an unknown name, a staff_deactivated naming nobody),
# and the cases the fault run found: a signal received before a deadline but
# handled after it, a signal received after a step already due, and an update
# and a signal while the journey waits for its last touch before completing.
# A change of what a running journey does with any of them then fails replay
# unless it is behind `workflow.patched`.

ZONE = "Asia/Shanghai"  # the seeded customers' zone
NOT_JSON = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{not json"))


def fresh(workdir: Path, name: str) -> tuple[Store, Settings]:
    url = f"sqlite:///{workdir / name}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    return store, make_settings(workdir)


def activity_name(fn: Any) -> str:
    return activity._Definition.must_from_callable(fn).name  # noqa: SLF001


@asynccontextmanager
async def _worker(env: WorkflowEnvironment, store: Store, settings: Settings, task_queue: str,
                  *, replace: tuple[Any, ...] = (), cache: bool = True,
                  **overrides: Any) -> AsyncIterator[None]:
    """A worker that can be stopped and started again on the same task queue
    without ending the journeys (the harness's ends them on exit), with some
    activities replaced (a store outage). Without a cache it keeps no sticky
    queue, so a worker started after it gets the journey's next task at once."""
    overrides = {"lead_policy": LeadPolicy(), "messaging_policy": NO_QUIET_HOURS, **overrides}
    with ThreadPoolExecutor(max_workers=8) as executor:
        activities = build_activities(settings, store, env.client, task_queue, **overrides)
        replacements = {activity_name(fn): fn for fn in replace}
        activities = [replacements.get(activity_name(fn), fn) for fn in activities]
        async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS,
                          activities=activities, activity_executor=executor,
                          max_concurrent_activities=8, interceptors=[ShortFailures()],
                          max_cached_workflows=100 if cache else 0):
            yield


async def _when(query: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool],
                what: str) -> Any:
    """The status once `predicate` holds (activities run in real time)."""
    latest = None
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        latest = await query()
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never held; last {latest}")


async def _rejected(handle: WorkflowHandle, result_type: Any, count: int) -> Any:
    """The status once the journey has recorded `count` rejections."""
    return await _when(lambda: handle.query("status", result_type=result_type),
                       lambda s: len(s.rejections) >= count, f"{count} rejections")


async def signal_all(handle: WorkflowHandle, signals: list[tuple[str, list[Any]]]) -> None:
    for name, args in signals:
        await handle.signal(name, args=args)


def _malformed(valid_name: str, *, not_an_object: str) -> list[tuple[str, list[Any]]]:
    """Every way a caller gets a signal's arguments wrong."""
    return [
        (valid_name, []),                                       # no argument
        (valid_name, [{"reason": "a"}, {"reason": "b"}]),       # two arguments
        (valid_name, [not_an_object]),                          # not a JSON object
        (valid_name, [NOT_JSON]),                               # not JSON at all
        ("escalate_now", [{}]),                                 # no such signal
        ("staff_deactivated", [{"staff_id": "  "}]),            # names nobody
        ("staff_deactivated", [{"staff_id": "someone-else"}]),  # not ours: ignored
    ]


def _touches(store: Store, step: str, status: str) -> list[schema.Touch]:
    with store.unit_of_work() as session:
        return list(session.scalars(select(schema.Touch).where(
            schema.Touch.step == step, schema.Touch.status == status)))
