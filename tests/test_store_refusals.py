"""Values the store can never keep, on SQLite and PostgreSQL: a signal's value
is refused before any write (InvalidInput), a write the store rejects fails for
good (StoreRefused), both non-retryable, short and naming the field; what
retrying can fix stays retryable (StoreError). Nothing is written, and a
legitimate value still goes through. Whatever else an activity raises leaves
with a short message.

Activities run in Temporal's activity environment, as on a worker."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.courses import CourseActivities
from activities.failures import MAX_MESSAGE, ShortFailures
from activities.leads import LeadActivities
from activities.store import MAX_FAILURE_MESSAGE, Store, migrate, store_failure
from activities.tickets import TicketActivities
from domain import limits, schema
from domain.courses import (
    AdvisorHandover,
    CallbackOutcome,
    CallbackRecord,
    CourseEndMoved,
    CoursePolicy,
    EnrollmentInput,
    EnrollRequest,
)
from domain.leads import (
    AssignRequest,
    ClaimRequest,
    ContactRequest,
    ConvertRequest,
    IntakeRequest,
    LeadInput,
    LeadStage,
    StageChange,
)
from domain.policy import LeadPolicy
from domain.tickets import (
    ClockChange,
    EscalationKind,
    OpenTicketRequest,
    RatingRecord,
    ResolveRequest,
    ResponseRequest,
    TicketEscalation,
    TicketInput,
    TicketOpened,
    TicketPolicy,
    TicketReassignment,
    TicketStage,
)
from tests.conftest import PG_ENV, _fresh_postgres
from tests.harness import seed_staff
from tests.refusals import FAR, HOUR, NOW, NUL, assert_invalid, refusal, run, snapshot

# -- leads -----------------------------------------------------------------------


@pytest.fixture
def leads(store: Store) -> LeadActivities:
    seed_staff(store)
    activities = LeadActivities(store=store, policy=LeadPolicy())
    lead = LeadInput(lead_id="L1", name="王芳", phone="13800138000", region="east",
                     product_line="erp", source="web_form")
    run(activities.intake_lead, IntakeRequest(lead=lead, workflow_id="lead-L1", now=NOW))
    assigned = run(activities.assign_lead, AssignRequest(
        lead_id="L1", workflow_id="lead-L1", now=NOW, first_touch=timedelta(hours=24)))
    assert assigned.owner_id == "rep-a"
    return activities


def contact(n: int, **values: Any) -> ContactRequest:
    return ContactRequest.model_validate({
        "lead_id": "L1", "workflow_id": "lead-L1", "owner_id": "rep-a", "channel": "phone",
        "note": "demo booked", "now": NOW + HOUR, "assigned_at": NOW,
        "follow_up": timedelta(days=3), "n": n, **values})


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("note", NUL, "contains a NUL character"),
    ("note", "x" * (limits.TEXT + 1), f"the store keeps at most {limits.TEXT}"),
    ("channel", NUL, "contains a NUL character"),
    ("channel", "c" * 33, "is 33 characters long; the store keeps at most 32"),
    ("owner_id", "rep-a\x00", "contains a NUL character"),
    ("owner_id", "r" * 65, "is 65 characters long; the store keeps at most 64"),
])
def test_a_contact_the_store_cannot_keep_is_refused_and_writes_nothing(
        leads: LeadActivities, store: Store, field: str, value: str, problem: str) -> None:
    before = snapshot(store)
    assert_invalid(refusal(leads.record_contact, contact(1, **{field: value})), field, problem)
    assert snapshot(store) == before
    decision = run(leads.record_contact, contact(1))
    assert decision.accepted
    with store.unit_of_work() as session:
        assert session.scalars(select(schema.Interaction.note)).all() == ["demo booked"]


def test_a_claim_naming_a_hostile_id_is_refused(leads: LeadActivities, store: Store) -> None:
    before = snapshot(store)
    request = ClaimRequest(lead_id="L1", workflow_id="lead-L1", owner_id="rep-b\x00", now=NOW,
                           first_touch=timedelta(hours=24), n=2)
    assert_invalid(refusal(leads.claim_lead, request), "owner_id", "contains a NUL")
    assert snapshot(store) == before


def convert(**values: Any) -> ConvertRequest:
    return ConvertRequest.model_validate({
        "lead_id": "L1", "workflow_id": "lead-L1", "owner_id": "rep-a",
        "opportunity_name": "ERP for three plants", "amount": "250000.00", "currency": "CNY",
        "now": NOW + HOUR, **values})


@pytest.mark.parametrize(("values", "field", "problem"), [
    ({"amount": "1e30"}, "amount", "1E+30 is beyond what the store can keep in CNY"),
    ({"amount": 10**19}, "amount", "is beyond what the store can keep in CNY"),
    ({"amount": "0.001"}, "amount", "0.001 has more than 2 decimal places for CNY"),
    ({"currency": "ZZZZ"}, "currency", "'ZZZZ' is not an ISO 4217 currency code"),
    ({"currency": "ZZZ", "amount": "1e30"}, "currency", "'ZZZ' is not an ISO 4217"),
    ({"currency": "C\x00Y"}, "currency", "is not an ISO 4217 currency code"),
    ({"opportunity_name": "n" * 201}, "opportunity_name", "the store keeps at most 200"),
    ({"opportunity_name": NUL}, "opportunity_name", "contains a NUL character"),
])
def test_a_conversion_the_store_cannot_keep_is_refused_and_writes_nothing(
        leads: LeadActivities, store: Store, values: dict[str, Any], field: str,
        problem: str) -> None:
    before = snapshot(store)
    assert_invalid(refusal(leads.convert_lead, convert(**values)), field, problem)
    assert snapshot(store) == before
    assert run(leads.convert_lead, convert(amount="10000000000000.00")) == "opp-L1"
    with store.unit_of_work() as session:
        opportunity = session.get(schema.Opportunity, "opp-L1")
        assert opportunity is not None and opportunity.amount_minor == limits.MAX_MINOR


def test_a_discard_reason_with_a_nul_is_refused_and_the_lead_stays_open(
        leads: LeadActivities, store: Store) -> None:
    def discard(reason: str) -> StageChange:
        return StageChange(lead_id="L1", workflow_id="lead-L1", stage=LeadStage.discarded,
                           now=NOW + HOUR, step="discarded", reason=reason)

    before = snapshot(store)
    assert_invalid(refusal(leads.change_lead_stage, discard(NUL)), "reason", "contains a NUL")
    assert snapshot(store) == before
    run(leads.change_lead_stage, discard("wrong number, 空号"))
    with store.unit_of_work() as session:
        lead = session.get(schema.Lead, "L1")
        assert lead is not None and (lead.stage, lead.close_reason) == ("discarded",
                                                                        "wrong number, 空号")


_CONTACTS = itertools.count(1)
NOTES = st.one_of(
    st.text(max_size=40),
    st.tuples(st.text(max_size=10), st.text(max_size=10)).map(lambda p: p[0] + "\x00" + p[1]),
    st.integers(min_value=limits.TEXT - 1, max_value=limits.TEXT + 1).map(lambda n: "记" * n),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(note=NOTES)
def test_a_contact_note_is_kept_exactly_or_refused_naming_it(
        leads: LeadActivities, store: Store, note: str) -> None:
    n = next(_CONTACTS)
    fits = limits.text_problem(note, limits.TEXT) is None
    try:
        run(leads.record_contact, contact(n, note=note))
    except ApplicationError as error:
        assert not fits
        assert_invalid(error, "note", "")
        with store.unit_of_work() as session:
            assert session.scalar(select(schema.Interaction.id).where(
                schema.Interaction.key == f"lead-L1:contact:{n}")) is None
    else:
        assert fits
        with store.unit_of_work() as session:
            assert session.scalar(select(schema.Interaction.note).where(
                schema.Interaction.key == f"lead-L1:contact:{n}")) == note


def fitting(limit: int) -> st.SearchStrategy[str]:
    """Text a column of `limit` characters keeps: short, or exactly at the limit."""
    return st.one_of(st.text(max_size=12).map(lambda t: "x" + t.replace("\x00", "")),
                     st.just("长" * limit))


def unfitting(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just("长" * (limit + 1)),
                     st.text(max_size=5).map(lambda t: "x\x00" + t))


LEAD_TEXTS = {"name": limits.NAME, "company": limits.NAME, "region": limits.REGION,
              "product_line": limits.PRODUCT_LINE, "source": limits.SOURCE,
              "locale": limits.LOCALE, "timezone": limits.TIMEZONE, "need": limits.TEXT}
HOSTILE_LEAD_TEXT = st.one_of(st.none(), st.sampled_from(sorted(LEAD_TEXTS)).flatmap(
    lambda field: st.tuples(st.just(field), unfitting(LEAD_TEXTS[field]))))
_LEADS = itertools.count(1)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({f: fitting(n) for f, n in LEAD_TEXTS.items()}),
       hostile=HOSTILE_LEAD_TEXT)
def test_a_lead_the_start_input_takes_is_one_the_store_keeps(
        leads: LeadActivities, store: Store, values: dict[str, str],
        hostile: tuple[str, str] | None) -> None:
    """The start input's limits mirror the store: whatever it takes, intake
    writes as it was given; a value over a limit is refused naming its field."""
    lead_id = f"H{next(_LEADS)}"
    if hostile is not None:
        values = {**values, hostile[0]: hostile[1]}
    raw = {"lead_id": lead_id, "email": f"{lead_id.lower()}@example.com", **values}
    try:
        lead = LeadInput.model_validate(raw)
    except ValidationError as refused:
        assert hostile is not None
        assert [e["loc"] for e in refused.errors()] == [(hostile[0],)]
        event("refused")
        return
    assert hostile is None
    event("written")
    run(leads.intake_lead, IntakeRequest(lead=lead, workflow_id=f"lead-{lead_id}", now=NOW))
    with store.unit_of_work() as session:
        row = session.get(schema.Lead, lead_id)
        assert row is not None
        assert (row.company, row.region, row.locale, row.timezone, row.need) == (
            values["company"], values["region"], values["locale"], values["timezone"],
            values["need"])


# -- tickets ---------------------------------------------------------------------


@pytest.fixture
def ticket(store: Store) -> tuple[TicketActivities, TicketOpened]:
    seed_staff(store)
    tickets = TicketActivities(store=store, policy=TicketPolicy())
    opened = run(tickets.open_ticket, OpenTicketRequest(
        ticket=TicketInput(ticket_id="T1", customer_id="cust-1", type="technical",
                           subject="Printer"),
        workflow_id="ticket-T1", opened_at=NOW, now=NOW, policy=TicketPolicy()))
    return tickets, opened


def test_ticket_signal_values_the_store_cannot_keep_are_refused_and_write_nothing(
        ticket: tuple[TicketActivities, TicketOpened], store: Store) -> None:
    tickets, opened = ticket
    agent = opened.assignee_id
    assert agent is not None
    at = NOW + HOUR
    before = snapshot(store)
    cases: list[tuple[Callable[..., Any], Any, str, str]] = [
        (tickets.record_response, ResponseRequest(
            ticket_id="T1", workflow_id="ticket-T1", agent_id=agent, at=at, first=True, n=1,
            note=NUL), "note", "contains a NUL"),
        (tickets.record_response, ResponseRequest(
            ticket_id="T1", workflow_id="ticket-T1", agent_id="a" * 65, at=at, first=True,
            n=1), "agent_id", "is 65 characters long"),
        (tickets.resolve_ticket, ResolveRequest(
            ticket_id="T1", workflow_id="ticket-T1", agent_id=agent, resolution=NUL, at=at,
            clock=opened.clock, first_response=True, n=1), "resolution", "contains a NUL"),
        (tickets.rate_ticket, RatingRecord(
            ticket_id="T1", workflow_id="ticket-T1", score=10**12, at=at, n=1),
            "score", "must be 1 to 5"),
        (tickets.rate_ticket, RatingRecord(
            ticket_id="T1", workflow_id="ticket-T1", score=2, comment=NUL, at=at, n=1),
            "comment", "contains a NUL"),
        (tickets.move_sla_clock, ClockChange(
            ticket_id="T1", workflow_id="ticket-T1", kind="reopened", at=at,
            clock=opened.clock, stage=TicketStage.in_progress, manager_after=HOUR, n=1,
            reason="y" * (limits.TEXT + 1)), "reason", "the store keeps at most"),
        (tickets.escalate_ticket, TicketEscalation(
            ticket_id="T1", workflow_id="ticket-T1", kind=EscalationKind.low_rating, level=1,
            n=1, at=at, stage=TicketStage.escalated_supervisor, reason="rated 1/5",
            comment=NUL), "comment", "contains a NUL"),
        (tickets.reassign_ticket, TicketReassignment(
            ticket_id="T1", workflow_id="ticket-T1", group="technical", staff_id=NUL, at=at,
            n=1), "staff_id", "contains a NUL"),
    ]
    for fn, request, field, problem in cases:
        assert_invalid(refusal(fn, request), field, problem)
    assert snapshot(store) == before

    assert run(tickets.record_response, ResponseRequest(
        ticket_id="T1", workflow_id="ticket-T1", agent_id=agent, at=at, first=True, n=1,
        note="已远程重启")).accepted
    run(tickets.rate_ticket, RatingRecord(ticket_id="T1", workflow_id="ticket-T1", score=5,
                                          comment="很好", at=at, n=1))
    with store.unit_of_work() as session:
        t = session.get(schema.Ticket, "T1")
        assert t is not None and t.rating == 5 and t.first_responder_id == agent


# -- courses ---------------------------------------------------------------------


@pytest.fixture
def course(store: Store) -> CourseActivities:
    seed_staff(store)
    courses = CourseActivities(store=store, policy=CoursePolicy())
    run(courses.enroll_student, EnrollRequest(
        enrollment=EnrollmentInput(enrollment_id="E1", customer_id="cust-1",
                                   course_id="erp-101", advisor_id="adv-1", ends_at=NOW),
        workflow_id="enrollment-E1", now=NOW))
    return courses


def test_course_signal_values_the_store_cannot_keep_are_refused_and_write_nothing(
        course: CourseActivities, store: Store) -> None:
    before = snapshot(store)
    callback = CallbackRecord(enrollment_id="E1", workflow_id="enrollment-E1",
                              advisor_id="adv-1", outcome=CallbackOutcome.renewal_intent,
                              note=NUL, now=NOW + HOUR)
    assert_invalid(refusal(course.record_callback, callback), "note", "contains a NUL")
    moved = CourseEndMoved(enrollment_id="E1", workflow_id="enrollment-E1", ends_at=FAR,
                           now=NOW, n=1)
    assert_invalid(refusal(course.move_course_end, moved), "ended_at",
                   "is outside the years 1900-2999")
    handover = AdvisorHandover(enrollment_id="E1", workflow_id="enrollment-E1",
                               from_advisor_id="adv-1\x00", now=NOW, n=1)
    assert_invalid(refusal(course.reassign_advisor, handover), "staff_id", "contains a NUL")
    assert snapshot(store) == before

    run(course.record_callback, callback.model_copy(update={"note": "续报高级班"}))
    with store.unit_of_work() as session:
        enrollment = session.get(schema.Enrollment, "E1")
        assert enrollment is not None and enrollment.callback_outcome == "renewal_intent"


# -- what the store itself refuses ----------------------------------------------


def write(store: Store, **values: Any) -> None:
    """A customer written in one unit of work, as an activity would."""

    @activity.defn(name="write_customer")
    def write_customer() -> None:
        with store.unit_of_work() as session:
            session.add(schema.Customer(**{"id": "c-1", "name": "周杰", "created_at": NOW,
                                           **values}))

    run(write_customer)


def store_refusal(store: Store, **values: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        write(store, **values)
    error = refused.value
    assert error.type == "StoreRefused", error
    assert error.non_retryable is True
    assert error.__cause__ is None and len(error.message) <= MAX_FAILURE_MESSAGE
    with store.unit_of_work() as session:
        assert session.get(schema.Customer, "c-1") is None
    return error


def test_a_not_null_violation_is_refused_for_good_without_the_row(store: Store) -> None:
    error = store_refusal(store, name=None, email="secret.person@example.com")
    assert "customers" in error.message and "name" in error.message
    assert "secret.person" not in error.message
    write(store)  # the same write with a name goes through


def test_an_integer_wider_than_the_column_is_refused_for_good(store: Store) -> None:
    error = store_refusal(store, order_count=10**30)
    assert "out of range" in error.message


@pytest.fixture
def postgres_store(postgres_server_url: str | None) -> Iterator[Store]:
    """PostgreSQL only: SQLite keeps text of any length, NUL characters and
    64-bit integers, so these refusals are PostgreSQL's own."""
    if postgres_server_url is None:
        pytest.skip(f"PostgreSQL's own refusals need {PG_ENV}")
    url = _fresh_postgres(postgres_server_url)
    migrate(url)
    store = Store.from_url(url)
    yield store
    store.dispose()


@pytest.mark.parametrize(("values", "where", "problem"), [
    ({"name": "x" * 201}, "customers.name", "value too long for type character varying(200)"),
    ({"locale": "zh-Hans-CN-x-private"}, "customers.locale", "value too long"),
    ({"name": NUL}, "customers.name", "cannot contain NUL"),
    ({"order_count": 10**12}, "customers.order_count", "integer out of range"),
])
def test_postgresql_s_refusals_name_the_column_and_never_the_values(
        postgres_store: Store, values: dict[str, Any], where: str, problem: str) -> None:
    error = store_refusal(postgres_store, email="secret.person@example.com", **values)
    assert error.message.startswith(f"the store refused {where}: "), error.message
    assert problem in error.message
    assert "secret.person" not in error.message and "INSERT" not in error.message


def test_a_lookup_by_a_nul_id_is_refused_for_good_on_postgresql(postgres_store: Store) -> None:
    @activity.defn(name="look_up")
    def look_up() -> None:
        with postgres_store.unit_of_work() as session:
            session.get(schema.Staff, NUL)

    error = refusal(look_up)
    assert error.type == "StoreRefused" and error.non_retryable
    assert "NUL" in error.message


def test_a_conflicting_write_stays_retryable(store: Store) -> None:
    write(store)
    with pytest.raises(ApplicationError) as conflict:
        write(store)
    error = conflict.value
    assert error.type == "StoreError" and not error.non_retryable
    assert "customers" in error.message and len(error.message) <= MAX_FAILURE_MESSAGE


def test_outside_an_activity_the_store_raises_sqlalchemy_s_own_errors(store: Store) -> None:
    with pytest.raises(IntegrityError), store.unit_of_work() as session:
        session.add(schema.Customer(id="c-1", name=None, created_at=NOW))
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(DataError), store.unit_of_work() as session:
            session.add(schema.Customer(id="c-1", name=NUL, created_at=NOW))


def test_a_store_that_cannot_be_reached_is_retried_and_its_password_is_not_told() -> None:
    down = Store.from_url("postgresql://crm:s3cret-pw@127.0.0.1:1/crm?connect_timeout=2")

    @activity.defn(name="read")
    def read() -> None:
        with down.unit_of_work() as session:
            session.execute(text("SELECT 1"))

    error = refusal(read)
    down.dispose()
    assert error.type == "StoreError" and not error.non_retryable
    assert "s3cret" not in error.message and len(error.message) <= MAX_FAILURE_MESSAGE


@pytest.mark.parametrize("orig", [
    psycopg.errors.SerializationFailure("could not serialize access"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.OperationalError("server closed the connection unexpectedly"),
])
def test_transient_store_errors_stay_retryable(orig: Exception) -> None:
    error = store_failure(OperationalError("UPDATE leads SET stage=%(stage)s",
                                           {"stage": "secret"}, orig))
    assert error is not None and error.type == "StoreError" and not error.non_retryable
    assert "secret" not in error.message


def test_a_long_driver_message_is_cut_to_the_failure_limit() -> None:
    error = store_failure(OperationalError("SELECT 1", {}, psycopg.OperationalError(
        "connection failed: " + "x" * 100_000)))
    assert error is not None and len(error.message) <= MAX_FAILURE_MESSAGE
    assert error.message.endswith("(truncated)")


def test_an_error_from_outside_the_store_leaves_as_raised() -> None:
    assert store_failure(KeyError("x")) is None
    assert store_failure(ApplicationError("unknown lead", type="UnknownLead")) is None


def test_money_one_minor_unit_over_the_limit_is_refused() -> None:
    over = Decimal(limits.MAX_MINOR + 1).scaleb(-2)
    assert limits.amount_problem(over, "CNY") is not None
    assert limits.amount_problem(over - Decimal("0.01"), "CNY") is None


# -- every activity failure stays small --------------------------------------------


class _Raises(ActivityInboundInterceptor):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        raise self.error


async def leaves(error: BaseException) -> BaseException:
    inbound = ShortFailures().intercept_activity(_Raises(error))
    with pytest.raises(BaseException) as left:
        await inbound.execute_activity(None)  # type: ignore[arg-type]
    return left.value


async def test_a_long_application_error_leaves_short_with_its_type_and_retry_choice() -> None:
    left = await leaves(ApplicationError("unknown staff " + "x" * 50_000, type="UnknownStaff",
                                         non_retryable=True))
    assert isinstance(left, ApplicationError)
    assert (left.type, left.non_retryable) == ("UnknownStaff", True)
    assert len(left.message) <= MAX_MESSAGE and left.message.startswith("unknown staff x")


async def test_any_other_long_error_leaves_as_a_short_retryable_failure_without_its_cause(
        ) -> None:
    try:
        try:
            raise ValueError("row " + "customer data " * 10_000)
        except ValueError as cause:
            raise RuntimeError("render failed") from cause
    except RuntimeError as error:
        left = await leaves(error)
    assert isinstance(left, ApplicationError)
    assert left.type == "RuntimeError" and not left.non_retryable
    assert left.message == "render failed" and left.__cause__ is None


async def test_a_short_error_leaves_untouched() -> None:
    error = ApplicationError("unknown lead 'L9'", type="UnknownLead", non_retryable=True)
    assert await leaves(error) is error
    error2 = KeyError("first_touch_due")
    assert await leaves(error2) is error2
