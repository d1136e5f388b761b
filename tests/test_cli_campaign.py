"""`crm campaign` as a person uses it: a declaration refused with where and
why and nothing written, an unknown campaign named, the examples defined
off; on the time-skipping server a launch with its counts per arm, a paused
campaign's launch refused, and the runs and results tables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.segments import define_segment, refresh_segment
from activities.store import Store
from domain import schema
from domain.campaigns import HOLDOUT, arm, check_campaign
from domain.segments import SegmentDefinition, SegmentPolicy
from tests.cli_support import UNREACHABLE, crm, crm_in_thread, point_cli_at
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

SPRING = {"name": "spring", "segment": "audience", "holdout": 0.25,
          "steps": [{"message": {"channel": "email", "template": "offer"}}]}
CUSTOMERS = [f"c{n:02d}" for n in range(8)]


def _cli_store(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("CRM_DATABASE_URL", store.engine.url.render_as_string(False))


def _audience(store: Store) -> None:
    seed_staff(store)
    with store.unit_of_work() as s:
        for customer in CUSTOMERS:
            s.add(schema.Customer(id=customer, name=customer, locale="fr",
                                  email=f"{customer}@example.com",
                                  created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    now = datetime.now(UTC)
    define_segment(store, SegmentPolicy(), SegmentDefinition(
        name="audience", rule={"field": {"name": "locale", "equals": "fr"}}), now=now)
    refresh_segment(store, SegmentPolicy(), "audience", now=now)


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / f"{data.get('name', 'campaign')}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_bad_declarations_and_unknown_campaigns_are_refused_with_the_reason(
        sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _audience(sqlite_store)
    _cli_store(sqlite_store, tmp_path, monkeypatch)
    monkeypatch.setenv("TEMPORAL_ADDRESS", UNREACHABLE)
    refusals = {
        "steps[0].message.channel: one of email, sms, chat, not 'fax'":
            {**SPRING, "steps": [{"message": {"channel": "fax", "template": "offer"}}]},
        "segment: no segment named 'nobody'": {**SPRING, "segment": "nobody"},
        "entry: Input should be 'launch' or 'on_entry'": {**SPRING, "entry": "weekly"},
        "steps[0].wait_for.event: one of purchase, reply":
            {**SPRING, "steps": [{"wait_for": {"event": "click", "days": 1}}]},
    }
    for reason, data in refusals.items():
        result = crm(f"campaign define {_write(tmp_path, data)}")
        assert result.exit_code == 1, result.output
        assert f"refused: {reason}" in " ".join(result.stderr.split())
    not_json = tmp_path / "broken.json"
    not_json.write_text("{steps", encoding="utf-8")
    result = crm(f"campaign define {not_json}")
    assert result.exit_code == 1 and "cannot read" in result.stderr
    with sqlite_store.unit_of_work() as s:
        assert s.query(schema.Campaign).count() == 0  # nothing written
    for command in ("launch", "pause", "resume", "status", "results"):
        result = crm(f"campaign {command} nope")
        assert result.exit_code == 1, (command, result.output)
        assert "refused: no campaign named 'nope'" in result.stderr, command
    result = crm(f"campaign define {_write(tmp_path, {**SPRING, 'entry': 'on_entry'})}")
    assert result.exit_code == 0, result.output
    shown = crm("campaign status spring")
    assert "audience audience (and as customers enter it)" in " ".join(shown.stdout.split())
    result = crm("campaign launch spring")  # Temporal is not there: said so, exit 1
    assert result.exit_code == 1 and "cannot reach Temporal at" in result.stderr

    result = crm("campaign examples")
    assert result.exit_code == 0, result.output
    assert "campaign no-repurchase-coupon defined (off until launched)" in result.stdout
    with sqlite_store.unit_of_work() as s:
        assert s.query(schema.CampaignMember).count() == 0  # the failed launch entered no one
    shown = crm("campaign status no-repurchase-coupon")
    assert shown.exit_code == 0 and "no-repurchase-coupon: off" in shown.stdout


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment, sqlite_store: Store,
                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    _audience(sqlite_store)
    _cli_store(sqlite_store, tmp_path, monkeypatch)
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        point_cli_at(time_skipping_env, h.task_queue, monkeypatch)
        h.journeys.started += [f"campaign-spring-{c}" for c in CUSTOMERS]
        yield h


async def test_define_launch_pause_status_and_results_through_the_cli(
        harness: Harness, tmp_path: Path) -> None:
    h = harness
    defined = await crm_in_thread(f"campaign define {_write(tmp_path, SPRING)}")
    assert defined.exit_code == 0, defined.output
    arms = [arm(check_campaign(SPRING), c) for c in CUSTOMERS]
    launched = await crm_in_thread("campaign launch spring")
    assert launched.exit_code == 0, launched.output
    counts = ", ".join(f"{a} {arms.count(a)}" for a in sorted(set(arms)))
    assert f"campaign spring launched: {counts}" in launched.stdout
    runs = arms.count("a")
    await eventually(lambda: len(h.touches(step="0_email", status="sent")) == runs, timeout=60)

    again = await crm_in_thread("campaign launch spring")
    assert again.exit_code == 0 and "nobody may enter now" in again.stdout
    paused = await crm_in_thread("campaign pause spring")
    assert paused.exit_code == 0 and "campaign spring paused" in paused.stdout
    refused = await crm_in_thread("campaign launch spring")
    assert refused.exit_code == 1
    assert "refused: campaign 'spring' is paused: resume it to launch" in refused.stderr

    status = await crm_in_thread("campaign status spring")
    assert status.exit_code == 0, status.output
    assert "campaign spring: paused, audience audience, hold-out 25%" in status.stdout
    lines = [line.replace("│", " ").split() for line in status.stdout.splitlines()]
    assert [HOLDOUT, "holdout", str(arms.count(HOLDOUT))] in lines
    results = await crm_in_thread("campaign results spring")
    assert results.exit_code == 0, results.output
    assert "campaign spring: results" in results.stdout
    assert any(line[:4] == ["a", str(runs), "0", "0.0%"] for line in
               [line.replace("│", " ").split() for line in results.stdout.splitlines()])
