"""Recordings of the NPS journey: a detractor reminded, answering, the
follow-up escalated to the owner's manager and logged by them (nps-R1), and
every signal in every shape (nps-R2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.journeys import Decision
from domain.nps import Answer, LogFollowUp, NpsInput, NpsStage, NpsStatus
from tests.harness import refused
from tests.recorders.common import _malformed, _rejected, _when, _worker, fresh, signal_all


def _owned(store: Store) -> None:
    with store.unit_of_work() as session:
        session.get(schema.Customer, "cust-1").owner_id = "rep-a"  # type: ignore[union-attr]


async def record_nps_full(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-nps.db")
    _owned(store)
    task_queue = "record-nps-r1"
    handle = env.client.get_workflow_handle("nps-R1", result_type=NpsStatus)
    status = lambda: handle.query("status", result_type=NpsStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await env.client.start_workflow("NpsJourney", NpsInput(customer_id="cust-1",
                                                               period="2026Q3"),
                                        id="nps-R1", task_queue=task_queue)
        await _when(status, lambda s: s.closes_at is not None, "asked")
        await env.sleep(timedelta(days=3, minutes=5))
        await _when(status, lambda s: s.reminded, "reminded")
        answer = await handle.execute_update("answer_now", Answer(
            score=4, reason="问题还是没解决"), result_type=Decision)
        assert answer.accepted
        await env.sleep(timedelta(days=2, minutes=5))
        await _when(status, lambda s: s.stage is NpsStage.escalated, "escalated")
        done = await handle.execute_update("log_follow_up_now", LogFollowUp(
            staff_id="mgr-east", note="called back"), result_type=Decision)
        assert done.accepted
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_nps_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    store, settings = fresh(workdir, "crm-nps-every.db")
    _owned(store)
    task_queue = "record-nps-r2"
    handle = env.client.get_workflow_handle("nps-R2", result_type=NpsStatus)
    status = lambda: handle.query("status", result_type=NpsStatus)  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        await env.client.start_workflow("NpsJourney", NpsInput(customer_id="cust-1",
                                                               period="2026Q4"),
                                        id="nps-R2", task_queue=task_queue)
        await _when(status, lambda s: s.closes_at is not None, "asked")
        await signal_all(handle, [
            ("answer", [{}]),                                        # no score
            ("answer", [{"score": 11}]),                             # out of range
            ("answer", [{"score": "ten"}]),                          # not a number
            ("log_follow_up", [{"staff_id": "rep-a"}]),              # nothing to follow up
            *_malformed("answer", not_an_object="9"),
        ])
        await _rejected(handle, NpsStatus, 10)
        assert "score 12" in await refused(handle.execute_update(
            "answer_now", Answer(score=12), result_type=Decision))
        await signal_all(handle, [
            ("answer", [{"score": 2, "reason": "too expensive"}]),   # a detractor
            ("answer", [{"score": 9}]),                              # already answered
            ("log_follow_up", [{"staff_id": ""}]),                   # who?
            ("log_follow_up", [{"staff_id": "rep-b"}]),              # not the owner
            ("staff_deactivated", [{"staff_id": "rep-a"}]),          # handed on
            ("log_follow_up", [{"staff_id": "mgr-east", "note": "refund offered"}]),
            ("log_follow_up", [{"staff_id": "mgr-east"}]),           # already logged
        ])
        await _rejected(handle, NpsStatus, 14)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"nps-R1": record_nps_full, "nps-R2": record_nps_every_signal}
