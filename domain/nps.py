"""The NPS programme: every quarter (policy) the customers active in the
period just ended — a purchase or a ticket in it — are asked how likely they
are to recommend us, 0 to 10, with an optional reason. One journey per
customer and period (`nps-{customer}-{period}`): the survey, a reminder
after 3 days, and the survey closing after 14. A detractor (0–6) opens a
follow-up task for the customer's owner, due within 2 days and escalated to
the owner's manager if not done; a passive (7–8) or promoter (9–10) is
thanked. A loyalty member earns the programme's survey points for answering.
A reason that contains one of a category's words (policy word lists: slow
response, unresolved, price, product) is tagged with it for the report.

NPS is the share of promoters minus the share of detractors, in points
(-100 to 100); the documents' benchmark is above 50.

Pure models and rules; lenient at the boundary."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, Field, field_validator

from domain.journeys import Lenient, Rejection
from domain.limits import Duration, Id

JOURNEY = "nps"
NPS_BENCHMARK = 50
MAX_SCORE = 10
DETRACTOR_MAX = 6  # 0-6
PASSIVE_MAX = 8  # 7-8; 9-10 promoters
PERIOD = re.compile(r"^(\d{4})(Q[1-4]|H[12])$")


def nps_workflow_id(customer_id: str, period: str) -> str:
    return survey_workflow_id(survey_id(customer_id, period))


def survey_workflow_id(survey: str) -> str:
    return f"nps-{survey}"


def survey_id(customer_id: str, period: str) -> str:
    return f"{customer_id}-{period}"


class NpsStage(StrEnum):
    asked = "asked"  # waiting for the answer (a reminder, then the survey closes)
    follow_up = "follow_up"  # a detractor: the owner's follow-up is due
    escalated = "escalated"  # the follow-up is late; the owner's manager told
    completed = "completed"
    expired = "expired"  # no answer before the survey closed


class Respondent(StrEnum):
    detractor = "detractor"
    passive = "passive"
    promoter = "promoter"


def respondent(score: int) -> Respondent:
    if score <= DETRACTOR_MAX:
        return Respondent.detractor
    return Respondent.passive if score <= PASSIVE_MAX else Respondent.promoter


def nps(scores: Iterable[int]) -> float | None:
    """Promoters' share minus detractors' share, in points; None without answers."""
    kinds = [respondent(score) for score in scores]
    if not kinds:
        return None
    promoters = kinds.count(Respondent.promoter)
    detractors = kinds.count(Respondent.detractor)
    return 100 * (promoters - detractors) / len(kinds)


def default_categories() -> dict[str, list[str]]:
    return {
        "slow_response": ["slow", "wait", "late", "no reply", "慢", "等", "响应", "回复"],
        "unresolved": ["unresolved", "not fixed", "not solved", "still", "未解决", "没解决",
                       "没有解决", "还是"],
        "price": ["price", "expensive", "cost", "价格", "贵", "价钱", "收费"],
        "product": ["product", "quality", "bug", "feature", "产品", "质量", "功能", "故障"],
    }


def reason_category(reason: str | None, categories: dict[str, list[str]]) -> str | None:
    """The first category (in the policy's order) one of whose words the reason
    contains, case-insensitively; None when none does."""
    text = (reason or "").casefold()
    if not text.strip():
        return None
    for category, words in categories.items():
        if any(word.casefold() in text for word in words if word.strip()):
            return category
    return None


def period_of(day: date, every_months: int) -> str:
    """The label of the period `day` falls in: 2026Q2 (quarterly) or 2026H1."""
    index = (day.month - 1) // every_months + 1
    return f"{day.year}{'Q' if every_months == 3 else 'H'}{index}"


def previous_period(day: date, every_months: int) -> str:
    """The period that ended before the one `day` falls in."""
    start, _ = period_bounds(period_of(day, every_months))
    return period_of(start - timedelta(days=1), every_months)


def period_problem(label: str) -> str | None:
    if not PERIOD.match(label or ""):
        return f"period {label!r} is not a quarter or a half year (2026Q2, 2026H1)"
    return None


def period_bounds(label: str) -> tuple[date, date]:
    """[first day, first day after) of a period label."""
    match = PERIOD.match(label)
    if match is None:
        raise ValueError(period_problem(label))
    year, part = int(match.group(1)), match.group(2)
    months = 3 if part[0] == "Q" else 6
    first_month = (int(part[1]) - 1) * months + 1
    start = date(year, first_month, 1)
    end_month = first_month + months
    end = date(year + (end_month > 12), (end_month - 1) % 12 + 1, 1)
    return start, end


class NpsPolicy(Lenient):
    """How often customers are asked, and how the survey and follow-up run."""

    every_months: int = Field(default=3)  # 3 quarterly, 6 half-yearly
    reminder_after: Duration = timedelta(days=3)
    answer_within: Duration = timedelta(days=14)
    follow_up_within: Duration = timedelta(days=2)
    points_for_answer: bool = True  # where the customer is a loyalty member
    reason_categories: dict[str, list[str]] = Field(default_factory=default_categories)

    @field_validator("every_months")
    @classmethod
    def _quarter_or_half(cls, value: int) -> int:
        if value not in (3, 6):
            raise ValueError("every_months is 3 (quarterly) or 6 (half-yearly)")
        return value

    def scaled(self, factor: float) -> NpsPolicy:
        if factor == 1:
            return self
        return self.model_copy(update={
            "reminder_after": self.reminder_after / factor,
            "answer_within": self.answer_within / factor,
            "follow_up_within": self.follow_up_within / factor})


class NpsInput(Lenient):
    customer_id: Id
    period: str  # 2026Q2 or 2026H1: the period the customer was active in
    policy: NpsPolicy | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if problem := period_problem(value):
            raise ValueError(problem)
        return value


class Answer(Lenient):
    # Lenient: a missing or out-of-range score is refused by the journey with
    # the reason, not dropped by the model.
    score: int | None = None
    reason: str | None = None


class LogFollowUp(Lenient):
    staff_id: str = ""
    note: str | None = None


class OpenSurvey(Lenient):
    survey: NpsInput
    workflow_id: str
    answer_within: timedelta
    now: AwareDatetime


class SurveyOpened(Lenient):
    owner_id: str | None = None
    closes_at: AwareDatetime


class AnswerRecord(Lenient):
    survey_id: str
    workflow_id: str
    score: int
    reason: str | None = None
    category: str | None = None
    follow_up_within: timedelta
    points: bool = True
    now: AwareDatetime


class AnswerRecorded(Lenient):
    respondent: Respondent
    follow_up_due: AwareDatetime | None = None
    owner_id: str | None = None


class SurveyStep(Lenient):
    survey_id: str
    workflow_id: str
    step: str  # reminded, expired
    now: AwareDatetime


class FollowUpEscalation(Lenient):
    survey_id: str
    workflow_id: str
    owner_id: str | None
    now: AwareDatetime


class EscalatedTo(Lenient):
    manager_id: str | None = None


class FollowUpRecord(Lenient):
    survey_id: str
    workflow_id: str
    staff_id: str
    note: str | None = None
    now: AwareDatetime


class FollowedUp(Lenient):
    on_time: bool = False


class PointsTold(Lenient):
    told: bool = False


class OwnerHandover(Lenient):
    survey_id: str
    workflow_id: str
    from_staff_id: str
    now: AwareDatetime
    n: int


class LaunchPage(Lenient):
    """One page of a period's launch: the surveys of the active customers
    whose ids come after `after` (empty: the period before today's)."""

    period: str = ""
    after: str = ""
    limit: int = 200


class LaunchedPage(Lenient):
    period: str
    started: int
    last: str  # the last customer id of the page; where the next page starts


class NpsStatus(Lenient):
    customer_id: str
    period: str
    stage: NpsStage
    owner_id: str | None = None
    closes_at: datetime | None = None
    reminded: bool = False
    score: int | None = None
    respondent: Respondent | None = None
    reason: str | None = None
    category: str | None = None
    follow_up_due: datetime | None = None
    followed_up_at: datetime | None = None
    on_time: bool | None = None
    escalated_to: str | None = None
    deadline: datetime | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    policy: NpsPolicy | None = None
