"""Where every journey stands: for each journey in the registry, how many of
its running journeys wait in each step (CrmStep), how many are past their SLA
deadline (CrmSlaDeadline) and how many carry an incident (CrmIncident), each
count with the Temporal UI query that lists those journeys.

Counts come from Temporal's visibility, one `count_workflows` call per step and
two per journey more (overdue, incidents); Temporal's counts group only by
execution status, so a step is one call. The calls run at most `PARALLEL` at
a time. Visibility is eventually consistent: a journey that moved a moment
ago may be counted in its previous step for about a second.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from temporalio.client import Client

PARALLEL = 8


@dataclass
class StepCount:
    step: str
    running: int
    query: str
    url: str
    ends: bool = False  # a stage the journey completes in (counted while it drains)


@dataclass
class JourneyCounts:
    journey: str
    workflow: str
    running: int
    overdue: int
    incidents: int
    steps: list[StepCount] = field(default_factory=list)
    overdue_url: str = ""
    incidents_url: str = ""
    diagram: str = ""


@dataclass
class Overview:
    at: datetime
    namespace: str
    ui: str
    journeys: list[JourneyCounts]
    calls: int

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


def ui_link(ui: str, namespace: str, query: str) -> str:
    """The Temporal UI's list of the workflows a query matches."""
    return f"{ui.rstrip('/')}/namespaces/{quote(namespace)}/workflows?query={quote(query)}"


def running(journey: str) -> str:
    return f"CrmJourney = '{journey}' AND ExecutionStatus = 'Running'"


async def overview(client: Client, *, ui: str, now: datetime | None = None) -> Overview:
    """Counts every journey's running instances per step, overdue and in incident."""
    from domain.registry import JOURNEYS, load
    from workflows.kit.diagram import mermaid

    now = now or datetime.now(UTC)
    namespace = client.namespace
    gate = asyncio.Semaphore(PARALLEL)
    calls = 0

    async def count(query: str) -> int:
        nonlocal calls
        async with gate:
            calls += 1
            return (await client.count_workflows(query)).count

    async def one(name: str, workflow: str) -> JourneyCounts:
        cls = load(workflow)
        plan = cls.planned()
        waits = plan.waits()
        base = running(name)
        step_queries = [f"{base} AND CrmStep = '{wait}'" for wait in waits]
        overdue_q = f"{base} AND CrmSlaDeadline < '{now.isoformat()}'"
        incident_q = f"{base} AND CrmIncident IS NOT NULL"
        totals = await asyncio.gather(count(base), count(overdue_q), count(incident_q),
                                      *(count(q) for q in step_queries))
        ends = {str(stage) for stage in plan.ends}
        return JourneyCounts(
            journey=name, workflow=cls.__name__, running=totals[0], overdue=totals[1],
            incidents=totals[2],
            steps=[StepCount(step=wait, running=n, query=q, url=ui_link(ui, namespace, q),
                             ends=wait in ends)
                   for wait, n, q in zip(waits, totals[3:], step_queries, strict=True)],
            overdue_url=ui_link(ui, namespace, overdue_q),
            incidents_url=ui_link(ui, namespace, incident_q),
            diagram=mermaid(cls))

    journeys = await asyncio.gather(*(one(e.name, e.workflow) for e in JOURNEYS))
    return Overview(at=now, namespace=namespace, ui=ui, journeys=list(journeys), calls=calls)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Journeys — overview</title>
<style>
body {{ font-family: "WenQuanYi Zen Hei", system-ui, sans-serif; margin: 24px; color: #1f2933; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 28px; }}
.flow {{ display: flex; flex-wrap: wrap; gap: 8px; align-items: stretch; }}
.step {{ border: 1px solid #9aa5b1; border-radius: 6px; padding: 8px 12px; min-width: 110px;
        text-decoration: none; color: inherit; background: #f5f7fa; }}
.step b {{ display: block; font-size: 22px; }}
.step.busy {{ background: #e3f8ff; border-color: #2680c2; }}
.step.end {{ border-style: dashed; }}
.alarm {{ color: #cf1124; }} .muted {{ color: #7b8794; }}
details pre {{ background: #f5f7fa; padding: 8px; }}
</style></head><body>
<h1>Journeys — where every running journey stands</h1>
<p class="muted">As of {at} · namespace {namespace} · {calls} visibility calls ·
counts link to the Temporal UI's list of those journeys.</p>
{sections}
</body></html>
"""


def render_html(view: Overview) -> str:
    """The overview as one self-contained page (no script, no network)."""
    sections = []
    for j in view.journeys:
        boxes = "".join(
            f'<a class="step{" busy" if s.running else ""}{" end" if s.ends else ""}" '
            f'href="{html.escape(s.url)}" data-step="{html.escape(s.step)}">'
            f'<b>{s.running}</b>{html.escape(s.step)}</a>'
            for s in j.steps)
        sections.append(
            f'<h2 id="{j.journey}">{html.escape(j.journey)} '
            f'<span class="muted">({html.escape(j.workflow)})</span></h2>'
            f'<p>{j.running} running · <a class="{"alarm" if j.overdue else ""}" '
            f'href="{html.escape(j.overdue_url)}">{j.overdue} past their SLA deadline</a> · '
            f'<a class="{"alarm" if j.incidents else ""}" href="{html.escape(j.incidents_url)}">'
            f'{j.incidents} in incident</a></p>'
            f'<div class="flow">{boxes}</div>'
            f'<details><summary>diagram (Mermaid)</summary>'
            f'<pre>{html.escape(j.diagram)}</pre></details>')
    return PAGE.format(at=html.escape(view.at.isoformat(timespec="seconds")),
                       namespace=html.escape(view.namespace), calls=view.calls,
                       sections="\n".join(sections))
