"""Quiet hours in the recipient's zone, and whether a message goes now, waits
or is stopped. Pure rules, no store, no clock.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from domain.messaging import (
    Consent,
    ConsentScope,
    MessageClass,
    SendOutcome,
    decide_send,
    in_quiet_hours,
    quiet_hours_end,
)
from domain.policy import QuietHours
from tests.domain_support import CST, NIGHT, SHANGHAI, utc

NEW_YORK = "America/New_York"
LUNCH = QuietHours(start=time(12, 0), end=time(14, 0))
NO_QUIET = QuietHours(enabled=False)


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
