"""The policies' defaults and the settings that override them, and the word
lists the command line shares with the journeys.
"""

from __future__ import annotations

import os
from datetime import time, timedelta
from pathlib import Path

import pytest

from domain.policy import LeadPolicy, QuietHours
from domain.settings import Settings
from tests.domain_support import NIGHT, SHANGHAI


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
