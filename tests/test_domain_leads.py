"""Lead scoring and the choice of a rep. Pure rules, no store, no clock.
"""

from __future__ import annotations

import pytest

from domain.assignment import RepLoad, choose_rep
from domain.scoring import SOURCE_RELIABILITY, lead_score


def score(**overrides: object) -> int:
    values: dict[str, object] = {
        "source": "web_form",
        "has_phone": False,
        "has_email": False,
        "has_company": False,
        "need": None,
    }
    values.update(overrides)
    return lead_score(**values)  # type: ignore[arg-type]


def test_a_referral_outscores_a_trade_show_a_web_form_and_an_ad() -> None:
    ranked = [score(source=s) for s in ("referral", "trade_show", "web_form", "ecommerce", "ads")]
    assert ranked == sorted(ranked, reverse=True)
    assert len(set(ranked)) == len(ranked)


def test_an_unknown_source_scores_below_every_known_one() -> None:
    assert score(source="carrier_pigeon") < min(score(source=s) for s in SOURCE_RELIABILITY)


def test_each_contact_detail_adds_to_the_score() -> None:
    bare = score()
    with_phone = score(has_phone=True)
    with_phone_email = score(has_phone=True, has_email=True)
    complete = score(has_phone=True, has_email=True, has_company=True)
    assert bare < with_phone < with_phone_email < complete
    assert complete - bare == 30


@pytest.mark.parametrize(
    ("need", "bonus"),
    [
        (None, 0),
        ("   ", 0),
        ("ERP", 10),
        ("need an ERP", 20),
        ("we need an ERP for 200 staff across three plants", 30),
        ("要ERP", 10),
        ("需要一套客户管理系统", 20),  # ten characters, no spaces
        ("我们公司有两百名员工，需要一套能管理销售线索、合同回款和售后工单的客户管理系统", 30),
    ],
)
def test_a_clearer_need_scores_higher_in_any_language(need: str | None, bonus: int) -> None:
    assert score(need=need) - score() == bonus


def test_the_best_possible_lead_scores_100() -> None:
    best = score(source="referral", has_phone=True, has_email=True, has_company=True,
                 need="we need an ERP for 200 staff across three plants")
    assert best == 100


def test_the_score_never_exceeds_100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCE_RELIABILITY, "partner", 60)
    assert score(source="partner", has_phone=True, has_email=True, has_company=True,
                 need="a long and very clear statement of what they need") == 100


def rep(staff_id: str, *, open_leads: int = 0, seniority: int = 0, capacity: int = 10,
        regions: tuple[str, ...] = ("east",), lines: tuple[str, ...] = ("erp",),
        active: bool = True) -> RepLoad:
    return RepLoad(staff_id=staff_id, regions=frozenset(regions), product_lines=frozenset(lines),
                   open_leads=open_leads, capacity=capacity, seniority=seniority, active=active)


def choose(reps: list[RepLoad], **kwargs: object) -> str | None:
    return choose_rep(reps, region="east", product_line="erp", **kwargs)  # type: ignore[arg-type]


def test_only_a_rep_covering_the_region_and_product_line_is_chosen() -> None:
    reps = [
        rep("rep-west", regions=("west",)),
        rep("rep-crm", lines=("crm",)),
        rep("rep-east", open_leads=9),
    ]
    assert choose(reps) == "rep-east"


def test_an_inactive_rep_is_passed_over() -> None:
    assert choose([rep("rep-a", active=False), rep("rep-b", open_leads=5)]) == "rep-b"


def test_a_rep_at_capacity_is_passed_over() -> None:
    assert choose([rep("rep-a", open_leads=3, capacity=3), rep("rep-b", open_leads=7)]) == "rep-b"


def test_an_excluded_rep_is_passed_over() -> None:
    reps = [rep("rep-a"), rep("rep-b", open_leads=4)]
    assert choose(reps, exclude=["rep-a"]) == "rep-b"


def test_the_rep_with_fewest_open_leads_wins() -> None:
    reps = [rep("rep-a", open_leads=4, seniority=9), rep("rep-b", open_leads=2),
            rep("rep-c", open_leads=3)]
    assert choose(reps) == "rep-b"


def test_a_tie_goes_to_the_more_senior_then_the_lower_id() -> None:
    assert choose([rep("rep-a", seniority=1), rep("rep-b", seniority=3)]) == "rep-b"
    assert choose([rep("rep-b", seniority=2), rep("rep-a", seniority=2)]) == "rep-a"


def test_no_eligible_rep_leaves_the_lead_in_the_pool() -> None:
    assert choose([]) is None
    assert choose([rep("rep-a", active=False), rep("rep-b", regions=("west",)),
                   rep("rep-c", open_leads=1, capacity=1)]) is None
    assert choose([rep("rep-a")], exclude=["rep-a"]) is None
