"""The KPI report: what operations look at, computed from the store.

`build_report` gathers the figures for a period; `render_text` prints them and
`render_html` draws a page with charts (funnels, escalations and SLA breaches
per day) that needs nothing but a browser.

Ticket figures are for the tickets opened in the period, in the state they
are in when the report is built (`now`): a ticket answered late, or not yet
answered past its deadline, has breached its first-response SLA; one resolved
over its target on the SLA clock, or still open past its resolution deadline,
its resolution SLA. CSAT counts the ratings given in the period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import fmean, median
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema
from domain.money import from_minor
from domain.tickets import TicketStage

# Each journey's main path, in order; the other steps are exits or side events.
FUNNELS: dict[str, list[str]] = {
    "lead": ["received", "assigned", "first_contact", "converted"],
    "course": ["enrolled", "course_ended", "callback_task", "callback_logged"],
    "payment": ["signed", "accepted", "payment_received", "paid"],
    "lifecycle": ["purchased", "dormant", "reactivated"],
    "ticket": ["opened", "first_response", "resolved", "closed"],
}
EXITS: dict[str, list[str]] = {
    "lead": ["escalated", "discarded", "stale", "merged", "pooled"],
    "course": ["escalated"],
    "payment": ["overdue", "overdue_escalated", "cancelled"],
    "lifecycle": ["lost"],
    "ticket": ["breached", "escalated", "reopened", "rated"],
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


# A ticket counts as resolved in these stages (a reopened one no longer does).
RESOLVED_STAGES = (TicketStage.resolved.value, TicketStage.closed.value)
# CSAT: the share of ratings at or above this score is the satisfied share.
SATISFIED_SCORE = 4
UNASSIGNED = "unassigned"


@dataclass
class TicketFigures:
    """The tickets of one group, one agent or all of them."""

    opened: int = 0
    first_response_seconds: list[float] = field(default_factory=list, repr=False)
    first_response_breached: int = 0
    resolved: int = 0
    resolution_breached: int = 0
    ratings: int = 0
    rating_total: int = 0
    satisfied: int = 0  # ratings of SATISFIED_SCORE or more

    @property
    def answered(self) -> int:
        return len(self.first_response_seconds)

    @property
    def first_response_median(self) -> float | None:
        return median(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def first_response_mean(self) -> float | None:
        return fmean(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def first_response_breach_rate(self) -> float | None:
        return self.first_response_breached / self.opened if self.opened else None

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.opened if self.opened else None

    @property
    def resolution_breach_rate(self) -> float | None:
        return self.resolution_breached / self.opened if self.opened else None

    @property
    def csat(self) -> float | None:
        """The average rating, 1 to 5."""
        return self.rating_total / self.ratings if self.ratings else None

    @property
    def satisfied_share(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None


@dataclass
class Report:
    start: date
    end: date  # exclusive
    as_of: datetime  # when ticket states were read and deadlines judged
    leads_received: int = 0
    leads_converted: int = 0
    first_touch_hours: float | None = None
    payments_collected: dict[str, Decimal] = field(default_factory=dict)
    # Overpayments: held for the customer, owed back or set against a later
    # invoice; not revenue, so not in `payments_collected`.
    payments_credit: dict[str, Decimal] = field(default_factory=dict)
    overdue_outstanding: dict[str, Decimal] = field(default_factory=dict)
    overdue_milestones: int = 0
    winback_customers: int = 0
    winback_reactivated: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    escalations_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    tickets: TicketFigures = field(default_factory=TicketFigures)
    ticket_groups: dict[str, TicketFigures] = field(default_factory=dict)
    ticket_agents: dict[tuple[str, str], TicketFigures] = field(default_factory=dict)
    breaches_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
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


def build_report(store: Store, *, start: date, end: date,
                 now: datetime | None = None) -> Report:
    """Figures for events in [start, end) (UTC days); ticket deadlines are
    judged at `now` (default: the current time)."""
    lo = datetime.combine(start, datetime.min.time()).replace(tzinfo=UTC)
    hi = datetime.combine(end, datetime.min.time()).replace(tzinfo=UTC)
    report = Report(start=start, end=end, as_of=now or datetime.now(UTC))
    with store.unit_of_work() as session:
        _leads(session, report, lo, hi)
        _payments(session, report, lo, hi)
        _winback(session, report, lo, hi)
        _escalations(session, report, lo, hi)
        _tickets(session, report, lo, hi)
        _ratings(session, report, lo, hi)
        _breaches(session, report, lo, hi)
        _funnels(session, report, lo, hi)
        report.ticket_groups = dict(sorted(report.ticket_groups.items()))
        report.ticket_agents = dict(sorted(report.ticket_agents.items()))
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
    credit: dict[str, Decimal] = defaultdict(Decimal)
    for currency, minor, credit_minor in session.execute(
        select(schema.Payment.currency, func.sum(schema.Payment.amount_minor),
               func.sum(schema.Payment.credit_minor))
        .where(schema.Payment.paid_at >= lo, schema.Payment.paid_at < hi)
        .group_by(schema.Payment.currency)
    ).all():
        collected[currency] += from_minor(int(minor) - int(credit_minor or 0), currency)
        if credit_minor:
            credit[currency] += from_minor(int(credit_minor), currency)
    report.payments_collected = dict(collected)
    report.payments_credit = dict(credit)
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
    report.escalations_by_day = {day: dict(by_day.get(day, {})) for day in _days(report)}


def _days(report: Report) -> list[str]:
    """Every day of the period, so quiet days show as gaps in a trend."""
    return [(report.start + timedelta(days=n)).isoformat()
            for n in range((report.end - report.start).days)]


def _ticket_figures(report: Report, group: str, agent: str | None) -> list[TicketFigures]:
    """The figures a ticket or rating counts in: all tickets, its group's, its agent's."""
    key = (group, agent or UNASSIGNED)
    return [report.tickets, report.ticket_groups.setdefault(group, TicketFigures()),
            report.ticket_agents.setdefault(key, TicketFigures())]


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _tickets(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    """Tickets opened in the period, counted against their group and their
    current assignee."""
    t, now = schema.Ticket, report.as_of
    opened = (t.created_at >= lo, t.created_at < hi)
    # The escalation flags are the journey's record; the timestamps also catch
    # a breach whose escalation has not been recorded (a worker that was down).
    first_response_breached = or_(
        t.first_response_breached.is_(True),
        t.first_response_at > t.first_response_due,
        and_(t.first_response_at.is_(None), t.first_response_due < now))
    resolution_breached = or_(
        t.resolution_breached.is_(True),
        t.sla_used_seconds >= t.resolution_target_seconds,
        and_(t.resolution_due_at.is_not(None), t.resolution_due_at <= now))
    for group, agent, n, late, resolved, overdue in session.execute(
        select(t.group, t.assignee_id, func.count(), _count(first_response_breached),
               _count(t.status.in_(RESOLVED_STAGES)), _count(resolution_breached))
        .where(*opened).group_by(t.group, t.assignee_id)).all():
        for figures in _ticket_figures(report, group, agent):
            figures.opened += n
            figures.first_response_breached += int(late)
            figures.resolved += int(resolved)
            figures.resolution_breached += int(overdue)
    for group, agent, seconds in session.execute(
        select(t.group, t.assignee_id, t.first_response_seconds)
        .where(*opened, t.first_response_seconds.is_not(None))).all():
        for figures in _ticket_figures(report, group, agent):
            figures.first_response_seconds.append(seconds)


def _ratings(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    """Ratings given in the period, against the ticket's group and the agent
    who resolved it."""
    r = schema.TicketRating
    for group, agent, n, total, satisfied in session.execute(
        select(r.group, r.agent_id, func.count(), func.sum(r.score),
               _count(r.score >= SATISFIED_SCORE))
        .where(r.at >= lo, r.at < hi).group_by(r.group, r.agent_id)).all():
        for figures in _ticket_figures(report, group, agent):
            figures.ratings += n
            figures.rating_total += int(total)
            figures.satisfied += int(satisfied)


def _breaches(session: Session, report: Report, lo: datetime, hi: datetime) -> None:
    """SLA breaches per day, as the ticket journey recorded them when it
    escalated a missed first response or resolution target."""
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for at, detail in session.execute(
        select(schema.TicketEvent.at, schema.TicketEvent.detail)
        .where(schema.TicketEvent.kind == "breached", schema.TicketEvent.at >= lo,
               schema.TicketEvent.at < hi)).all():
        by_day[at.date().isoformat()][(detail or {}).get("sla", "other")] += 1
    report.breaches_by_day = {day: dict(by_day.get(day, {})) for day in _days(report)}


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


# -- rendering ---------------------------------------------------------------------


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
        *[(f"{label}", value) for label, value in report.extra.items()],
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

COLOURS = {"lead": "#2680c2", "ticket": "#e12d39", "payment": "#f0b429", "course": "#3ebd93",
           "lifecycle": "#9446ed"}
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
