"""Recordings of the onboarding journey: a full run with the reminder, the
breach escalated, a late delivery and the check-in (onboarding-R1), and every
signal in every shape (onboarding-R2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.onboarding import start_onboarding_journey
from domain.journeys import Decision
from domain.onboarding import (
    Delivered,
    GroupReady,
    OnboardingInput,
    OnboardingStage,
    OnboardingStatus,
)
from tests.harness import refused
from tests.recorders.common import _malformed, _rejected, _when, _worker, fresh, signal_all


async def _start(env: WorkflowEnvironment, task_queue: str, contract_id: str) -> None:
    await start_onboarding_journey(env.client, task_queue=task_queue, onboarding=OnboardingInput(
        contract_id=contract_id, customer_id="cust-1", owner_id="rep-a",
        signed_at=await env.get_current_time()))


async def record_onboarding_full(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-onboarding.db")
    task_queue = "record-onboarding-r1"
    handle = env.client.get_workflow_handle("onboarding-R1", result_type=OnboardingStatus)
    status = lambda: handle.query("status", result_type=OnboardingStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await _start(env, task_queue, "R1")
        await _when(status, lambda s: s.delivery_due_at is not None, "opened")
        await handle.signal("group_ready", GroupReady(link="https://work.weixin.qq.com/g/R1"))
        await env.sleep(timedelta(days=3, minutes=5))
        await _when(status, lambda s: s.stage is OnboardingStage.escalated, "escalated")
        answer = await handle.execute_update("delivered_now", Delivered(by="sup-after_sales",
                                                                        note="MVP live"),
                                             result_type=Decision)
        assert answer.accepted
        await env.sleep(timedelta(days=7, minutes=5))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_onboarding_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-onboarding-every.db")
    task_queue = "record-onboarding-r2"
    handle = env.client.get_workflow_handle("onboarding-R2", result_type=OnboardingStatus)
    status = lambda: handle.query("status", result_type=OnboardingStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await _start(env, task_queue, "R2")
        await _when(status, lambda s: s.delivery_due_at is not None, "opened")
        await signal_all(handle, [
            ("group_ready", [{"link": ""}]),                        # no link
            ("delivered", [{"note": "nobody"}]),                     # who delivered?
            *_malformed("delivered", not_an_object="done"),
        ])
        await _rejected(handle, OnboardingStatus, 8)
        await signal_all(handle, [
            ("group_ready", [{"link": "https://work.weixin.qq.com/g/R2"}]),
            ("group_ready", [{"link": "https://work.weixin.qq.com/g/other"}]),  # already ready
            ("staff_deactivated", [{"staff_id": "sup-after_sales"}]),           # handed on
            ("delivered", [{"by": "mgr-support", "note": "MVP"}]),
            ("delivered", [{"by": "mgr-support"}]),                             # already
        ])
        await _rejected(handle, OnboardingStatus, 10)
        await refused(handle.execute_update("delivered_now", Delivered(by="x"),
                                            result_type=Decision))
        await env.sleep(timedelta(days=7, minutes=5))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"onboarding-R1": record_onboarding_full,
              "onboarding-R2": record_onboarding_every_signal}
