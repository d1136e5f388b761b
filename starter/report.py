"""The KPI report: what operations look at, computed from the store.

`build_report` gathers the figures for a period; `render_text` prints them and
`render_html` draws a page with charts (funnels, escalations per day) that
needs nothing but a browser.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema
from domain.money import from_minor

# Each journey's main path, in order; the other steps are exits or side events.
FUNNELS: dict[str, list[str]] = {
    "lead": ["received", "assigned", "first_contact", "converted"],
    "course": ["enrolled", "course_ended", "callback_task", "callback_logged"],
    "payment": ["signed", "accepted", "payment_received", "paid"],
    "lifecycle": ["purchased", "dormant", "reactivated"],
}
EXITS: dict[str, list[str]] = {
    "lead": ["escalated", "discarded", "stale", "merged", "pooled"],
    "course": ["escalated"],
    "payment": ["overdue", "overdue_escalated", "cancelled"],
    "lifecycle": ["lost"],
}
# Steps recorded under a more specific name that count as one funnel step.
ALIASES = {
    "callback_renewal_intent": "callback_logged",
    "callback_no_interest": "callback_logged",
    "callback_unreachable": "callback_logged",
    "contacted": "first_contact",
    "claimed": "assigned",
    "reassigned": "assigned",
}


@dataclass
class FunnelStep:
    step: str
    reached: int
    dropped: int  # reached the previous step but not this one


@dataclass
class Report:
    start: date
    end: date  # exclusive
    leads_received: int = 0
    leads_converted: int = 0
    first_touch_hours: float | None = None
    payments_collected: dict[str, Decimal] = field(default_factory=dict)
    overdue_outstanding: dict[str, Decimal] = field(default_factory=dict)
    overdue_milestones: int = 0
    winback_customers: int = 0
    winback_reactivated: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    escalations_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    funnels: dict[str, list[FunnelStep]] = field(default_factory=dict)
    exits: dict[str, dict[str, int]] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float | None:
        return self.leads_converted / self.leads_received if self.leads_received else None

    @property
    def winback_success_rate(self) -> float | None:
        return self.winback_reactivated / self.winback_customers if self.winback_customers \
            else None


def build_report(store: Store, *, start: date, end: date) -> Report:
    """Figures for events in [start, end) (UTC days)."""
    lo = datetime.combine(start, datetime.min.time()).replace(tzinfo=_utc())
    hi = datetime.combine(end, datetime.min.time()).replace(tzinfo=_utc())
    report = Report(start=start, end=end)
    with store.unit_of_work() as session:
        _leads(session, report, lo, hi)
        _payments(session, report, lo, hi)
        _winback(session, report, lo, hi)
        _escalations(session, report, lo, hi)
        _funnels(session, report, lo, hi)
        report.tiers = {tier or "none": n for tier, n in session.execute(
            select(schema.Customer.tier, func.count()).where(schema.Customer.tier.is_not(None))
            .group_by(schema.Customer.tier)).all()}
    return report


def _leads(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    in_period = (schema.Lead.received_at >= lo, schema.Lead.received_at < hi,
                 schema.Lead.stage != "merged")
    report.leads_received = session.scalar(
        select(func.count()).select_from(schema.Lead).where(*in_period)) or 0
    report.leads_converted = session.scalar(
        select(func.count()).select_from(schema.Lead).where(*in_period,
                                                             schema.Lead.stage == "converted")
    ) or 0
    touched = session.execute(select(schema.Lead.received_at, schema.Lead.first_contact_at)
                              .where(*in_period, schema.Lead.first_contact_at.is_not(None))).all()
    if touched:
        hours = [(contact - received).total_seconds() / 3600 for received, contact in touched]
        report.first_touch_hours = sum(hours) / len(hours)


def _payments(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    collected: dict[str, Decimal] = defaultdict(Decimal)
    for currency, minor in session.execute(
        select(schema.Payment.currency, func.sum(schema.Payment.amount_minor))
        .where(schema.Payment.paid_at >= lo, schema.Payment.paid_at < hi)
        .group_by(schema.Payment.currency)
    ).all():
        collected[currency] += from_minor(int(minor), currency)
    report.payments_collected = dict(collected)
    overdue: dict[str, Decimal] = defaultdict(Decimal)
    rows = session.execute(
        select(schema.Contract.currency, schema.PaymentMilestone.amount_minor,
               schema.PaymentMilestone.paid_minor)
        .join(schema.Contract, schema.Contract.id == schema.PaymentMilestone.contract_id)
        .where(schema.PaymentMilestone.state == "overdue")).all()
    for currency, amount, paid in rows:
        overdue[currency] += from_minor(amount - paid, currency)
    report.overdue_outstanding = dict(overdue)
    report.overdue_milestones = len(rows)


def _winback(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    """Customers who got a win-back offer in the period, and how many of them
    bought again with the campaign credited."""
    targeted = set(session.scalars(
        select(schema.CouponRecord.customer_id).distinct()
        .where(schema.CouponRecord.campaign == "winback", schema.CouponRecord.issued_at >= lo,
               schema.CouponRecord.issued_at < hi)))
    report.winback_customers = len(targeted)
    if targeted:
        report.winback_reactivated = session.scalar(
            select(func.count(distinct(schema.Order.customer_id)))
            .where(schema.Order.customer_id.in_(targeted),
                   schema.Order.credited_coupon.is_not(None))) or 0


def _escalations(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    for journey, at in session.execute(
        select(schema.Escalation.journey, schema.Escalation.at)
        .where(schema.Escalation.at >= lo, schema.Escalation.at < hi)).all():
        totals[journey] += 1
        by_day[at.date().isoformat()][journey] += 1
    report.escalations = dict(totals)
    # Every day of the period, so quiet days show as gaps in the trend.
    days = [(report.start + timedelta(days=n)).isoformat()
            for n in range((report.end - report.start).days)]
    report.escalations_by_day = {day: dict(by_day.get(day, {})) for day in days}


def _funnels(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    reached: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for journey, entity, step in session.execute(
        select(schema.JourneyEvent.journey, schema.JourneyEvent.entity_id,
               schema.JourneyEvent.step)
        .where(schema.JourneyEvent.at >= lo, schema.JourneyEvent.at < hi)).all():
        reached[journey][ALIASES.get(step, step)].add(entity)
    for journey, steps in FUNNELS.items():
        seen = reached.get(journey, {})
        if not seen:
            continue
        funnel, previous = [], None
        for step in steps:
            entities = seen.get(step, set())
            dropped = len(previous - entities) if previous is not None else 0
            funnel.append(FunnelStep(step=step, reached=len(entities), dropped=dropped))
            previous = entities
        report.funnels[journey] = funnel
        report.exits[journey] = {step: len(seen.get(step, set()))
                                 for step in EXITS.get(journey, []) if seen.get(step)}
        report.completed[journey] = len(seen.get(steps[-1], set()))


def _utc() -> Any:
    from datetime import UTC

    return UTC


# -- rendering ---------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def render_text(report: Report) -> list[tuple[str, str]]:
    """The headline figures as (label, value) rows."""
    money = lambda d: ", ".join(f"{v} {k}" for k, v in sorted(d.items())) or "0"  # noqa: E731
    return [
        ("period", f"{report.start} to {report.end - timedelta(days=1)}"),
        ("leads received", str(report.leads_received)),
        ("lead conversion rate", _pct(report.conversion_rate)),
        ("average time to first touch",
         "—" if report.first_touch_hours is None else f"{report.first_touch_hours:.1f} h"),
        ("payments collected", money(report.payments_collected)),
        ("overdue outstanding", f"{money(report.overdue_outstanding)} "
                                f"({report.overdue_milestones} milestones)"),
        ("win-back success rate", f"{_pct(report.winback_success_rate)} "
                                  f"({report.winback_reactivated}/{report.winback_customers})"),
        ("tiers", ", ".join(f"{k} {v}" for k, v in sorted(report.tiers.items())) or "—"),
        ("escalations", ", ".join(f"{k} {v}" for k, v in sorted(report.escalations.items()))
         or "0"),
        *[(f"{label}", value) for label, value in report.extra.items()],
    ]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRM journeys — {{ r.start }} to {{ last }}</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#1f2933}
 h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
 .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.8rem}
 .card{background:#f0f4f8;border-radius:8px;padding:.8rem}
 .card b{display:block;font-size:1.4rem} .card span{color:#52606d;font-size:.85rem}
 svg text{font:12px system-ui,sans-serif;fill:#1f2933} .muted{color:#7b8794}
 table{border-collapse:collapse} td,th{padding:.2rem .8rem;text-align:left}
</style></head><body>
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
 <text x="800" y="{{ 34 * loop.index0 + 22 }}">{{ s.reached }}{% if s.dropped %} (−{{ s.dropped }}){% endif %}</text>
{% endfor %}</svg>
<p class="muted">completed: {{ r.completed[journey] }}{% for step, n in r.exits[journey].items() %} · {{ step }}: {{ n }}{% endfor %}</p>
{% endfor %}
<h2>Escalations per day</h2>
{% if bars %}
<svg width="900" height="240" role="img" aria-label="escalations per day">
{% for b in bars %}<rect x="{{ b.x }}" y="{{ b.y }}" width="{{ b.w }}" height="{{ b.h }}" fill="{{ b.colour }}"><title>{{ b.title }}</title></rect>
{% endfor %}<text x="20" y="232">{{ first_day }}</text><text x="780" y="232">{{ last_day }}</text>
</svg>
<p>{% for journey, colour in colours.items() %}<span style="color:{{ colour }}">■</span> {{ journey }} {% endfor %}</p>
{% else %}<p class="muted">No escalations in this period.</p>{% endif %}
<h2>Tiers</h2>
<table>{% for tier, n in r.tiers | dictsort %}<tr><td>{{ tier }}</td><td>{{ n }}</td></tr>{% endfor %}</table>
</body></html>
"""

COLOURS = {"lead": "#2680c2", "ticket": "#e12d39", "payment": "#f0b429", "course": "#3ebd93",
           "lifecycle": "#9446ed"}


def escalation_bars(report: Report, *, width: int = 860, height: int = 200) -> list[dict[str, Any]]:
    """Stacked bars, one per day, coloured by journey."""
    days = list(report.escalations_by_day)
    peak = max((sum(per.values()) for per in report.escalations_by_day.values()), default=0)
    if not peak:
        return []
    step = min(width / len(days), 40)
    bars = []
    for i, day in enumerate(days):
        y = height + 10
        for journey, n in sorted(report.escalations_by_day[day].items()):
            h = height * n / peak
            y -= h
            bars.append({"x": round(20 + step * i, 1), "y": round(y, 1), "w": round(step - 3, 1),
                         "h": round(h, 1), "colour": COLOURS.get(journey, "#9fb3c8"),
                         "title": f"{day} {journey}: {n}"})
    return bars


def render_html(report: Report) -> str:
    env = Environment(autoescape=select_autoescape(default_for_string=True, default=True))
    days = list(report.escalations_by_day)
    return env.from_string(PAGE).render(
        r=report, last=report.end - timedelta(days=1), cards=render_text(report)[1:],
        colours=COLOURS, bars=escalation_bars(report), first_day=days[0] if days else "",
        last_day=days[-1] if days else "")
