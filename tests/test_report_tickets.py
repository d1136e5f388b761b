"""The KPI report's ticket figures per group and agent against a store whose
answers were worked out by hand, and their text and HTML.
"""

from __future__ import annotations

from datetime import UTC, datetime

from activities.store import Store
from starter.report import (
    UNASSIGNED,
    TicketFigures,
    build_report,
    render_html,
    render_text,
    ticket_tables,
)
from tests.harness import seed_staff
from tests.report_support import MAY, add_ticket, at, seed_tickets

# Ticket deadlines are judged at the moment the period ends.
END_OF_MAY = datetime(2026, 6, 1, tzinfo=UTC)


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
