"""The pipeline and onboarding figures (pipeline value by stage, stage-to-stage
conversion, win rate, average deal cycle, lost reasons ranked, onboarding on
time) against a store whose answers were worked out by hand, on both engines.
May 2026 is the period; the report is built on 2026-06-10."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.store import Store
from domain import schema
from starter.report import build_report, render_text
from starter.report.pipeline import StageValue
from tests.harness import seed_staff
from tests.report_support import MAY

NOW = datetime(2026, 6, 10, tzinfo=UTC)


def t(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


# id: (opened, stages entered after needs analysis, final stage, closed, amount, reason)
OPPORTUNITIES = {
    "W1": (t(5, 2), ["proposal", "negotiation", "won"], t(5, 12), 100000, None),   # 10 days
    "W2": (t(4, 20), ["negotiation", "won"], t(5, 20), 50000, None),              # 30 days
    "L1": (t(5, 3), ["proposal", "lost"], t(5, 9), 20000, "competitor_cheaper"),
    "L2": (t(5, 4), ["lost"], t(5, 6), 30000, "no_budget"),
    "L3": (t(5, 5), ["proposal", "negotiation", "lost"], t(5, 25), 40000, "competitor_cheaper"),
    "O1": (t(5, 6), [], None, 12345, None),                                       # open
    "O2": (t(5, 7), ["proposal"], None, 200000, None),                            # open
    "O3": (t(5, 8), ["negotiation"], None, 300000, None),     # skipped proposal, open
    "O4": (t(6, 1), ["proposal"], None, 50000, None),          # after May: open, not counted
    "L4": (t(5, 9), ["lost"], t(6, 2), 1000, "no_budget"),    # lost after May
}
# contract: (delivery due, delivered)
ONBOARDINGS = {
    "K1": (t(5, 4), t(5, 3)),      # on time
    "K2": (t(5, 10), t(5, 11)),    # late
    "K3": (t(5, 20), None),        # not delivered, past due: late
    "K4": (t(5, 31), t(5, 31)),    # on time at the deadline
    "K5": (t(4, 28), t(4, 27)),    # due before May
    "K6": (t(6, 1), None),         # due after May
}


def seed(store: Store) -> None:
    seed_staff(store)
    with store.unit_of_work() as s:
        for oid, (opened, stages, closed, minor, reason) in OPPORTUNITIES.items():
            final = stages[-1] if stages else "needs_analysis"
            s.add(schema.Opportunity(
                id=oid, customer_id="cust-1", name=oid, stage=final, owner_id="rep-a",
                amount_minor=minor, currency="CNY", created_at=opened, stage_entered_at=opened,
                closed_at=closed, lost_reason=reason,
                contract_id=oid if final == "won" else None))
        s.flush()
        for oid, (opened, stages, _, _, _) in OPPORTUNITIES.items():
            previous = None
            for n, stage in enumerate(["needs_analysis", *stages]):
                s.add(schema.OpportunityStageChange(
                    key=f"{oid}:{n}", opportunity_id=oid, from_stage=previous, stage=stage,
                    at=opened + timedelta(days=n)))
                previous = stage
        for contract, (due, delivered) in ONBOARDINGS.items():
            s.add(schema.Onboarding(
                contract_id=contract, customer_id="cust-1", owner_id="rep-a",
                service_lead_id="sup-after_sales", signed_at=due - timedelta(days=3),
                delivery_due_at=due, delivered_at=delivered, breached=False, status="x"))


def test_pipeline_figures_match_the_hand_computed_answers(store: Store) -> None:
    seed(store)
    p = build_report(store, **MAY, now=NOW).pipeline
    assert p.value_by_stage == {
        ("needs_analysis", "CNY"): StageValue(1, from_cents(12345)),
        ("proposal", "CNY"): StageValue(2, from_cents(250000)),
        ("negotiation", "CNY"): StageValue(1, from_cents(300000)),
    }
    # Opened in May: W1 L1 L2 L3 O1 O2 O3 L4 (W2 in April, O4 in June).
    assert p.reached == {"needs_analysis": 8, "proposal": 5, "negotiation": 3, "won": 1}
    assert p.conversion("needs_analysis") == 5 / 8 and p.conversion("negotiation") == 1 / 3
    # Closed in May: won W1 W2; lost L1 L2 L3 (L4 in June).
    assert (p.won, p.lost, p.win_rate) == (2, 3, 0.4)
    assert p.average_cycle == timedelta(days=20)
    assert p.lost_reasons == [("competitor_cheaper", 2), ("no_budget", 1)]
    assert (p.onboardings_due, p.onboardings_on_time) == (4, 2)


def test_the_rows_the_report_prints(store: Store) -> None:
    seed(store)
    rows = dict(render_text(build_report(store, **MAY, now=NOW)))
    assert rows["pipeline value by stage"] == (
        "needs_analysis 123.45 CNY (1); proposal 2500.00 CNY (2); negotiation 3000.00 CNY (1)")
    assert rows["stage conversion"] == ("needs_analysis → proposal 62.5% (5/8), "
                                        "proposal → negotiation 60.0% (3/5), "
                                        "negotiation → won 33.3% (1/3)")
    assert rows["win rate"] == "40.0% (2/5)"
    assert rows["average deal cycle"] == "20.0 days"
    assert rows["lost reasons"] == "competitor_cheaper 2, no_budget 1"
    assert rows["onboarding on time"] == "50.0% (2/4)"


def from_cents(minor: int) -> object:
    from domain.money import from_minor

    return from_minor(minor, "CNY")
