"""The journey kit: agendas as data, handlers checked at import, the registry
that everything reads, and the diagrams that docs/journeys.md embeds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from domain.registry import JOURNEYS, journey, load
from workflows.kit import Agenda, Cadence, Deadline, Due, Journey, Ladder, Level, Plan, WaitUntil
from workflows.kit.diagram import known_triggers, markdown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "journeys.md"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
def domain_id_schemes() -> dict[str, str]:
    """Every workflow id scheme the domain states (`lead_workflow_id` and the
    like, in any domain module), as the id it gives entity `X1`."""
    import importlib
    import inspect
    import pkgutil

    import domain

    schemes: dict[str, str] = {}
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for name, fn in vars(module).items():
            if (name.endswith("_workflow_id") and inspect.isfunction(fn)
                    and fn.__module__ == module.__name__
                    and len(inspect.signature(fn).parameters) == 1):
                schemes[f"{info.name}.{name}"] = fn("X1")
    return schemes


# -- the agenda ------------------------------------------------------------------------


def test_a_deadline_brings_its_reminder_which_lapses_at_the_deadline() -> None:
    part = Deadline("missed", "first touch", within=24 * HOUR, reminder_before=4 * HOUR)
    agenda = Agenda.of(part.entries(T0 + 24 * HOUR))
    assert [(e.step, e.at) for e in agenda] == [("missed_reminder", T0 + 20 * HOUR),
                                                 ("missed", T0 + 24 * HOUR)]
    assert agenda.next_at() == T0 + 20 * HOUR  # the reminder wakes the journey
    assert [e.step for e in agenda.due(T0 + 21 * HOUR)] == ["missed_reminder"]
    # Found after the deadline (a worker that was down), the reminder is void.
    assert [e.step for e in agenda.due(T0 + 25 * HOUR)] == ["missed"]
    assert agenda.sla_deadline() == T0 + 24 * HOUR
    assert [e.step for e in Agenda.of(part.entries(T0, reminded=True))] == ["missed"]
    assert agenda.next() is not None and "reminder 4 h before" in agenda.next().summary


def test_a_ladder_gives_the_next_rung_at_its_offset_or_at_the_time_given() -> None:
    ladder = Ladder("first response", (Level("sup", timedelta(0), "supervisor"),
                                       Level("mgr", 15 * timedelta(minutes=1), "manager")))
    assert [(e.step, e.at) for e in ladder.entries(T0)] == [("sup", T0)]
    assert [(e.step, e.at) for e in ladder.entries(T0, done=1)] == [
        ("mgr", T0 + timedelta(minutes=15))]
    assert ladder.entries(T0, done=2) == []
    # Times worked out by the store win; none means the rung is off the clock.
    assert [e.at for e in ladder.entries(T0, done=1, at=(T0, T0 + HOUR))] == [T0 + HOUR]
    assert ladder.entries(T0, at=(None, None)) == []
    assert "the supervisor, then the manager after 15 min" in ladder.describe()


def test_agenda_cancel_add_and_shift() -> None:
    agenda = Agenda.of(Due("a", T0 + HOUR, "a"), Due("b", T0, "b", sla=True),
                       Due("c", T0 + 2 * HOUR, "c", sla=True))
    assert [e.step for e in agenda] == ["b", "a", "c"]
    assert [e.step for e in agenda.cancel("b")] == ["a", "c"]
    assert agenda.cancel("b").sla_deadline() == T0 + 2 * HOUR
    paused = agenda.shifted(3 * HOUR, steps=["b"])
    assert [e.step for e in paused] == ["a", "c", "b"]
    assert [e.step for e in agenda.add(Due("d", T0 - HOUR, "d"))][0] == "d"
    assert not Agenda() and Agenda().next_at() is None


def test_same_instant_steps_keep_the_rank_the_journey_gives() -> None:
    agenda = Agenda.of(Due("z", T0, "z", rank="z"), Due("a", T0, "a", rank="a"))
    assert [e.step for e in agenda.due(T0)] == ["a", "z"]


def test_cadence_and_wait_until_say_what_they_do() -> None:
    assert Cadence("f", "follow-up", every=72 * HOUR, until_misses=5,
                   then="stale").describe() == \
        "follow-up every 3 days until 5 missed in a row; then stale"
    wait = WaitUntil("cb", "callback task", fact="the course end", offset=72 * HOUR)
    assert [(e.step, e.at) for e in wait.entries(T0)] == [("cb", T0 + 72 * HOUR)]
    assert wait.entries_at(T0)[0].at == T0
    assert wait.entries(None) == [] and wait.entries_at(None) == []


# -- handlers are checked when a journey class is made ------------------------------------


class Ping(BaseModel):
    n: int = 0


def _plan(policy: Any = None) -> Plan:
    return Plan(journey="probe", start="open",
                parts=(Deadline("late", "answer", within=HOUR),))


def test_a_journey_missing_a_handler_fails_when_its_class_is_made() -> None:
    with pytest.raises(TypeError, match="_on_ping.*_step_late"):
        class Broken(Journey):
            journey = "probe"
            entity_kind = "probe"
            signals = {"ping": Ping}
            planned = staticmethod(_plan)

            async def _on_staff_deactivated(self, item: Any) -> None: ...

    class Whole(Journey):
        journey = "probe"
        entity_kind = "probe"
        signals = {"ping": Ping}
        planned = staticmethod(_plan)

        async def _on_ping(self, item: Any) -> None: ...
        async def _on_staff_deactivated(self, item: Any) -> None: ...
        async def _step_late(self, entry: Due) -> None: ...

    assert Whole.planned().step_names() == {"late"}


# -- the registry -----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", JOURNEYS, ids=[e.name for e in JOURNEYS])
def test_every_registry_entry_points_at_real_parts(entry: Any) -> None:
    import typer

    from workflows.kit.diagram import mermaid

    cls = load(entry.workflow)
    assert cls.journey == entry.name
    assert issubclass(cls, Journey)
    assert cls.__temporal_workflow_definition.name == entry.workflow.partition(":")[2]
    activities = load(entry.activities)
    assert any(hasattr(getattr(activities, name), "__temporal_activity_definition")
               for name in vars(activities))
    assert issubclass(load(entry.policy), BaseModel)
    assert callable(load(entry.open_roles))
    assert isinstance(load(entry.cli), typer.Typer)
    # The id scheme the registry states is the one the journey's domain uses.
    assert entry.workflow_id("X1") in domain_id_schemes().values(), (
        f"{entry.name}: no domain function gives workflow ids like {entry.workflow_id('X1')}")
    assert mermaid(cls).startswith("stateDiagram-v2")
    assert journey(entry.name) is entry


def test_an_unknown_journey_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="lead, course"):
        journey("nope")


@pytest.mark.parametrize("entry", JOURNEYS, ids=[e.name for e in JOURNEYS])
def test_every_transition_is_moved_by_something_the_journey_declares(entry: Any) -> None:
    cls = load(entry.workflow)
    plan = cls.planned()
    known = known_triggers(cls)
    unknown = {move.on for move in plan.transitions} - known
    assert not unknown, f"{entry.name}: transitions on undeclared triggers {unknown}"
    stages = {move.source for move in plan.transitions} | {m.target for m in plan.transitions}
    assert plan.start in stages and set(plan.ends) <= stages


def test_every_journey_has_a_history_recorder_and_recorded_histories() -> None:
    from tests.record_histories import HISTORIES, RECORDINGS

    for entry in JOURNEYS:
        mine = [name for name in RECORDINGS if name.startswith(f"{entry.id_prefix}-")]
        assert mine, f"{entry.name}: no recorder in tests/recorders/{entry.name}.py"
        assert all((HISTORIES / f"{name}.json").exists() for name in mine)


# -- diagrams ---------------------------------------------------------------------------------


def test_docs_embed_every_journey_s_current_diagram() -> None:
    """Fails when a journey's declaration changes and docs/journeys.md does not:
    run `crm journey diagram --write docs/journeys.md`."""
    text = DOCS.read_text(encoding="utf-8")
    for entry in JOURNEYS:
        found = re.search(rf"<!-- diagram {entry.name}\b.*?<!-- /diagram {entry.name} -->",
                          text, re.S)
        assert found, f"docs/journeys.md has no diagram of {entry.name}"
        assert found.group(0) == markdown(entry.name, load(entry.workflow)), (
            f"the diagram of {entry.name} in docs/journeys.md is stale: "
            "run `crm journey diagram --write docs/journeys.md`")
