"""Histories recorded when journeys broke under faults and hostile input (a
ticket spinning between its clock and its inbox, signals with no or two
arguments, a retried payment taken for a duplicate, a notice rendered from a
changed row, a signal judged before a step already due). Each must replay on
today's code — as it ran, behind the patches that changed it — and its last
workflow task, the one that failed in a loop then, must now complete."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from starter.client import data_converter
from worker import WORKFLOWS

EVIDENCE = sorted((Path(__file__).parent / "evidence").glob("*.history.json"))


@pytest.mark.parametrize("path", EVIDENCE, ids=[p.name.split(".")[0] for p in EVIDENCE])
async def test_evidence_replays_and_no_task_fails(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workflow_id = path.name.split(".")[0]
    history = WorkflowHistory.from_json(workflow_id, path.read_text())  # noqa: ASYNC240
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter())
    with caplog.at_level(logging.WARNING, logger="temporalio"):
        result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    failed = [r.getMessage() for r in caplog.records
              if "Failed activation" in r.getMessage() or "deadlock" in r.getMessage().lower()]
    assert not failed, failed


def test_every_evidence_history_is_kept() -> None:
    assert {p.name.split(".")[0] for p in EVIDENCE} >= {
        "ticket-e3-T0014", "lead-repro-args0", "lead-repro-args2", "contract-e1-K0011",
        "lead-e1-L0005", "enrollment-e1-E0017"}
