"""Unit tests of the pure rules in domain/: no store, no Temporal, no clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.assignment import RepLoad, choose_rep
from domain.contact import InvalidContact, company_key, normalise_email, normalise_phone
from domain.messaging import (
    Consent,
    ConsentScope,
    MessageClass,
    SendOutcome,
    decide_send,
    in_quiet_hours,
    quiet_hours_end,
)
from domain.money import from_minor, round_money, to_minor
from domain.policy import LeadPolicy, QuietHours
from domain.scoring import SOURCE_RELIABILITY, lead_score
from domain.settings import Settings
from domain.sla import CalendarClock

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"
CST = timezone(timedelta(hours=8))
NIGHT = QuietHours()  # the default 21:00-09:00
LUNCH = QuietHours(start=time(12, 0), end=time(14, 0))
NO_QUIET = QuietHours(enabled=False)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- contact details ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["138 0013 8000", "13800138000", "+86 138-0013-8000", "8613800138000", "0086 138 0013 8000"],
)
def test_a_mainland_mobile_in_any_common_format_becomes_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+8613800138000"


def test_a_foreign_number_in_e164_keeps_its_country() -> None:
    assert normalise_phone("+14155552671") == "+14155552671"
    assert normalise_phone("+1 (415) 555-2671") == "+14155552671"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+86 138 0013"])
def test_an_invalid_phone_is_refused_naming_the_value(raw: str) -> None:
    with pytest.raises(InvalidContact) as refused:
        normalise_phone(raw)
    assert repr(raw) in str(refused.value)


def test_an_email_address_is_case_folded_and_trimmed() -> None:
    assert normalise_email("  Zhang.Wei@Example.COM ") == "zhang.wei@example.com"


@pytest.mark.parametrize("raw", ["zhang.wei.example.com", "zhang@", "zhang wei@example.com"])
def test_an_invalid_email_is_refused_naming_the_address(raw: str) -> None:
    with pytest.raises(InvalidContact) as refused:
        normalise_email(raw)
    assert repr(raw) in str(refused.value)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ACME Co., Ltd.", "acme"),
        ("Acme Inc.", "ACME"),
        ("Acme Corporation", "acme"),
        ("ACME Company Limited", "Acme"),
        ("北京星辰科技有限公司", "北京星辰科技"),
        ("北京星辰科技（集团）股份有限公司", "北京星辰科技"),
        ("北京星辰科技有限责任公司", "北京星辰科技 "),
        ("星辰科技Co.,Ltd", "星辰科技"),
        ("ＡＣＭＥ　Ｃｏ．，Ｌｔｄ．", "ACME Co., Ltd."),  # full-width forms
        ("北京星辰科技（北京）", "北京星辰科技(北京)"),
    ],
)
def test_spellings_of_the_same_company_share_a_key(one: str, other: str) -> None:
    assert company_key(one) == company_key(other)


def test_company_key_of_the_plain_name() -> None:
    assert company_key("ACME Co., Ltd.") == "acme"
    assert company_key("北京星辰科技有限公司") == "北京星辰科技"


@pytest.mark.parametrize(
    ("one", "other"),
    [("Costco", "Cost Inc."), ("Disco Ltd", "Dis Ltd"), ("Telecorp", "Tele Corp")],
)
def test_a_legal_form_inside_a_word_is_part_of_the_name(one: str, other: str) -> None:
    assert company_key(one) != company_key(other)


def test_a_name_that_is_only_a_legal_form_is_kept() -> None:
    assert company_key("Co.") == "co"
    assert company_key("公司") == "公司"


MOBILE_PREFIXES = [f"13{d}" for d in range(10)] + [
    f"{p}" for p in range(150, 200) if p not in (154, 160, 163, 164, 168, 169, 179, 194)
]


@st.composite
def cn_mobiles(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(MOBILE_PREFIXES))
    subscriber = draw(st.integers(min_value=0, max_value=10**8 - 1))
    national = f"{prefix}{subscriber:08d}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse(national, "CN")))
    layout = draw(
        st.sampled_from(
            [
                national,
                f"{national[:3]} {national[3:7]} {national[7:]}",
                f"+86 {national[:3]}-{national[3:7]}-{national[7:]}",
                f"86{national}",
                f"+86{national}",
            ]
        )
    )
    return layout


@given(cn_mobiles())
def test_normalising_a_normalised_mobile_changes_nothing(raw: str) -> None:
    once = normalise_phone(raw)
    assert once.startswith("+861")
    assert len(once) == 14
    assert normalise_phone(once) == once


COMPANY_WORDS = st.sampled_from(
    ["acme", "Star", "星辰", "科技", "北京", "Co", "Ltd", "Inc", "有限", "公司", "集团", "c", "o",
     "ＡＣＭＥ", "Café", "3M"]
)
COMPANY_SEPARATORS = st.sampled_from([" ", "", ".", ", ", "（", "）", "-", "　"])


@given(
    st.one_of(
        st.text(),
        st.lists(st.tuples(COMPANY_WORDS, COMPANY_SEPARATORS), min_size=1, max_size=6).map(
            lambda parts: "".join(word + sep for word, sep in parts)
        ),
    )
)
def test_the_key_of_a_company_key_is_itself(raw: str) -> None:
    key = company_key(raw)
    assert company_key(key) == key


# -- lead score -----------------------------------------------------------------------


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


# -- assignment -----------------------------------------------------------------------


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


# -- quiet hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (utc(2026, 1, 10, 13, 0), utc(2026, 1, 11, 1, 0)),  # 21:00 local, the window opens
        (utc(2026, 1, 10, 15, 30), utc(2026, 1, 11, 1, 0)),  # 23:30 local
        (utc(2026, 1, 10, 16, 30), utc(2026, 1, 11, 1, 0)),  # 00:30 local, after midnight
        (utc(2026, 1, 11, 0, 59), utc(2026, 1, 11, 1, 0)),  # 08:59 local
        (utc(2026, 1, 11, 1, 0), None),  # 09:00 local, the window has closed
        (utc(2026, 1, 11, 6, 0), None),  # 14:00 local
        (utc(2026, 1, 10, 12, 59), None),  # 20:59 local
    ],
)
def test_a_night_window_in_shanghai_spans_midnight(now: datetime, until: datetime | None) -> None:
    assert quiet_hours_end(now, timezone=SHANGHAI, quiet=NIGHT) == until
    local = now.astimezone(CST)
    assert in_quiet_hours(local, NIGHT) is (until is not None)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (utc(2026, 1, 10, 3, 59), None),  # 11:59 local
        (utc(2026, 1, 10, 4, 0), utc(2026, 1, 10, 6, 0)),  # 12:00 local
        (utc(2026, 1, 10, 5, 30), utc(2026, 1, 10, 6, 0)),  # 13:30 local
        (utc(2026, 1, 10, 6, 0), None),  # 14:00 local
        (utc(2026, 1, 10, 14, 0), None),  # 22:00 local: not quiet in this policy
    ],
)
def test_a_same_day_window(now: datetime, until: datetime | None) -> None:
    assert quiet_hours_end(now, timezone=SHANGHAI, quiet=LUNCH) == until


def test_quiet_hours_follow_the_recipients_time_zone() -> None:
    # 14:00 UTC is 22:00 in Shanghai (quiet) and 09:00 in New York (not quiet).
    now = utc(2026, 1, 12, 14, 0)
    assert quiet_hours_end(now, timezone=SHANGHAI, quiet=NIGHT) == utc(2026, 1, 13, 1, 0)
    assert quiet_hours_end(now, timezone=NEW_YORK, quiet=NIGHT) is None


def test_in_new_york_the_window_ends_at_nine_eastern_standard_time() -> None:
    # 23:00 EST on 1 March: 09:00 EST is 14:00 UTC.
    assert quiet_hours_end(utc(2026, 3, 2, 4, 0), timezone=NEW_YORK, quiet=NIGHT) == utc(
        2026, 3, 2, 14, 0
    )


def test_a_night_window_across_the_spring_dst_switch_ends_at_nine_local() -> None:
    # 23:00 EST on 7 March 2026; clocks go forward at 02:00 on the 8th, so
    # 09:00 local that morning is EDT (UTC-4): 13:00 UTC, not 14:00.
    now = utc(2026, 3, 8, 4, 0)
    assert quiet_hours_end(now, timezone=NEW_YORK, quiet=NIGHT) == utc(2026, 3, 8, 13, 0)


def test_a_night_window_across_the_autumn_dst_switch_ends_at_nine_local() -> None:
    # 23:00 EDT on 31 October 2026; clocks go back on 1 November: 09:00 EST.
    now = utc(2026, 11, 1, 3, 0)
    assert quiet_hours_end(now, timezone=NEW_YORK, quiet=NIGHT) == utc(2026, 11, 1, 14, 0)


def test_disabled_quiet_hours_never_hold_a_message() -> None:
    midnight_in_shanghai = utc(2026, 1, 10, 16, 0)
    assert quiet_hours_end(midnight_in_shanghai, timezone=SHANGHAI, quiet=NO_QUIET) is None
    assert in_quiet_hours(midnight_in_shanghai.astimezone(CST), NO_QUIET) is False
    assert decide_send(message_class=MessageClass.marketing, channel="email",
                       now=midnight_in_shanghai, timezone=SHANGHAI, quiet=NO_QUIET,
                       consents=[]) is None


def test_a_window_that_starts_and_ends_at_the_same_time_is_empty() -> None:
    assert quiet_hours_end(utc(2026, 1, 10, 1, 0), timezone=SHANGHAI,
                           quiet=QuietHours(start=time(9), end=time(9))) is None


# -- deciding a send ------------------------------------------------------------------

NIGHT_IN_SHANGHAI = utc(2026, 1, 10, 15, 0)  # 23:00 local
DAY_IN_SHANGHAI = utc(2026, 1, 10, 3, 0)  # 11:00 local
MORNING = utc(2026, 1, 11, 1, 0)  # 09:00 local the next day


def decide(message_class: MessageClass, *, now: datetime = DAY_IN_SHANGHAI,
           consents: list[Consent] | None = None, channel: str = "email",
           cap_allows_at: datetime | None = None) -> SendOutcome | None:
    return decide_send(message_class=message_class, channel=channel, now=now,
                       timezone=SHANGHAI, quiet=NIGHT, consents=consents or [],
                       cap_allows_at=cap_allows_at)


def opted_out(channel: str, scope: ConsentScope) -> list[Consent]:
    return [Consent(channel=channel, scope=scope)]


def test_staff_messages_go_now_whatever_the_hour_or_opt_outs() -> None:
    every_opt_out = [Consent(channel=c, scope=s) for c in ("email", "all") for s in ConsentScope]
    assert decide(MessageClass.staff, now=NIGHT_IN_SHANGHAI, consents=every_opt_out) is None


def test_a_transactional_message_ignores_quiet_hours_and_marketing_opt_outs() -> None:
    assert decide(MessageClass.transactional, now=NIGHT_IN_SHANGHAI,
                  consents=opted_out("email", ConsentScope.marketing)) is None
    assert decide(MessageClass.transactional,
                  consents=opted_out("all", ConsentScope.marketing)) is None


def test_a_transactional_message_respects_an_all_messages_opt_out() -> None:
    outcome = decide(MessageClass.transactional, consents=opted_out("email", ConsentScope.all))
    assert outcome is not None
    assert outcome.status == "suppressed"
    assert outcome.reason == "opted out of all messages on email"


def test_an_opt_out_on_every_channel_covers_this_one() -> None:
    outcome = decide(MessageClass.transactional, consents=opted_out("all", ConsentScope.all))
    assert outcome is not None and outcome.status == "suppressed"
    assert "all messages" in (outcome.reason or "")


def test_an_opt_out_on_another_channel_does_not_apply() -> None:
    assert decide(MessageClass.transactional, consents=opted_out("sms", ConsentScope.all)) is None


def test_a_reminder_waits_for_the_end_of_quiet_hours() -> None:
    outcome = decide(MessageClass.reminder, now=NIGHT_IN_SHANGHAI)
    assert outcome is not None
    assert (outcome.status, outcome.reason, outcome.until) == ("deferred", "quiet hours", MORNING)


def test_a_reminder_is_stopped_only_by_an_all_messages_opt_out() -> None:
    no_marketing = opted_out("email", ConsentScope.marketing)
    assert decide(MessageClass.reminder, consents=no_marketing) is None
    outcome = decide(MessageClass.reminder, consents=opted_out("email", ConsentScope.all))
    assert outcome is not None and outcome.status == "suppressed"


def test_marketing_respects_a_marketing_opt_out() -> None:
    for channel in ("email", "all"):
        no_marketing = opted_out(channel, ConsentScope.marketing)
        outcome = decide(MessageClass.marketing, consents=no_marketing)
        assert outcome is not None
        assert outcome.status == "suppressed"
        assert outcome.reason == f"opted out of marketing on {channel}"


def test_marketing_waits_for_the_end_of_quiet_hours() -> None:
    outcome = decide(MessageClass.marketing, now=NIGHT_IN_SHANGHAI)
    assert outcome is not None
    assert (outcome.status, outcome.until) == ("deferred", MORNING)


def test_marketing_waits_for_the_frequency_cap() -> None:
    later = DAY_IN_SHANGHAI + timedelta(days=2)
    outcome = decide(MessageClass.marketing, cap_allows_at=later)
    assert outcome is not None
    assert (outcome.status, outcome.reason, outcome.until) == ("deferred", "frequency cap", later)


def test_a_cap_that_has_passed_does_not_hold_marketing() -> None:
    assert decide(MessageClass.marketing, cap_allows_at=DAY_IN_SHANGHAI) is None
    an_hour_ago = DAY_IN_SHANGHAI - timedelta(hours=1)
    assert decide(MessageClass.marketing, cap_allows_at=an_hour_ago) is None


def test_the_frequency_cap_holds_only_marketing() -> None:
    later = DAY_IN_SHANGHAI + timedelta(days=2)
    for message_class in (MessageClass.staff, MessageClass.transactional, MessageClass.reminder):
        assert decide(message_class, cap_allows_at=later) is None


# -- policies and settings ------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CRM_* or TEMPORAL_* variables from the shell leak into Settings."""
    for name in list(os.environ):
        if name.upper().startswith(("CRM_", "TEMPORAL_")):
            monkeypatch.delenv(name)
    return monkeypatch


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_the_lead_policy_defaults_are_the_design_numbers() -> None:
    policy = LeadPolicy()
    assert policy.first_touch == timedelta(hours=24)
    assert policy.reminder_before == timedelta(hours=4)
    assert policy.max_reassignments == 2
    assert policy.follow_up_interval == timedelta(days=3)
    assert policy.max_missed_follow_ups == 5


def test_a_scaled_policy_divides_durations_but_not_counts() -> None:
    policy = LeadPolicy().scaled(24)
    assert policy.first_touch == timedelta(hours=1)
    assert policy.reminder_before == timedelta(minutes=10)
    assert policy.follow_up_interval == timedelta(hours=3)
    assert (policy.max_reassignments, policy.max_missed_follow_ups) == (2, 5)
    assert LeadPolicy().scaled(1) == LeadPolicy()


def test_settings_default_to_the_domain_policies(clean_env: pytest.MonkeyPatch) -> None:
    configured = settings()
    assert configured.lead_policy == LeadPolicy()
    assert configured.messaging_policy.quiet_hours == NIGHT
    assert configured.messaging_policy.default_timezone == SHANGHAI


def test_settings_override_the_lead_policy_by_keyword(clean_env: pytest.MonkeyPatch) -> None:
    policy = settings(lead_first_touch_hours=8, lead_max_reassignments=4,
                      lead_follow_up_days=1).lead_policy
    assert policy.first_touch == timedelta(hours=8)
    assert policy.max_reassignments == 4
    assert policy.follow_up_interval == timedelta(days=1)
    assert policy.reminder_before == timedelta(hours=4)


def test_settings_override_the_lead_policy_from_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("CRM_LEAD_FIRST_TOUCH_HOURS", "12")
    clean_env.setenv("CRM_LEAD_MAX_MISSED_FOLLOW_UPS", "7")
    policy = settings().lead_policy
    assert policy.first_touch == timedelta(hours=12)
    assert policy.max_missed_follow_ups == 7
    assert policy.follow_up_interval == timedelta(days=3)


def test_a_keyword_beats_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CRM_LEAD_FIRST_TOUCH_HOURS", "12")
    assert settings(lead_first_touch_hours=6).lead_policy.first_touch == timedelta(hours=6)


def test_a_time_scale_of_8640_runs_a_day_in_ten_seconds(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CRM_TIME_SCALE", "8640")
    policy = settings().lead_policy
    assert policy.first_touch == timedelta(seconds=10)
    assert policy.follow_up_interval == timedelta(seconds=30)


def test_quiet_hours_come_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CRM_QUIET_HOURS_START", "22:30")
    clean_env.setenv("CRM_QUIET_HOURS_ENABLED", "false")
    quiet = settings().messaging_policy.quiet_hours
    assert quiet == QuietHours(enabled=False, start=time(22, 30), end=time(9, 0))


def test_an_unconfigured_channel_delivers_to_the_local_outbox(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = settings(outbox_path=tmp_path / "outbox.log").channel_url("email")
    assert url.startswith("outbox://")
    assert f"{tmp_path}/outbox.log" in url
    assert "channel=email" in url and "{to}" in url


def test_a_configured_channel_url_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CRM_EMAIL_URL", "mailtos://user:pass@smtp.example.com?to={to}")
    configured = settings()
    assert configured.channel_url("email") == "mailtos://user:pass@smtp.example.com?to={to}"
    assert configured.channel_url("sms").startswith("outbox://")


# -- money ----------------------------------------------------------------------------


def test_yuan_go_to_fen_and_back_exactly() -> None:
    assert to_minor(Decimal("999.99"), "CNY") == 99999
    assert from_minor(99999, "CNY") == Decimal("999.99")
    assert str(from_minor(99999, "CNY")) == "999.99"
    assert str(from_minor(100, "cny")) == "1.00"


def test_yen_have_no_minor_unit() -> None:
    assert to_minor(Decimal("1500"), "JPY") == 1500
    assert from_minor(1500, "JPY") == Decimal("1500")


@pytest.mark.parametrize(("amount", "currency"), [("1.005", "CNY"), ("1500.5", "JPY")])
def test_an_amount_finer_than_the_currency_allows_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match=currency):
        to_minor(Decimal(amount), currency)


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["CNY", "USD", "JPY"]))
def test_minor_units_survive_a_round_trip(minor: int, currency: str) -> None:
    assert to_minor(from_minor(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [("0.005", "CNY", "0.01"), ("2.675", "CNY", "2.68"), ("2.674", "CNY", "2.67"),
     ("2.5", "JPY", "3")],
)
def test_money_rounds_half_up(amount: str, currency: str, rounded: str) -> None:
    assert round_money(Decimal(amount), currency) == Decimal(rounded)


# -- SLA clock ------------------------------------------------------------------------


def test_a_deadline_is_start_plus_duration_in_utc() -> None:
    due = CalendarClock().due(datetime(2026, 1, 5, 9, 0, tzinfo=CST), timedelta(hours=24))
    assert due == utc(2026, 1, 6, 1, 0)
    assert due.tzinfo is UTC


def test_an_sla_start_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        CalendarClock().due(datetime(2026, 1, 5, 9, 0), timedelta(hours=24))


def test_the_word_lists_are_the_enums_the_journeys_check() -> None:
    """The command line reads the word lists without loading the models; the
    journeys and the store check the same values."""
    from activities.store.staff import ROLES
    from domain.courses import CallbackOutcome
    from domain.leads import ContactChannel
    from domain.vocabulary import CALLBACK_OUTCOMES, CONTACT_CHANNELS, STAFF_ROLES

    assert [c.value for c in ContactChannel] == list(CONTACT_CHANNELS)
    assert [o.value for o in CallbackOutcome] == list(CALLBACK_OUTCOMES)
    assert ROLES == STAFF_ROLES
