"""Recorded histories of real journeys replay on today's code without
non-determinism (refresh with `python -m tests.record_histories`). Between
them they send every journey every signal and update it takes, so a change of
what a running journey does with any of them fails here unless it is behind
`workflow.patched`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from starter.client import data_converter
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    workflow_id = path.stem  # each file is named after its journey's workflow id
    history = WorkflowHistory.from_json(workflow_id, path.read_text())  # noqa: ASYNC240
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_histories_are_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "lead-R1", "enrollment-R2", "contract-R4", "customer-cust-1", "ticket-R3",
        "customer-cust-2",
        # Every signal, accepted and refused in every shape, the fault run's
        # cases, and an update and a signal while a journey waits to complete.
        "lead-R5", "contract-R7", "enrollment-R8", "ticket-R9", "customer-cust-3"}


def _sent(path: Path) -> tuple[str, set[str], set[str]]:
    """A history's workflow type, and the signals and updates it was sent."""
    events = json.loads(path.read_text())["events"]
    kind = events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
    signals = {e["workflowExecutionSignaledEventAttributes"]["signalName"]
               for e in events if "workflowExecutionSignaledEventAttributes" in e}
    updates = {e["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]
               ["input"]["name"]
               for e in events if "workflowExecutionUpdateAcceptedEventAttributes" in e}
    return kind, signals, updates


JOURNEYS = [cls for cls in WORKFLOWS if hasattr(cls, "signals")]


@pytest.mark.parametrize("journey", JOURNEYS, ids=[cls.__name__ for cls in JOURNEYS])
def test_every_signal_and_update_is_in_a_recorded_history(journey: type) -> None:
    """A signal or update added to a journey needs a recorded history that
    sends it, or the replay test cannot catch a change of what it does."""
    definition = workflow._Definition.must_from_class(journey)  # noqa: SLF001
    signals = set(journey._signal_models(journey))  # type: ignore[attr-defined]  # noqa: SLF001
    updates = {name for name in definition.updates if name}
    sent_signals: set[str] = set()
    sent_updates: set[str] = set()
    for path in HISTORIES:
        kind, signals_sent, updates_sent = _sent(path)
        if kind == definition.name:
            sent_signals |= signals_sent
            sent_updates |= updates_sent
    assert signals <= sent_signals, signals - sent_signals
    assert updates <= sent_updates, updates - sent_updates
    # and a signal the journey does not take (refused, never ignored)
    assert sent_signals - signals, "no unknown signal recorded"
