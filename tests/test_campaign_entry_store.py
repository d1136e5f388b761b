"""Enrolling an on_entry campaign's entrants in the store, on both engines,
with a hand-written client that records the runs it is asked to start: each
entry enrolled once (a second enrolment, or a retried one, records no one
again and starts the same runs), the hold-out recorded without a run, none
while paused and those still in the segment after, the launch-only campaign
never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from activities.campaign_entry import enrol_entrants, runs_to_start, start_runs
from activities.campaigns import define_campaign, launch, set_status
from activities.segments import define_segment, refresh_segment
from activities.store import Store
from domain import schema
from domain.campaigns import HOLDOUT, CampaignInput, arm
from domain.segments import SegmentDefinition, SegmentPolicy

T0 = datetime(2026, 5, 1, 2, 30, tzinfo=UTC)
CUSTOMERS = [f"c{n:02d}" for n in range(10)]


class RecordingClient:
    """The one call of Temporal's client that entering a campaign makes."""

    def __init__(self) -> None:
        self.started: dict[str, CampaignInput] = {}

    async def start_workflow(self, workflow: str, arg: CampaignInput, *, id: str,
                             **_: Any) -> None:
        assert workflow == "CampaignJourney"
        self.started[id] = arg


def seed(store: Store) -> None:
    with store.unit_of_work() as s:
        for n, customer in enumerate(CUSTOMERS):
            s.add(schema.Customer(id=customer, name=customer, locale="en" if n < 4 else "fr",
                                  created_at=T0))
    define_segment(store, SegmentPolicy(), SegmentDefinition(
        name="english", rule={"field": {"name": "locale", "equals": "en"}}), now=T0)
    refresh_segment(store, SegmentPolicy(), "english", now=T0)


def speak(store: Store, locale: str, *customers: str, at: datetime) -> None:
    with store.unit_of_work() as s:
        for customer in customers:
            s.get(schema.Customer, customer).locale = locale  # type: ignore[union-attr]
    refresh_segment(store, SegmentPolicy(), "english", now=at)


def members(store: Store, campaign: str) -> list[tuple[str, int, str]]:
    with store.unit_of_work() as s:
        return sorted((m.customer_id, m.run, m.arm) for m in s.query(schema.CampaignMember)
                      .filter(schema.CampaignMember.campaign == campaign))


async def enrol(store: Store, client: RecordingClient, name: str, now: datetime) -> int:
    """What the activity does: record, then start the runs entered at `now`."""
    enrol_entrants(store, name, now=now)
    definition, entered = runs_to_start(store, name, entered_at=now)
    assert definition is not None
    return await start_runs(client, task_queue="q", definition=definition, entered=entered,
                            now=now)  # type: ignore[arg-type]


async def test_each_entry_is_enrolled_once_by_the_rules(store: Store) -> None:
    seed(store)
    client = RecordingClient()
    live = define_campaign(store, {"name": "live", "audience": {
        "segment": "english", "entry": "on_entry"}, "holdout": 0.3,
        "steps": [{"message": {"channel": "email", "template": "offer"}}]}, now=T0)
    define_campaign(store, {"name": "once", "segment": "english",
                            "steps": [{"message": {"channel": "email", "template": "offer"}}]},
                    now=T0)
    for name in ("live", "once"):
        await launch(store, client, task_queue="q", name=name, now=T0)  # type: ignore[arg-type]
    assert [c for c, _, _ in members(store, "live")] == CUSTOMERS[:4]

    day1 = T0 + timedelta(days=1)
    speak(store, "en", *CUSTOMERS[4:8], at=day1)
    before = set(client.started)
    assert await enrol(store, client, "live", day1) == sum(
        arm(live, c) != HOLDOUT for c in CUSTOMERS[4:8])
    assert [c for c, _, _ in members(store, "live")] == CUSTOMERS[:8]
    assert {(c, a) for c, _, a in members(store, "live")} == {
        (c, arm(live, c)) for c in CUSTOMERS[:8]}
    assert set(client.started) - before == {f"campaign-live-{c}" for c in CUSTOMERS[4:8]
                                            if arm(live, c) != HOLDOUT}
    assert all(client.started[f"campaign-live-{c}"].entered_at == day1
               for c in CUSTOMERS[4:8] if arm(live, c) != HOLDOUT)
    # Retried (the activity failed after recording them): no one is recorded
    # again, and the same runs are asked for (running ones are left as they are).
    enrolled = members(store, "live")
    assert enrol_entrants(store, "live", now=day1) == {}
    assert members(store, "live") == enrolled
    assert await enrol(store, client, "live", day1) == sum(
        arm(live, c) != HOLDOUT for c in CUSTOMERS[4:8])
    # A launch-only campaign never enrols later.
    assert enrol_entrants(store, "once", now=day1) == {}
    assert [c for c, _, _ in members(store, "once")] == CUSTOMERS[:4]

    # Paused: no one; resumed, c08 (still in) is enrolled, c09 (left) is not.
    day2 = day1 + timedelta(days=1)
    set_status(store, "live", "paused", now=day2)
    speak(store, "en", "c08", "c09", at=day2)
    assert enrol_entrants(store, "live", now=day2) == {}
    speak(store, "fr", "c09", at=day2 + timedelta(hours=1))
    set_status(store, "live", "active", now=day2)
    day3 = day2 + timedelta(days=1)
    enrol_entrants(store, "live", now=day3)
    assert [c for c, _, _ in members(store, "live")] == CUSTOMERS[:9]
    # c09 enters again later: never re-entered, but this is its first entry.
    speak(store, "en", "c09", at=day3)
    enrol_entrants(store, "live", now=day3 + timedelta(hours=1))
    assert [c for c, _, _ in members(store, "live")] == CUSTOMERS
    # c00 leaves and comes back: `never` keeps it to one run.
    speak(store, "fr", "c00", at=day3 + timedelta(hours=2))
    speak(store, "en", "c00", at=day3 + timedelta(hours=3))
    assert enrol_entrants(store, "live", now=day3 + timedelta(hours=4)) == {}
    assert [r for c, r, _ in members(store, "live") if c == "c00"] == [1]
