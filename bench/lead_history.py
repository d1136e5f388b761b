"""What the lead journeys' histories show: each activity's time from scheduled
to started to completed, a journey's span, and the event types of one journey."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from domain.leads import (
    lead_workflow_id,
)


def event_name(event_type: int) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")


async def history(client: Client, lead_id: str) -> WorkflowHistory:
    return await client.get_workflow_handle(lead_workflow_id(lead_id)).fetch_history()


def activity_times(hist: WorkflowHistory) -> dict[str, list[tuple[float, float]]]:
    """Per activity type: (queued, running) seconds, i.e. scheduled -> started -> completed."""
    scheduled: dict[int, tuple[str, datetime]] = {}
    started: dict[int, datetime] = {}
    times: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for event in hist.events:
        at = event.event_time.ToDatetime()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_type.name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            name, queued_at = scheduled[sid]
            began = started.get(sid, queued_at)
            times[name].append(((began - queued_at).total_seconds(), (at - began).total_seconds()))
    return times


def journey_span(hist: WorkflowHistory) -> float:
    events = hist.events
    return (events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()).total_seconds()


def spread(items: list[str], count: int) -> list[str]:
    step = max(1, len(items) // max(count, 1))
    return items[::step][:count]


@dataclass
class Profile:
    activities: dict[str, list[tuple[float, float]]]
    span: float  # median seconds from the first to the last history event
    events: list[int]  # history length of each journey


async def activity_profile(client: Client, lead_ids: list[str]) -> Profile:
    merged: dict[str, list[tuple[float, float]]] = defaultdict(list)
    spans, events = [], []
    for lead_id in lead_ids:
        hist = await history(client, lead_id)
        spans.append(journey_span(hist))
        events.append(len(hist.events))
        for name, values in activity_times(hist).items():
            merged[name].extend(values)
    return Profile(merged, statistics.median(spans), events)


def print_event_types(real: WorkflowHistory, noop: WorkflowHistory) -> None:
    real_types = Counter(event_name(e.event_type) for e in real.events)
    noop_types = Counter(event_name(e.event_type) for e in noop.events)
    print(f"  {'event type':<36} {'real':>4} {'no-op':>5}")
    for name, n in real_types.most_common():
        print(f"  {name:<36} {n:>4} {noop_types.get(name, 0):>5}")
    for name, n in noop_types.items():
        if name not in real_types:
            print(f"  {name:<36} {0:>4} {n:>5}")


def print_profiles(profiles: dict[str, Profile], sample: int) -> None:
    print(f"\nactivities, median ms over {sample} journeys (queued = scheduled->started, "
          f"run = started->completed):")
    names = sorted({n for p in profiles.values() for n in p.activities})
    variants = list(profiles)
    header = f"  {'activity':<18}" + "".join(f" {v + ' queued':>13} {v + ' run':>10}"
                                           for v in variants)
    print(header)
    for name in names:
        row = f"  {name:<18}"
        for v in variants:
            values = profiles[v].activities.get(name, [])
            if values:
                q = statistics.median(x for x, _ in values) * 1000
                r = statistics.median(y for _, y in values) * 1000
                row += f" {q:>13.1f} {r:>10.1f}"
            else:
                row += f" {'-':>13} {'-':>10}"
        print(row)
    print("  journey span (first -> last history event), median s: "
          + ", ".join(f"{v} {profiles[v].span:.3f}" for v in variants))
    print("  history events per journey, median (min-max): "
          + ", ".join(f"{v} {statistics.median(p.events):.0f} ({min(p.events)}-{max(p.events)})"
                      for v, p in profiles.items()))
