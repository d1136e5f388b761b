"""The NPS arithmetic, who is a detractor, passive or promoter, the reason's
category by the policy's word lists, and the periods surveys are asked for."""

from __future__ import annotations

from datetime import date

import pytest

from domain.nps import (
    NpsInput,
    NpsPolicy,
    Respondent,
    nps,
    period_bounds,
    period_of,
    previous_period,
    reason_category,
    respondent,
)


def test_nps_is_promoters_share_minus_detractors_share_in_points() -> None:
    # 10 answers: promoters 9, 10, 10, 9 (4); passives 7, 8 (2); detractors 0, 6, 5, 3 (4)
    scores = [9, 10, 10, 9, 7, 8, 0, 6, 5, 3]
    assert nps(scores) == 100 * (4 - 4) / 10 == 0
    assert nps([10, 9, 9, 8, 7, 6]) == pytest.approx(100 * (3 - 1) / 6)  # 33.3
    assert nps([10] * 3) == 100 and nps([6, 0]) == -100 and nps([7, 8]) == 0
    assert nps([]) is None


@pytest.mark.parametrize(("score", "kind"), [
    (0, Respondent.detractor), (6, Respondent.detractor), (7, Respondent.passive),
    (8, Respondent.passive), (9, Respondent.promoter), (10, Respondent.promoter)])
def test_the_boundaries_of_each_kind_of_respondent(score: int, kind: Respondent) -> None:
    assert respondent(score) is kind


def test_a_reason_is_tagged_with_the_first_category_whose_word_it_contains() -> None:
    words = NpsPolicy().reason_categories
    assert reason_category("Support was SLOW to reply", words) == "slow_response"
    assert reason_category("问题还是没解决", words) == "unresolved"
    assert reason_category("太贵了", words) == "price"
    assert reason_category("产品质量一般", words) == "product"
    assert reason_category("fine", words) is None
    assert reason_category(None, words) is None and reason_category("  ", words) is None
    assert reason_category("slow and expensive", {"price": ["expensive"],
                                                  "slow_response": ["slow"]}) == "price"


def test_periods_quarterly_and_half_yearly() -> None:
    assert period_of(date(2026, 5, 31), 3) == "2026Q2"
    assert period_of(date(2026, 7, 1), 6) == "2026H2"
    assert previous_period(date(2026, 1, 1), 3) == "2025Q4"
    assert previous_period(date(2026, 7, 1), 6) == "2026H1"
    assert period_bounds("2026Q4") == (date(2026, 10, 1), date(2027, 1, 1))
    assert period_bounds("2026H1") == (date(2026, 1, 1), date(2026, 7, 1))
    with pytest.raises(ValueError, match="not a quarter or a half year"):
        NpsInput(customer_id="c", period="2026-Q2")
