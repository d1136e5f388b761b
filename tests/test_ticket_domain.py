"""Unit tests of the ticket rules: the SLA clock's accounting, complaint words,
priority raising and agent routing. No store, no Temporal, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.settings import Settings
from domain.sla import SlaClock
from domain.ticket_routing import AgentLoad, choose_agent, complaint_words_in, raised_priority
from domain.ticket_status import TicketStatus
from domain.tickets import Priority, TicketPolicy, TicketType

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- the SLA clock -----------------------------------------------------------------------


def test_a_running_clock_is_due_at_start_plus_target() -> None:
    clock = SlaClock(target=4 * H).start(T0)
    assert clock.state == "running"
    assert clock.due_at() == T0 + 4 * H
    assert clock.due_at(4 * H + 15 * M) == T0 + 4 * H + 15 * M
    assert clock.used_at(at(90)) == 90 * M and clock.remaining_at(at(90)) == 150 * M
    assert not clock.breached_at(at(239)) and clock.breached_at(at(240))


def test_a_pause_stops_the_clock_and_moves_the_deadline() -> None:
    clock = SlaClock(target=4 * H).start(T0).pause(at(60))
    assert clock.state == "paused" and clock.due_at() is None
    assert clock.used_at(at(600)) == H  # a paused clock really stops
    assert clock.paused_at(at(180)) == 2 * H
    clock = clock.resume(at(180))
    assert clock.due_at() == at(180) + 3 * H
    assert (clock.used, clock.paused, clock.pauses) == (H, 2 * H, 1)


def test_several_pauses_add_up_exactly() -> None:
    clock = SlaClock(target=24 * H).start(T0)
    clock = clock.pause(at(60)).resume(at(180))      # 60 used, 120 paused
    clock = clock.pause(at(210)).resume(at(390))     # 30 used, 180 paused
    clock = clock.pause(at(405))                     # 15 used
    assert clock.used_at(at(700)) == 105 * M
    assert clock.paused_at(at(700)) == (120 + 180 + 295) * M
    assert clock.pauses == 3


def test_a_pause_ended_by_resolution_counts_as_paused() -> None:
    clock = SlaClock(target=24 * H).start(T0).pause(at(60)).stop(at(300))
    assert clock.state == "stopped"
    assert (clock.used, clock.paused) == (H, 4 * H)
    assert clock.used_at(at(10_000)) == H and clock.paused_at(at(10_000)) == 4 * H
    assert clock.due_at() is None


def test_a_reopen_runs_on_from_the_time_used() -> None:
    clock = SlaClock(target=24 * H).start(T0).stop(at(120))
    reopened = clock.start(at(120 + 3 * 24 * 60))  # three days resolved count for nothing
    assert reopened.used_at(at(120 + 3 * 24 * 60)) == 2 * H
    assert reopened.due_at() == at(120 + 3 * 24 * 60) + 22 * H
    assert reopened.paused == timedelta(0)


def test_a_reopen_after_the_target_is_due_at_once() -> None:
    clock = SlaClock(target=H).start(T0).stop(at(90)).start(at(200))
    assert clock.due_at() == at(170)  # in the past: the journey escalates at once
    assert clock.breached_at(at(200))


def test_transitions_that_do_not_apply_change_nothing() -> None:
    stopped = SlaClock(target=H)
    assert stopped.pause(T0) == stopped and stopped.resume(T0) == stopped
    assert stopped.stop(T0) == stopped
    running = stopped.start(T0)
    assert running.start(at(5)) == running and running.resume(at(5)) == running
    paused = running.pause(at(10))
    assert paused.pause(at(20)) == paused
    assert paused.start(at(30)) == paused.resume(at(30))


def test_a_moment_before_the_last_one_counts_as_no_time() -> None:
    clock = SlaClock(target=H).start(at(10))
    assert clock.pause(at(5)).used == timedelta(0)
    assert clock.pause(at(5)).resume(at(4)).running_since == at(10)


EVENTS = st.lists(st.tuples(st.sampled_from(["pause", "resume", "stop", "start"]),
                            st.integers(min_value=0, max_value=10_000)), max_size=30)


@given(EVENTS)
def test_used_plus_paused_plus_stopped_time_is_the_elapsed_time(events: list) -> None:
    """Whatever happens in whatever order, every moment since the start is
    counted once: on the clock, paused, or stopped (resolved)."""
    clock = SlaClock(target=4 * H).start(T0)
    now, stopped_for, stopped_since = T0, timedelta(0), None
    for action, gap in events:
        now += timedelta(seconds=gap)
        before = clock.state
        clock = getattr(clock, action)(now)
        if before == "stopped" and clock.state != "stopped":
            stopped_for += now - stopped_since
        if before != "stopped" and clock.state == "stopped":
            stopped_since = now
    end = now + timedelta(seconds=1)
    if clock.state == "stopped":
        stopped_for += end - stopped_since
    assert clock.used_at(end) + clock.paused_at(end) + stopped_for == end - T0
    if clock.state == "running":
        assert clock.due_at() == end + clock.remaining_at(end)


def test_the_status_carries_the_figures_on_to_a_later_moment() -> None:
    status = TicketStatus(ticket_id="T", customer_id="c", type=TicketType.other,
                          priority=Priority.low, subject="s", channel="web", stage="in_progress",
                          opened_at=T0, as_of=at(30), sla_clock="paused",
                          time_used=10 * M, time_paused=20 * M)
    assert status.used_at(at(90)) == 10 * M and status.paused_at(at(90)) == 80 * M


# -- complaints, priority, routing ---------------------------------------------------


def test_complaint_words_in_chinese_and_english_ignore_case() -> None:
    words = TicketPolicy().complaint_words
    assert complaint_words_in(["打印机坏了，我要投诉！", None], words) == ["投诉"]
    assert complaint_words_in(["Please REFUND", "a formal Complaint"], words) == [
        "complaint", "refund"]
    assert complaint_words_in(["对服务很不满意，要求退款"], words) == ["不满意", "退款"]
    assert complaint_words_in(["The printer is jammed"], words) == []
    assert complaint_words_in(["refund"], ["  ", "Refund", "refund"]) == ["Refund"]


@pytest.mark.parametrize(("given_priority", "raised"), [
    (Priority.low, Priority.high), (Priority.normal, Priority.high),
    (Priority.high, Priority.high), (Priority.urgent, Priority.urgent)])
def test_a_complaint_is_at_least_high_priority(given_priority: Priority,
                                               raised: Priority) -> None:
    assert raised_priority(given_priority) is raised


def test_the_least_loaded_active_agent_ties_to_seniority_then_id() -> None:
    agents = [AgentLoad("a-2", 3, seniority=1), AgentLoad("a-1", 3, seniority=1),
              AgentLoad("a-3", 3, seniority=2), AgentLoad("a-4", 1, active=False)]
    assert choose_agent(agents).agent_id == "a-3"
    assert choose_agent(agents[:2]).agent_id == "a-1"
    assert choose_agent([*agents, AgentLoad("a-5", 2)]).agent_id == "a-5"


def test_an_agent_at_capacity_is_passed_over_unless_everyone_is() -> None:
    agents = [AgentLoad("a-1", 5, capacity=5), AgentLoad("a-2", 7, capacity=50)]
    assert choose_agent(agents).agent_id == "a-2"
    full = [AgentLoad("a-1", 5, capacity=5), AgentLoad("a-2", 7, capacity=7)]
    assert choose_agent(full).agent_id == "a-1"


def test_complaints_go_to_senior_agents_or_anyone_when_there_are_none() -> None:
    agents = [AgentLoad("junior", 0, seniority=1), AgentLoad("senior", 9, seniority=5)]
    routing = choose_agent(agents, min_seniority=3)
    assert (routing.agent_id, routing.senior, routing.note) == ("senior", True, None)
    routing = choose_agent(agents[:1], min_seniority=3)
    assert routing.agent_id == "junior" and not routing.senior and "seniority >= 3" in (
        routing.note or "")
    assert choose_agent([], min_seniority=3).agent_id is None


# -- policy ---------------------------------------------------------------------------


def test_policy_defaults_from_the_design() -> None:
    policy = TicketPolicy()
    assert policy.first_response_for(Priority.urgent) == 15 * M
    assert [policy.resolution_target(p) for p in Priority] == [H, 4 * H, 24 * H, 72 * H]
    assert policy.group_for(TicketType.complaint) == "complaints"
    assert policy.group_for(TicketType.order_query) == "orders"
    assert (policy.warning_before, policy.manager_after) == (5 * M, 15 * M)
    assert (policy.survey_after, policy.close_after_survey) == (timedelta(days=7),
                                                                timedelta(days=3))


def test_policy_from_settings_scaled() -> None:
    settings = Settings(ticket_first_response_minutes=10, ticket_complaint_words=["退货"],
                        ticket_reassign_to_supervisor=True, time_scale=60,
                        _env_file=None)  # type: ignore[call-arg]
    policy = settings.ticket_policy
    assert policy.first_response == timedelta(seconds=10)
    assert policy.resolution_target(Priority.urgent) == M
    assert policy.complaint_words == ["退货"] and policy.reassign_to_supervisor
    assert policy.survey_after == timedelta(days=7) / 60
