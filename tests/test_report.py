"""The KPI report against a store fixture whose answers were worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema
from starter.report import (
    UNASSIGNED,
    TicketFigures,
    build_report,
    render_html,
    render_text,
    ticket_tables,
)
from tests.harness import seed_staff

MAY = {"start": date(2026, 5, 1), "end": date(2026, 6, 1)}
# Ticket deadlines are judged at the moment the period ends.
END_OF_MAY = datetime(2026, 6, 1, tzinfo=UTC)


def at(day: int, hour: int = 10, month: int = 5, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def seed(store: Store) -> None:
    seed_staff(store)
    with store.unit_of_work() as s:
        def lead(lead_id: str, received: datetime, stage: str,
                 contact: datetime | None = None) -> None:
            s.add(schema.Lead(id=lead_id, name=lead_id, region="east", product_line="erp",
                              source="ads", stage=stage, received_at=received,
                              first_contact_at=contact))
        lead("L1", at(1), "converted", at(1, 12))      # 2 h to first touch
        lead("L2", at(2), "stale")
        lead("L3", at(3), "following_up", at(3, 18))   # 8 h
        lead("L4", at(3), "merged")                    # a duplicate: not counted
        lead("L5", at(20, month=4), "converted", at(20, 11, month=4))  # before the period
        s.add(schema.Contract(id="K1", customer_id="cust-1", owner_id="rep-a", currency="CNY",
                              amount_minor=100000, paid_minor=0, credit_minor=0,
                              finance_status="partially_paid", signed_at=at(1),
                              timezone="Asia/Shanghai"))
        s.flush()
        s.add(schema.PaymentMilestone(contract_id="K1", seq=1, name="balance", percent="70",
                                      amount_minor=70000, paid_minor=10000,
                                      relative_to="signing", due_days=7, state="overdue"))
        for ref, minor, paid in (("P1", 100000, at(5)), ("P2", 25050, at(10)),
                                 ("P0", 99900, at(30, month=4))):
            s.add(schema.Payment(contract_id="K1", reference=ref, amount_minor=minor,
                                 currency="CNY", paid_at=paid, recorded_at=paid))
        for n, customer in enumerate(("cust-1", "cust-2")):
            s.add(schema.CouponRecord(code=f"WB{n}", key=f"k{n}", customer_id=customer,
                                      campaign="winback", discount_percent=10,
                                      issued_at=at(4), expires_at=at(18)))
        s.add(schema.Order(id="O1", customer_id="cust-1", amount_minor=5000, currency="CNY",
                           at=at(6), recorded_at=at(6), credited_coupon="WB0"))
        s.get(schema.Customer, "cust-1").tier = "core"  # type: ignore[union-attr]
        s.get(schema.Customer, "cust-2").tier = "lost"  # type: ignore[union-attr]
        for n, (journey, day) in enumerate((("lead", 2), ("lead", 2), ("payment", 7))):
            s.add(schema.Escalation(key=f"e{n}", journey=journey, entity_id="x", level=1,
                                    reason="r", at=at(day)))
        events = [("L1", "received"), ("L2", "received"), ("L3", "received"),
                  ("L1", "assigned"), ("L2", "assigned"), ("L3", "claimed"),
                  ("L1", "first_contact"), ("L3", "first_contact"), ("L3", "contacted"),
                  ("L1", "converted"), ("L2", "escalated"), ("L2", "stale")]
        for n, (entity, step) in enumerate(events):
            s.add(schema.JourneyEvent(key=f"ev{n}", journey="lead", entity_id=entity, step=step,
                                      at=at(3)))


def add_ticket(s: Session, ticket_id: str, group: str, agent: str | None, opened: datetime, *,
               target_hours: float, status: str, responded: datetime | None = None,
               late: bool = False, used_hours: float = 0.0,
               resolution_due: datetime | None = None, overdue: bool = False,
               resolved: datetime | None = None) -> None:
    """A ticket as the journey leaves it in the store; `late` and `overdue` are the
    breach flags its supervisor escalations set. First response is due in 15 min."""
    s.add(schema.Ticket(
        id=ticket_id, customer_id="cust-1",
        type={"complaints": "complaint", "orders": "order_query"}.get(group, group),
        priority="normal", requested_priority="normal", subject=ticket_id,
        channel="web", group=group, assignee_id=agent, status=status,
        created_at=opened, first_response_due=opened + timedelta(minutes=15),
        first_response_at=responded, first_responder_id=agent if responded else None,
        first_response_seconds=(responded - opened).total_seconds() if responded else None,
        first_response_breached=late, resolution_target_seconds=target_hours * 3600,
        resolution_due_at=resolution_due, sla_used_seconds=used_hours * 3600,
        resolution_breached=overdue, resolved_at=resolved,
        resolved_by=agent if resolved else None, updated_at=opened))


def seed_tickets(store: Store) -> None:
    """Tickets of two groups. The answers in the tests below are worked out
    from these rows."""
    with store.unit_of_work() as s:
        ticket = partial(add_ticket, s)
        # technical
        ticket("T1", "technical", "tech-1", at(4, 10), target_hours=24, status="closed",
               responded=at(4, 10, minute=5), used_hours=2, resolved=at(4, 12))
        ticket("T2", "technical", "tech-1", at(4, 11), target_hours=24, status="closed",
               responded=at(4, 11, minute=25), late=True, used_hours=30, overdue=True,
               resolved=at(5, 17))
        # Answered in time, still open past its resolution deadline, its escalation
        # not recorded (a worker that was down): a breach by the deadline alone.
        ticket("T3", "technical", "tech-2", at(10, 9), target_hours=24, status="in_progress",
               responded=at(10, 9, minute=10), resolution_due=at(11, 9))
        # Opened ten minutes before the period ends: nothing due yet.
        ticket("T4", "technical", "tech-2", at(31, 23, minute=50), target_hours=24,
               status="awaiting_response", resolution_due=at(1, 23, month=6, minute=50))
        # Opened the day before the period (rated 1 and reopened that night,
        # resolved again and rated 4 in May: the May rating counts, the ticket
        # does not) and the moment after it.
        ticket("T5", "technical", "tech-1", at(30, 23, month=4), target_hours=24,
               status="closed", responded=at(30, 23, month=4, minute=20), late=True,
               used_hours=1, resolved=at(1, 9))
        ticket("T6", "technical", "tech-2", at(1, 0, month=6), target_hours=24,
               status="awaiting_response", resolution_due=at(2, 0, month=6))
        # complaints
        ticket("C1", "complaints", None, at(20, 8), target_hours=4, status="escalated_manager",
               late=True, overdue=True, resolution_due=at(20, 12))
        # Answered at the very minute it was due: in time.
        ticket("C2", "complaints", "cmp-2", at(20, 9), target_hours=4,
               status="waiting_on_customer", responded=at(20, 9, minute=15), used_hours=1)
        ticket("C3", "complaints", "cmp-2", at(21, 10), target_hours=4, status="closed",
               responded=at(21, 10, minute=14), used_hours=3, resolved=at(21, 13))
        s.flush()

        breaches = [("T5", "technical", "tech-1", "first_response", at(30, 23, month=4,
                                                                        minute=15)),
                    ("T2", "technical", "tech-1", "first_response", at(4, 11, minute=15)),
                    ("T2", "technical", "tech-1", "resolution", at(5, 11)),
                    ("C1", "complaints", None, "first_response", at(20, 8, minute=15)),
                    ("C1", "complaints", None, "resolution", at(20, 12))]
        for n, (ticket_id, group, staff, sla, when) in enumerate(breaches):
            s.add(schema.TicketEvent(key=f"b{n}", ticket_id=ticket_id, kind="breached", at=when,
                                     recorded_at=when, staff_id=staff, group=group,
                                     detail={"sla": sla}))
        ratings = [("T1", "technical", "tech-1", 5, at(5, 10)),
                   ("T2", "technical", "tech-1", 3, at(6, 10)),
                   ("T5", "technical", "tech-1", 1, at(30, 23, month=4, minute=45)),
                   ("T5", "technical", "tech-1", 4, at(2, 10)),  # after the reopen
                   ("C3", "complaints", "cmp-2", 3, at(22, 10))]
        for n, (ticket_id, group, agent, score, when) in enumerate(ratings):
            s.add(schema.TicketRating(key=f"r{n}", ticket_id=ticket_id, customer_id="cust-1",
                                      agent_id=agent, group=group, score=score, at=when))

        # The journey's steps for the funnel; a rating of 3 or more closes the ticket.
        steps = [("T1", "opened", at(4, 10)), ("T1", "first_response", at(4, 10, minute=5)),
                 ("T1", "resolved", at(4, 12)), ("T1", "closed", at(5, 10)),
                 ("T2", "opened", at(4, 11)), ("T2", "first_response", at(4, 11, minute=25)),
                 ("T2", "resolved", at(5, 17)), ("T2", "closed", at(6, 10)),
                 ("T3", "opened", at(10, 9)), ("T3", "first_response", at(10, 9, minute=10)),
                 ("T4", "opened", at(31, 23, minute=50)),
                 ("T5", "opened", at(30, 23, month=4)),
                 ("T5", "reopened", at(30, 23, month=4, minute=45)),
                 ("T5", "resolved", at(1, 9)), ("T5", "closed", at(2, 10)),
                 ("C1", "opened", at(20, 8)),
                 ("C2", "opened", at(20, 9)), ("C2", "first_response", at(20, 9, minute=15)),
                 ("C3", "opened", at(21, 10)), ("C3", "first_response", at(21, 10, minute=14)),
                 ("C3", "resolved", at(21, 13)), ("C3", "closed", at(22, 10)),
                 *[(t, step, when) for t, _, _, _, when in breaches
                   for step in ("breached", "escalated")],
                 *[(t, "rated", when) for t, _, _, _, when in ratings]]
        for n, (ticket_id, step, when) in enumerate(steps):
            s.add(schema.JourneyEvent(key=f"j{n}", journey="ticket", entity_id=ticket_id,
                                      step=step, at=when))


def test_figures_match_the_hand_computed_answers(store: Store) -> None:
    seed(store)
    report = build_report(store, start=date(2026, 5, 1), end=date(2026, 6, 1))
    assert (report.leads_received, report.leads_converted) == (3, 1)
    assert report.conversion_rate == 1 / 3
    assert report.first_touch_hours == 5.0
    assert report.payments_collected == {"CNY": Decimal("1250.50")}
    assert report.overdue_outstanding == {"CNY": Decimal("600.00")}
    assert report.overdue_milestones == 1
    assert (report.winback_customers, report.winback_reactivated) == (2, 1)
    assert report.winback_success_rate == 0.5
    assert report.tiers == {"core": 1, "lost": 1}
    assert report.escalations == {"lead": 2, "payment": 1}
    assert len(report.escalations_by_day) == 31  # every day of May
    assert {d: v for d, v in report.escalations_by_day.items() if v} == {
        "2026-05-02": {"lead": 2}, "2026-05-07": {"payment": 1}}
    lead = [(s.step, s.reached, s.dropped) for s in report.funnels["lead"]]
    assert lead == [("received", 3, 0), ("assigned", 3, 0), ("first_contact", 2, 1),
                    ("converted", 1, 1)]
    assert report.exits["lead"] == {"escalated": 1, "stale": 1}
    assert report.completed["lead"] == 1


def test_an_overpayment_is_credit_not_collected_revenue(store: Store) -> None:
    """A contract of 1,000.00 paid 10,000.00: 1,000.00 collected, 9,000.00 credit."""
    seed_staff(store)
    with store.unit_of_work() as s:
        s.add(schema.Contract(id="K2", customer_id="cust-1", owner_id="rep-a", currency="CNY",
                              amount_minor=100000, paid_minor=100000, credit_minor=900000,
                              finance_status="paid", signed_at=at(1),
                              timezone="Asia/Shanghai"))
        s.flush()
        s.add(schema.Payment(contract_id="K2", reference="X10", amount_minor=1000000,
                             credit_minor=900000, currency="CNY", paid_at=at(5),
                             recorded_at=at(5)))
    report = build_report(store, **MAY)
    assert report.payments_collected == {"CNY": Decimal("1000.00")}
    assert report.payments_credit == {"CNY": Decimal("9000.00")}
    rows = dict(render_text(report))
    assert rows["payments collected"] == "1000.00 CNY"
    assert rows["overpayments held as credit"] == "9000.00 CNY"


def test_text_and_html(store: Store) -> None:
    seed(store)
    report = build_report(store, start=date(2026, 5, 1), end=date(2026, 6, 1))
    rows = dict(render_text(report))
    assert rows["lead conversion rate"] == "33.3%"
    assert rows["win-back success rate"] == "50.0% (1/2)"
    assert (rows["tickets opened"], rows["ticket resolution rate"], rows["CSAT"]) == \
        ("0", "—", "—")
    page = render_html(report)
    assert "<svg" in page and "lead funnel" in page
    assert "No tickets opened or rated in this period." in page
    assert "No SLA breaches in this period." in page
    assert page.count("<rect") == 4 + 2  # four funnel steps, two days of escalations
    assert "2026-05-02 lead: 2" in page


def test_crm_report_prints_and_writes_the_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from activities.store import migrate
    from starter.cli import app

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed(store)
    seed_tickets(store)
    store.dispose()
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--from", "2026-05-01", "--to", "2026-05-31",
                                      "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "33.3%" in result.output and "lead funnel" in result.output
    assert "ticket funnel" in result.output
    assert "tickets by group" in result.output and "tickets by agent" in result.output
    by_group = result.output.split("tickets by agent")[0]  # agent rows also start "technical"
    lines = {cells[0]: cells[1:] for cells in
             (re.split(r"\s{2,}", line.strip()) for line in by_group.splitlines())}
    # Judged now, long after May, T4 (opened 31 May 23:50, never answered) has
    # missed both deadlines too: first responses T2, C1, T4 (3/7), resolutions
    # T2, T3, C1, T4 (4/7); technical 2/4 and 3/4.
    assert lines["first-response SLA breach rate"] == ["42.9% (3/7)"]
    assert lines["resolution SLA breach rate"] == ["57.1% (4/7)"]
    assert lines["CSAT"] == ["3.75 / 5, 50.0% rated 4+ (4 ratings)"]
    assert lines["technical"] == ["4", "10.0 min", "13.3 min", "50.0% (2/4)", "50.0% (2/4)",
                                  "75.0% (3/4)", "4.00 (3)", "66.7%"]
    assert "<svg" in page.read_text()
    bad = CliRunner().invoke(app, ["report", "--from", "2026-06-01", "--to", "2026-05-01"])
    assert bad.exit_code == 1


def figures(f: TicketFigures) -> tuple[object, ...]:
    return (f.opened, sorted(f.first_response_seconds), f.first_response_breached, f.resolved,
            f.resolution_breached, f.ratings, f.rating_total, f.satisfied)


def test_ticket_figures_per_group_and_agent_match_the_hand_computed_answers(
        store: Store) -> None:
    seed_staff(store)
    seed_tickets(store)
    report = build_report(store, **MAY, now=END_OF_MAY)

    # technical: T1-T4 opened in May (T5 in April, T6 on 1 June).
    #   first response: T1 5 min = 300 s, T2 25 min = 1500 s, T3 10 min = 600 s;
    #     median 600 s, mean (300 + 1500 + 600) / 3 = 800 s
    #   first-response breaches: T2 (answered 10 min after its due time); T4 is
    #     due 00:05 on 1 June, after `now` -> 1 of 4
    #   resolved: T1, T2 (both closed) -> 2 of 4
    #   resolution breaches: T2 (30 h used of 24), T3 (due 11 May, open) -> 2 of 4
    #   ratings given in May: T1 5, T2 3, T5 4 (T5's 1 was in April) -> 3, total 12,
    #     satisfied (4+) 2
    tech = report.ticket_groups["technical"]
    assert figures(tech) == (4, [300, 600, 1500], 1, 2, 2, 3, 12, 2)
    assert (tech.first_response_median, tech.first_response_mean) == (600, 800)
    assert (tech.first_response_breach_rate, tech.resolution_rate,
            tech.resolution_breach_rate) == (0.25, 0.5, 0.5)
    assert (tech.csat, tech.satisfied_share) == (4.0, 2 / 3)

    # complaints: C1-C3.
    #   first response: C2 15 min = 900 s (at its due time: in time), C3 14 min = 840 s;
    #     median = mean = (840 + 900) / 2 = 870 s
    #   first-response breaches: C1 (never answered, due 20 May 08:15) -> 1 of 3
    #   resolved: C3 (closed) -> 1 of 3
    #   resolution breaches: C1 (due 20 May 12:00); C2 is paused at 1 h of 4, C3
    #     resolved at 3 h of 4 -> 1 of 3
    #   ratings: C3 3 -> 1, total 3, satisfied 0
    complaints = report.ticket_groups["complaints"]
    assert figures(complaints) == (3, [840, 900], 1, 1, 1, 1, 3, 0)
    assert (complaints.first_response_median, complaints.first_response_mean) == (870, 870)
    assert complaints.first_response_breach_rate == 1 / 3
    assert (complaints.csat, complaints.satisfied_share) == (3.0, 0.0)
    assert list(report.ticket_groups) == ["complaints", "technical"]

    # All: 4 + 3 = 7 opened; first responses 300, 600, 840, 900, 1500 s: median 840,
    # mean 4140 / 5 = 828; breaches 1 + 1 = 2; resolved 2 + 1 = 3; resolution
    # breaches 2 + 1 = 3; ratings 3 + 1 = 4, total 12 + 3 = 15 (CSAT 3.75), 2 + 0 = 2
    # satisfied (50%).
    total = report.tickets
    assert figures(total) == (7, [300, 600, 840, 900, 1500], 2, 3, 3, 4, 15, 2)
    assert (total.first_response_median, total.first_response_mean) == (840, 828)
    assert (total.first_response_breach_rate, total.resolution_rate,
            total.resolution_breach_rate) == (2 / 7, 3 / 7, 3 / 7)
    assert (total.csat, total.satisfied_share) == (3.75, 0.5)

    # Per agent: tickets by assignee, ratings by the agent who resolved.
    assert {key: figures(f) for key, f in report.ticket_agents.items()} == {
        ("complaints", "cmp-2"): (2, [840, 900], 0, 1, 0, 1, 3, 0),      # C2, C3
        ("complaints", UNASSIGNED): (1, [], 1, 0, 1, 0, 0, 0),           # C1
        ("technical", "tech-1"): (2, [300, 1500], 1, 2, 1, 3, 12, 2),    # T1, T2; T5's rating
        ("technical", "tech-2"): (2, [600], 0, 0, 1, 0, 0, 0),           # T3, T4
    }

    # Breaches as recorded, by day: T2's on 4 and 5 May, C1's two on 20 May; T5's
    # (30 April) is before the period; T3's was never recorded.
    assert len(report.breaches_by_day) == 31
    assert {d: v for d, v in report.breaches_by_day.items() if v} == {
        "2026-05-04": {"first_response": 1}, "2026-05-05": {"resolution": 1},
        "2026-05-20": {"first_response": 1, "resolution": 1}}

    # The funnel of May's steps: opened T1-T4, C1-C3 (7); first response T1, T2, T3,
    # C2, C3 (5: T4, C1 drop); resolved T1, T2, C3 and T5 (opened in April) (4: T3,
    # C2 drop); closed the same four (0 drop). T5's reopen was in April.
    ticket = [(s.step, s.reached, s.dropped) for s in report.funnels["ticket"]]
    assert ticket == [("opened", 7, 0), ("first_response", 5, 2), ("resolved", 4, 2),
                      ("closed", 4, 0)]
    assert report.exits["ticket"] == {"breached": 2, "escalated": 2, "rated": 4}
    assert report.completed["ticket"] == 4


def test_ticket_figures_judged_later_count_deadlines_passed_since(store: Store) -> None:
    seed_staff(store)
    seed_tickets(store)
    # A day on, T4 (opened 31 May 23:50) is past both its first-response deadline
    # (1 June 00:05) and its resolution deadline (1 June 23:50): technical breaches
    # go from 1 to 2 of 4 and from 2 to 3 of 4.
    report = build_report(store, **MAY, now=datetime(2026, 6, 2, tzinfo=UTC))
    tech = report.ticket_groups["technical"]
    assert (tech.opened, tech.first_response_breached, tech.resolution_breached) == (4, 2, 3)


def test_a_breach_counts_by_its_timestamps_when_no_escalation_was_recorded(
        store: Store) -> None:
    """The breach flags are set by the journey's escalations; a ticket whose
    escalation was never recorded still counts by its times, on the store's
    own rules: answered in time up to and including the due minute, breached
    once the SLA clock reaches the target."""
    seed_staff(store)
    with store.unit_of_work() as s:
        # X1: answered 10:16, a minute after its 10:15 due time; open, due 1 June 10:00.
        add_ticket(s, "X1", "orders", "ord-1", at(31, 10), target_hours=24,
                   status="in_progress", responded=at(31, 10, minute=16),
                   resolution_due=at(1, 10, month=6))
        # X2: answered in time, resolved after 25 h on the clock of a 24 h target.
        add_ticket(s, "X2", "orders", "ord-1", at(3, 10), target_hours=24, status="resolved",
                   responded=at(3, 10, minute=15), used_hours=25, resolved=at(4, 11))
        # X3: answered in time, resolved with exactly its 24 h used.
        add_ticket(s, "X3", "orders", "ord-1", at(6, 10), target_hours=24, status="resolved",
                   responded=at(6, 10, minute=1), used_hours=24, resolved=at(7, 10))
    report = build_report(store, **MAY, now=END_OF_MAY)
    orders = report.ticket_groups["orders"]
    # first-response breaches: X1 -> 1 of 3; resolved X2, X3 -> 2 of 3; resolution
    # breaches X2 (25 >= 24), X3 (24 >= 24) -> 2 of 3
    assert (orders.opened, orders.first_response_breached, orders.resolved,
            orders.resolution_breached) == (3, 1, 2, 2)
    # first responses 16, 15 and 1 min: median 15 min = 900 s, mean 32 / 3 min = 640 s
    assert (orders.first_response_median, orders.first_response_mean) == (900, 640)
    assert report.breaches_by_day == {day: {} for day in report.breaches_by_day}


def test_ticket_text_and_html(store: Store) -> None:
    seed_staff(store)
    seed_tickets(store)
    report = build_report(store, **MAY, now=END_OF_MAY)
    rows = dict(render_text(report))
    # 840 s = 14.0 min, 828 s = 13.8 min; 2/7 = 28.6%, 3/7 = 42.9%; 15/4 = 3.75
    assert rows["tickets opened"] == "7"
    assert rows["ticket first response, median / average"] == "14.0 min / 13.8 min (5 answered)"
    assert rows["first-response SLA breach rate"] == "28.6% (2/7)"
    assert rows["ticket resolution rate"] == "42.9% (3/7)"
    assert rows["resolution SLA breach rate"] == "42.9% (3/7)"
    assert rows["CSAT"] == "3.75 / 5, 50.0% rated 4+ (4 ratings)"

    (group_title, _, by_group), (agent_title, _, by_agent) = ticket_tables(report)
    assert (group_title, agent_title) == ("tickets by group", "tickets by agent")
    # 600 s = 10.0 min, 800 s = 13.3 min, 870 s = 14.5 min; 12/3 = 4.00, 2/3 = 66.7%
    assert by_group == [
        ["complaints", "3", "14.5 min", "14.5 min", "33.3% (1/3)", "33.3% (1/3)",
         "33.3% (1/3)", "3.00 (1)", "0.0%"],
        ["technical", "4", "10.0 min", "13.3 min", "25.0% (1/4)", "50.0% (2/4)",
         "50.0% (2/4)", "4.00 (3)", "66.7%"],
    ]
    assert [row[:3] for row in by_agent] == [["complaints", "cmp-2", "2"],
                                             ["complaints", UNASSIGNED, "1"],
                                             ["technical", "tech-1", "2"],
                                             ["technical", "tech-2", "2"]]

    page = render_html(report)
    assert "tickets by group" in page and "tickets by agent" in page
    assert "<td>66.7%</td>" in page
    # Four ticket funnel steps, and breach bars: one each on 4 and 5 May and two
    # stacked on 20 May (no escalation rows in this fixture).
    assert "ticket funnel" in page
    assert page.count("<rect") == 4 + 4
    assert "2026-05-20 first response: 1" in page and "2026-05-20 resolution: 1" in page
    assert "as they stood at 2026-06-01 00:00 UTC" in page
