"""The KPI report as text rows, ticket tables and an HTML page with charts
(funnels, escalations and SLA breaches per day) that needs nothing but a browser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from jinja2 import Environment, select_autoescape

from domain.registry import JOURNEYS
from starter.report.campaigns import campaign_rows
from starter.report.customers import (
    CHURN_LINE,
    REPURCHASE_LINE,
    CustomerFigures,
)
from starter.report.figures import (
    SATISFIED_SCORE,
    Report,
    TicketFigures,
)
from starter.report.loyalty import loyalty_rows
from starter.report.nps import nps_rows
from starter.report.pipeline import pipeline_rows


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _csat(figures: TicketFigures) -> str:
    if figures.csat is None:
        return "—"
    return (f"{figures.csat:.2f} / 5, {_pct(figures.satisfied_share)} rated "
            f"{SATISFIED_SCORE}+ ({figures.ratings} ratings)")


def render_text(report: Report) -> list[tuple[str, str]]:
    """The headline figures as (label, value) rows."""
    money = lambda d: ", ".join(f"{v} {k}" for k, v in sorted(d.items())) or "0"  # noqa: E731
    t = report.tickets
    return [
        ("period", f"{report.start} to {report.end - timedelta(days=1)}"),
        ("leads received", str(report.leads_received)),
        ("lead conversion rate", _pct(report.conversion_rate)),
        ("average time to first touch",
         "—" if report.first_touch_hours is None else f"{report.first_touch_hours:.1f} h"),
        ("payments collected", money(report.payments_collected)),
        ("overpayments held as credit", money(report.payments_credit)),
        ("overdue outstanding", f"{money(report.overdue_outstanding)} "
                                f"({report.overdue_milestones} milestones)"),
        ("win-back success rate", f"{_pct(report.winback_success_rate)} "
                                  f"({report.winback_reactivated}/{report.winback_customers})"),
        ("tiers", ", ".join(f"{k} {v}" for k, v in sorted(report.tiers.items())) or "—"),
        ("escalations", ", ".join(f"{k} {v}" for k, v in sorted(report.escalations.items()))
         or "0"),
        ("tickets opened", str(t.opened)),
        ("ticket first response, median / average",
         f"{_duration(t.first_response_median)} / {_duration(t.first_response_mean)} "
         f"({t.answered} answered)" if t.answered else "—"),
        ("first-response SLA breach rate", _share(t.first_response_breached, t.opened)),
        ("ticket resolution rate", _share(t.resolved, t.opened)),
        ("resolution SLA breach rate", _share(t.resolution_breached, t.opened)),
        ("CSAT", _csat(t)),
        *customer_rows(report.customers),
        *pipeline_rows(report.pipeline),
        *nps_rows(report.nps),
        *loyalty_rows(report.loyalty),
        *campaign_rows(report.campaigns),
        *[(f"{label}", value) for label, value in report.extra.items()],
    ]


def _line(healthy: bool | None, line: str) -> str:
    return "" if healthy is None else f", {'within' if healthy else 'outside'} the {line} line"


def customer_rows(c: CustomerFigures) -> list[tuple[str, str]]:
    """New customers, retention, churn, repurchase, lifetime value by tier
    and lead conversion by source."""
    yearly = "" if c.yearly_churn_rate is None or c.days >= 365 else \
        f"; {_pct(c.yearly_churn_rate)} a year"
    return [
        ("new customers", str(c.new_customers)),
        ("retention rate", _share(c.retained, c.active_at_start)),
        ("churn rate", f"{_share(c.churned, c.active_at_start)}{yearly}"
                       f"{_line(c.churn_healthy, f'< {CHURN_LINE:.0%} a year')}"),
        ("repurchase rate", f"{_share(c.repeat_buyers, c.buyers)}"
                            f"{_line(c.repurchase_healthy, f'> {REPURCHASE_LINE:.0%}')}"),
        ("lifetime value by tier", "; ".join(
            f"{tier} {v.average} {currency} average ({v.customers} customers)"
            for (tier, currency), v in c.lifetime_value.items()) or "—"),
        ("lead conversion by source", ", ".join(
            f"{source} {_share(s.converted, s.received)}"
            for source, s in c.lead_sources.items()) or "—"),
    ]


TICKET_COLUMNS = ["opened", "first response median", "average", "first-response breaches",
                  "resolved", "resolution breaches", "CSAT (ratings)", f"rated {SATISFIED_SCORE}+"]


def _ticket_cells(f: TicketFigures) -> list[str]:
    return [str(f.opened), _duration(f.first_response_median),
            _duration(f.first_response_mean), _share(f.first_response_breached, f.opened),
            _share(f.resolved, f.opened), _share(f.resolution_breached, f.opened),
            "—" if f.csat is None else f"{f.csat:.2f} ({f.ratings})", _pct(f.satisfied_share)]


def ticket_tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per group and per agent; none in a period without
    tickets or ratings."""
    if not report.ticket_groups:
        return []
    return [
        ("tickets by group", ["group", *TICKET_COLUMNS],
         [[group, *_ticket_cells(f)] for group, f in report.ticket_groups.items()]),
        ("tickets by agent", ["group", "agent", *TICKET_COLUMNS],
         [[group, agent, *_ticket_cells(f)]
          for (group, agent), f in report.ticket_agents.items()]),
    ]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>CRM journeys — {{ r.start }} to {{ last }}</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#1f2933}
 h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
 h3{font-size:1rem}
 .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.8rem}
 .card{background:#f0f4f8;border-radius:8px;padding:.8rem}
 .card b{display:block;font-size:1.4rem} .card span{color:#52606d;font-size:.85rem}
 svg text{font:12px system-ui,sans-serif;fill:#1f2933} .muted{color:#7b8794}
 table{border-collapse:collapse} td,th{padding:.2rem .8rem;text-align:left}
 table.figures tr:nth-child(even){background:#f0f4f8}
 table.figures th{font-size:.85rem;color:#52606d}
</style></head><body>
{% macro daily(bars, colours, labels, what) %}
{% if bars %}
<svg width="900" height="240" role="img" aria-label="{{ what }} per day">
{% for b in bars %}<rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.w }}" height="{{ b.h }}"
 fill="{{ b.colour }}"><title>{{ b.title }}</title></rect>
{% endfor %}<text x="20" y="232">{{ first_day }}</text>
<text x="780" y="232">{{ last_day }}</text>
</svg>
<p>{% for key, colour in colours.items() %}<span style="color:{{ colour }}">■</span>
 {{ labels.get(key, key) }} {% endfor %}</p>
{% else %}<p class="muted">No {{ what }} in this period.</p>{% endif %}
{% endmacro %}
<h1>CRM journeys: {{ r.start }} to {{ last }}</h1>
<div class="cards">
{% for label, value in cards %}<div class="card"><span>{{ label }}</span><b>{{ value }}</b></div>
{% endfor %}</div>
{% for journey, steps in r.funnels.items() %}
<h2>{{ journey }} funnel</h2>
{% set top = (steps | map(attribute="reached") | max) or 1 %}
<svg width="900" height="{{ 34 * steps|length + 10 }}" role="img" aria-label="{{ journey }} funnel">
{% for s in steps %}{% set w = (620 * s.reached / top) | round(1) %}
 <rect x="{{ 440 - w / 2 }}" y="{{ 34 * loop.index0 + 4 }}" width="{{ w }}" height="26" rx="4"
       fill="hsl({{ 210 - 25 * loop.index0 }},60%,55%)"/>
 <text x="10" y="{{ 34 * loop.index0 + 22 }}">{{ s.step }}</text>
 <text x="800" y="{{ 34 * loop.index0 + 22 }}">{{ s.reached }}
 {%- if s.dropped %} (−{{ s.dropped }}){% endif %}</text>
{% endfor %}</svg>
<p class="muted">completed: {{ r.completed[journey] }}
{%- for step, n in r.exits[journey].items() %} · {{ step }}: {{ n }}{% endfor %}</p>
{% endfor %}
<h2>Escalations per day</h2>
{{ daily(bars, colours, {}, "escalations") }}
<h2>Tickets</h2>
{% for title, header, rows in tables %}
<h3>{{ title }}</h3>
<table class="figures"><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% else %}<p class="muted">No tickets opened or rated in this period.</p>
{% endfor %}
{% if tables %}<p class="muted">Tickets opened in the period, as they stood at {{ as_of }} UTC;
an agent's tickets are those assigned to them, their ratings those of the tickets they resolved.
CSAT counts the ratings given in the period.</p>{% endif %}
<h2>SLA breaches per day</h2>
{{ daily(breach_bars, sla_colours, sla_labels, "SLA breaches") }}
<h2>Tiers</h2>
<table>{% for tier, n in r.tiers | dictsort %}<tr><td>{{ tier }}</td><td>{{ n }}</td></tr>
{% endfor %}</table>
</body></html>
"""

COLOURS = {entry.name: entry.colour for entry in JOURNEYS}
SLA_COLOURS = {"first_response": "#e12d39", "resolution": "#f0b429"}
SLA_LABELS = {"first_response": "first response", "resolution": "resolution"}


def _stacked_bars(by_day: dict[str, dict[str, int]], colours: dict[str, str],
                  labels: dict[str, str], *, width: int, height: int) -> list[dict[str, Any]]:
    """One bar per day, stacked by key; none when every day is empty."""
    days = list(by_day)
    peak = max((sum(per.values()) for per in by_day.values()), default=0)
    if not peak:
        return []
    step = min(width / len(days), 40)
    bars = []
    for i, day in enumerate(days):
        y = height + 10
        for key, n in sorted(by_day[day].items()):
            h = height * n / peak
            y -= h
            bars.append({"x": round(20 + step * i, 1), "y": round(y, 1),
                         "w": round(max(step - 3, 1), 1), "h": round(h, 1),
                         "colour": colours.get(key, "#9fb3c8"),
                         "title": f"{day} {labels.get(key, key)}: {n}"})
    return bars


def escalation_bars(report: Report, *, width: int = 860, height: int = 200) -> list[dict[str, Any]]:
    """Stacked bars, one per day, coloured by journey."""
    return _stacked_bars(report.escalations_by_day, COLOURS, {}, width=width, height=height)


def breach_bars(report: Report, *, width: int = 860, height: int = 200) -> list[dict[str, Any]]:
    """Stacked bars, one per day, coloured by the SLA that was missed."""
    return _stacked_bars(report.breaches_by_day, SLA_COLOURS, SLA_LABELS, width=width,
                         height=height)


def render_html(report: Report) -> str:
    env = Environment(autoescape=select_autoescape(default_for_string=True, default=True))
    days = list(report.escalations_by_day)
    return env.from_string(PAGE).render(
        r=report, last=report.end - timedelta(days=1), cards=render_text(report)[1:],
        colours=COLOURS, bars=escalation_bars(report), first_day=days[0] if days else "",
        last_day=days[-1] if days else "", tables=ticket_tables(report),
        breach_bars=breach_bars(report), sla_colours=SLA_COLOURS, sla_labels=SLA_LABELS,
        as_of=report.as_of.strftime("%Y-%m-%d %H:%M"))
