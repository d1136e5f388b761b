"""`build_report`: the KPI report's figures for a period, read from the store."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema
from domain.money import from_minor
from starter.report.campaigns import campaign_figures
from starter.report.customers import customer_figures
from starter.report.figures import (
    ALIASES,
    EXITS,
    FUNNELS,
    RESOLVED_STAGES,
    SATISFIED_SCORE,
    UNASSIGNED,
    FunnelStep,
    Report,
    TicketFigures,
)
from starter.report.loyalty import loyalty_figures
from starter.report.nps import nps_figures
from starter.report.pipeline import pipeline_figures


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
        report.customers = customer_figures(session, lo, hi)
        report.pipeline = pipeline_figures(session, lo, hi, report.as_of)
        report.nps = nps_figures(session, lo, hi, report.as_of)
        report.loyalty = loyalty_figures(session, lo, hi)
        report.campaigns = campaign_figures(session, lo, hi)
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
