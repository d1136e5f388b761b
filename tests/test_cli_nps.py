"""`crm nps` as a person uses it, on the time-skipping server: a period's
surveys launched, one survey started, a bad score refused with the reason and
the survey unchanged, a detractor's answer and its follow-up (someone else's
refused), where the survey stands; a bad period refused before anything is
asked of Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.nps import NpsStage
from tests.cli_support import UNREACHABLE, _poll, crm, crm_in_thread, point_cli_at
from tests.harness import Harness, make_settings, running_worker, seed_staff

PERIOD = "2026Q2"


def _cli_store(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("CRM_DATABASE_URL", store.engine.url.render_as_string(False))


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment, sqlite_store: Store,
                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as s:
        s.get(schema.Customer, "cust-1").owner_id = "rep-a"  # type: ignore[union-attr]
        at = datetime(2026, 5, 10, tzinfo=UTC)
        s.add(schema.Order(id="o-1", customer_id="cust-2", amount_minor=9900, currency="CNY",
                           category="tea", at=at, recorded_at=at))
    _cli_store(sqlite_store, tmp_path, monkeypatch)
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        point_cli_at(time_skipping_env, h.task_queue, monkeypatch)
        h.journeys.started += [f"nps-cust-1-{PERIOD}", f"nps-cust-2-{PERIOD}"]
        yield h


async def test_a_survey_answered_by_a_detractor_and_followed_up_through_the_cli(
        harness: Harness) -> None:
    launched = await crm_in_thread(f"nps launch {PERIOD}")
    assert launched.exit_code == 0, launched.output
    assert f"1 surveys for {PERIOD} started" in launched.stdout  # cust-2 bought in May
    started = await crm_in_thread(f"nps start cust-1 {PERIOD}")
    assert started.exit_code == 0, started.output
    await _poll(f"nps status cust-1 {PERIOD}", lambda s: s["owner_id"] == "rep-a")

    bad = await crm_in_thread(f"nps answer cust-1 {PERIOD} 11")
    assert bad.exit_code == 1
    assert "rejected: score 11 is not between 0 and 10" in bad.stderr
    unchanged = await _poll(f"nps status cust-1 {PERIOD}", lambda s: True)
    assert (unchanged["stage"], unchanged["score"]) == (NpsStage.asked.value, None)

    answered = await crm_in_thread(f"nps answer cust-1 {PERIOD} 3 --reason 'slow reply'")
    assert answered.exit_code == 0, answered.output
    assert "accepted: cust-1 scored 3" in answered.stdout and "follow-up due" in answered.stdout
    again = await crm_in_thread(f"nps answer cust-1 {PERIOD} 9")
    assert again.exit_code == 1 and "the survey is already answered (3)" in again.stderr

    someone_else = await crm_in_thread(f"nps follow-up cust-1 {PERIOD} rep-b")
    assert someone_else.exit_code == 1 and "rejected:" in someone_else.stderr
    done = await crm_in_thread(f"nps follow-up cust-1 {PERIOD} rep-a --note 'called'")
    assert done.exit_code == 0, done.output
    final = await _poll(f"nps status cust-1 {PERIOD}", lambda s: s["followed_up_at"])
    assert (final["score"], final["category"]) == (3, "slow_response")
    shown = await crm_in_thread(f"nps status cust-1 {PERIOD}")
    assert shown.exit_code == 0 and "slow reply" in shown.stdout


def test_a_bad_period_or_score_is_refused_before_temporal_is_asked(
        sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_store(sqlite_store, tmp_path, monkeypatch)
    monkeypatch.setenv("TEMPORAL_ADDRESS", UNREACHABLE)
    for command in ("nps answer cust-1 2026Q5 8", "nps start cust-1 spring",
                    "nps launch 2026"):
        result = crm(command)
        assert result.exit_code == 1, (command, result.output)
        assert "period" in result.stderr.lower(), (command, result.stderr)
        assert "Temporal" not in result.stderr
    result = crm(f"nps answer cust-1 {PERIOD} eight")
    assert result.exit_code == 2 and "Invalid value for 'score'" in result.output
