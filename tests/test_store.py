"""The CRM store on both engines (SQLite always, PostgreSQL when
CRM_TEST_POSTGRES_URL is set): schema, UTC times, money, the unit of work,
and the lead and messaging activities called directly over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from temporalio.exceptions import ApplicationError

from activities.delivery import DeliveryFailed, Message, TemplateRenderer
from activities.leads import LeadActivities
from activities.messaging import Deliverer, MessagingActivities
from activities.store import SQLITE_BUSY_TIMEOUT_MS, Store, make_engine
from domain import schema
from domain.leads import (
    AssignRequest,
    ContactRequest,
    IntakeRequest,
    IntakeResult,
    LeadInput,
    LeadStage,
    StageChange,
)
from domain.messaging import MessageClass, Recipient, SendRequest
from domain.money import from_minor, to_minor
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from tests.harness import seed_staff

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
HOUR = timedelta(hours=1)


def rows(store: Store, model: type[Any], **where: Any) -> list[Any]:
    with store.unit_of_work() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.scalars(query))


def count(store: Store, model: type[Any]) -> int:
    with store.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def an_event(key: str = "lead-L1:received", at: datetime = NOW) -> schema.JourneyEvent:
    return schema.JourneyEvent(key=key, journey="lead", entity_id="L1", step="received", at=at)


def a_touch(key: str) -> schema.Touch:
    return schema.Touch(key=key, workflow_id=key.split(":", 1)[0], journey="lead",
                        step="assigned", message_class="staff", recipient_kind="staff",
                        recipient_id="rep-a", template="assigned", status="pending",
                        attempts=0, created_at=NOW, updated_at=NOW)


# -- schema, times, money, unit of work ------------------------------------------------


def test_the_migrations_create_every_table_of_the_schema(store: Store) -> None:
    inspector = inspect(store.engine)
    created = set(inspector.get_table_names()) - {"alembic_version"}
    assert created == set(schema.Base.metadata.tables)
    for name, table in schema.Base.metadata.tables.items():
        columns = {column["name"] for column in inspector.get_columns(name)}
        assert columns == set(table.columns.keys()), name


def _indexes(store: Store) -> dict[str, set[str]]:
    inspector = inspect(store.engine)
    # Unique constraints, which PostgreSQL reports as indexes too, are not counted.
    return {name: {index["name"] for index in inspector.get_indexes(name)
                   if not index.get("duplicates_constraint")}
            for name in schema.Base.metadata.tables}


def test_the_migrations_create_exactly_the_schema_s_indexes(store: Store) -> None:
    declared = {name: {index.name for index in table.indexes}
                for name, table in schema.Base.metadata.tables.items()}
    assert _indexes(store) == declared
    assert "ix_orders_customer_at_amount" in declared["orders"]
    assert "ix_customers_tier" not in declared["customers"]


def test_the_rfm_index_migration_goes_down_and_up_again(store: Store) -> None:
    from alembic import command
    from alembic.config import Config

    from activities.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = store.engine.url.render_as_string(hide_password=False)
    migrated = _indexes(store)
    command.downgrade(config, "0005")  # through 0007 and 0006
    store.engine.dispose()
    down = _indexes(store)
    assert {"ix_orders_customer_at", "ix_orders_at"} <= down["orders"]
    assert "ix_customers_tier" in down["customers"]
    assert "ix_orders_customer_at_amount" not in down["orders"]
    command.upgrade(config, "head")
    store.engine.dispose()
    assert _indexes(store) == migrated


def test_a_time_written_in_any_offset_reads_back_in_utc(store: Store) -> None:
    at_ten_in_shanghai = datetime(2026, 1, 5, 10, 0, tzinfo=CST)
    with store.unit_of_work() as session:
        session.add(an_event(at=at_ten_in_shanghai))
    with store.unit_of_work() as session:
        event = session.scalar(select(schema.JourneyEvent))
        # Compared in SQL against the same instant in UTC.
        found = session.scalar(
            select(schema.JourneyEvent.key).where(
                schema.JourneyEvent.at == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
            )
        )
    assert event is not None
    assert event.at == at_ten_in_shanghai
    assert event.at.utcoffset() == timedelta(0)
    assert event.at.tzinfo == UTC
    assert event.at.hour == 2
    assert found == "lead-L1:received"


def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises((ValueError, StatementError), match="naive datetime"):
        with store.unit_of_work() as session:
            session.add(an_event(at=datetime(2026, 1, 5, 10, 0)))
            session.flush()
    assert count(store, schema.JourneyEvent) == 0


def test_an_amount_survives_the_store_to_the_fen(store: Store) -> None:
    with store.unit_of_work() as session:
        session.add(schema.Opportunity(id="opp-1", name="ERP for ACME", stage="needs_analysis",
                                       amount_minor=to_minor(Decimal("999.99"), "CNY"),
                                       currency="CNY", created_at=NOW))
    [opportunity] = rows(store, schema.Opportunity)
    assert opportunity.amount_minor == 99999
    amount = from_minor(opportunity.amount_minor, opportunity.currency)
    assert amount == Decimal("999.99")
    assert str(amount) == "999.99"


def test_a_unit_of_work_that_fails_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.unit_of_work() as session:
            session.add(an_event())
            session.flush()
            raise RuntimeError("the activity failed half-way")
    assert count(store, schema.JourneyEvent) == 0


def test_a_unit_of_work_that_completes_is_committed(store: Store) -> None:
    with store.unit_of_work() as session:
        session.add(an_event())
    assert [e.key for e in rows(store, schema.JourneyEvent)] == ["lead-L1:received"]


def test_a_savepoint_rolls_back_with_its_unit_of_work(store: Store) -> None:
    # A touch is recorded in a savepoint after reads only; on SQLite that
    # savepoint must not commit on its own.
    with pytest.raises(RuntimeError):
        with store.unit_of_work() as session:
            session.scalar(select(schema.Touch).where(schema.Touch.key == "lead-L1:assigned:1"))
            with session.begin_nested():
                session.add(a_touch("lead-L1:assigned:1"))
            session.add(an_event())
            session.flush()
            raise RuntimeError("the activity failed after recording the touch")
    assert count(store, schema.Touch) == 0
    assert count(store, schema.JourneyEvent) == 0


def test_a_touch_key_is_recorded_once(store: Store) -> None:
    with store.unit_of_work() as session:
        session.add(a_touch("lead-L1:assigned:1"))
    with pytest.raises(IntegrityError):
        with store.unit_of_work() as session:
            session.add(a_touch("lead-L1:assigned:1"))
    assert count(store, schema.Touch) == 1


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    assert SQLITE_BUSY_TIMEOUT_MS == 10_000


# -- lead activities -------------------------------------------------------------------


@pytest.fixture
def staffed(store: Store) -> Store:
    seed_staff(store)
    return store


@pytest.fixture
def leads(staffed: Store) -> LeadActivities:
    return LeadActivities(store=staffed, policy=LeadPolicy())


def a_lead(lead_id: str, n: int, **overrides: Any) -> LeadInput:
    """A lead whose contact details are its own, unless overridden."""
    values: dict[str, Any] = {
        "lead_id": lead_id,
        "name": "张伟",
        "phone": f"139 {n:04d} {n:04d}",
        "email": f"{lead_id.lower()}@example.com",
        "company": f"{lead_id} Trading",
        "region": "east",
        "product_line": "erp",
        "source": "web_form",
        "need": "need an ERP for 200 staff",
    }
    values.update(overrides)
    return LeadInput.model_validate(values)


def intake(leads: LeadActivities, lead: LeadInput, now: datetime = NOW) -> IntakeResult:
    return leads.intake_lead(
        IntakeRequest(lead=lead, workflow_id=f"lead-{lead.lead_id}", now=now)
    )


def assign(leads: LeadActivities, lead_id: str, now: datetime = NOW, n: int = 1) -> Any:
    return leads.assign_lead(AssignRequest(lead_id=lead_id, workflow_id=f"lead-{lead_id}",
                                           now=now, first_touch=timedelta(hours=24), n=n))


def test_a_new_lead_is_recorded_with_its_score(leads: LeadActivities, staffed: Store) -> None:
    result = intake(leads, a_lead("L1", 1, phone="138 0013 8000", email="Zhang@Example.COM"))
    assert result.lead_id == "L1" and result.duplicate_of is None
    [lead] = rows(staffed, schema.Lead)
    assert (lead.phone, lead.email, lead.company_key) == (
        "+8613800138000", "zhang@example.com", "l1trading")
    assert lead.stage == "new"
    assert lead.score == result.score > 0
    assert [e.step for e in rows(staffed, schema.JourneyEvent, entity_id="L1")] == ["received"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"phone": "138 0013 8000"}, {"phone": "+86 138-0013-8000"}),
        ({"email": "Zhang.Wei@Example.com"}, {"email": "zhang.wei@example.COM"}),
        ({"company": "ACME Co., Ltd."}, {"company": "acme"}),
    ],
    ids=["phone", "email", "company"],
)
def test_the_same_person_twice_is_a_duplicate_of_the_open_lead(
    leads: LeadActivities, staffed: Store, first: dict[str, str], second: dict[str, str]
) -> None:
    intake(leads, a_lead("L1", 1, **first))
    result = intake(leads, a_lead("L2", 2, **second), now=NOW + HOUR)
    assert result.duplicate_of == "L1"
    [duplicate] = rows(staffed, schema.Lead, id="L2")
    assert (duplicate.stage, duplicate.merged_into) == ("merged", "L1")
    assert duplicate.closed_at == NOW + HOUR
    assert {e.step for e in rows(staffed, schema.JourneyEvent, entity_id="L2")} == {
        "received", "merged"}


def test_a_discarded_lead_does_not_swallow_a_new_one(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1, phone="138 0013 8000"))
    leads.change_lead_stage(StageChange(lead_id="L1", workflow_id="lead-L1",
                                        stage=LeadStage.discarded, now=NOW, step="discarded",
                                        reason="wrong number"))
    result = intake(leads, a_lead("L2", 2, phone="+86 138 0013 8000"), now=NOW + HOUR)
    assert result.duplicate_of is None
    assert rows(staffed, schema.Lead, id="L2")[0].stage == "new"


def test_a_lead_with_an_invalid_phone_is_refused_for_good(
    leads: LeadActivities, staffed: Store
) -> None:
    with pytest.raises(ApplicationError) as refused:
        intake(leads, a_lead("L1", 1, phone="12345"))
    assert refused.value.non_retryable is True
    assert refused.value.type == "InvalidLead"
    assert "'12345'" in refused.value.message
    assert count(staffed, schema.Lead) == 0
    assert count(staffed, schema.JourneyEvent) == 0


def test_intake_twice_records_the_lead_once(leads: LeadActivities, staffed: Store) -> None:
    lead = a_lead("L1", 1)
    first = intake(leads, lead)
    again = intake(leads, lead)
    assert again == first
    assert count(staffed, schema.Lead) == 1
    assert len(rows(staffed, schema.JourneyEvent, entity_id="L1")) == 1


def test_a_lead_goes_to_the_least_loaded_rep_with_a_first_touch_task(
    leads: LeadActivities, staffed: Store
) -> None:
    for n, lead_id in enumerate(["L1", "L2", "L3"], start=1):
        intake(leads, a_lead(lead_id, n))
    # All three reps are free: the most senior (rep-a) first, then rep-b.
    assert assign(leads, "L1").owner_id == "rep-a"
    assert assign(leads, "L2").owner_id == "rep-b"

    result = assign(leads, "L3")

    assert result.owner_id == "rep-c"
    assert result.due_at == NOW + timedelta(hours=24)
    [task] = rows(staffed, schema.Task, entity_id="L3")
    assert (task.key, task.kind, task.assignee_id, task.status) == (
        "lead-L3:first_touch:1", "first_touch", "rep-c", "open")
    assert task.due_at == NOW + timedelta(hours=24)
    [event] = rows(staffed, schema.JourneyEvent, key="lead-L3:assign:1")
    assert event.step == "assigned"
    # the answer is kept with the step, for a retry to give the same one again
    assert event.detail == {"owner_id": "rep-c", "reason": "intake",
                            "result": result.model_dump(mode="json")}
    lead = rows(staffed, schema.Lead, id="L3")[0]
    assert (lead.stage, lead.owner_id, lead.assigned_at) == ("assigned", "rep-c", NOW)


def test_a_retried_assignment_keeps_its_owner_and_its_one_task(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1))
    first = assign(leads, "L1")
    # Meanwhile rep-a takes more leads; the retry must not move L1.
    for n, lead_id in enumerate(["L2", "L3"], start=2):
        intake(leads, a_lead(lead_id, n))
        assign(leads, lead_id)

    again = assign(leads, "L1", now=NOW + timedelta(minutes=1))

    assert again.owner_id == first.owner_id == "rep-a"
    assert again.due_at == first.due_at
    assert len(rows(staffed, schema.Task, entity_id="L1")) == 1
    assert len(rows(staffed, schema.JourneyEvent, key="lead-L1:assign:1")) == 1


def contact(leads: LeadActivities, *, at: datetime, now: datetime, n: int) -> Any:
    return leads.record_contact(
        ContactRequest(lead_id="L1", workflow_id="lead-L1", owner_id="rep-a", channel="phone",
                       note="called, wants a demo", at=at, now=now, assigned_at=NOW,
                       follow_up=timedelta(days=3), n=n)
    )


def test_a_contact_before_the_assignment_is_rejected(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1))
    assign(leads, "L1")

    before = contact(leads, at=NOW - HOUR, now=NOW + 5 * HOUR, n=1)
    in_future = contact(leads, at=NOW + 6 * HOUR, now=NOW + 5 * HOUR, n=2)

    assert before.accepted is False and "not between" in (before.reason or "")
    assert in_future.accepted is False
    assert count(staffed, schema.Interaction) == 0
    assert [t.kind for t in rows(staffed, schema.Task, entity_id="L1")] == ["first_touch"]
    assert rows(staffed, schema.Lead, id="L1")[0].stage == "assigned"


def test_a_contact_is_recorded_and_the_follow_up_falls_due_three_days_later(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1))
    assign(leads, "L1")
    called_at = NOW + 2 * HOUR

    decision = contact(leads, at=called_at, now=NOW + 5 * HOUR, n=1)

    assert decision.accepted is True
    assert decision.due_at == called_at + timedelta(days=3)
    [interaction] = rows(staffed, schema.Interaction)
    assert (interaction.lead_id, interaction.staff_id, interaction.at) == ("L1", "rep-a",
                                                                          called_at)
    tasks = {t.kind: t for t in rows(staffed, schema.Task, entity_id="L1")}
    assert tasks["first_touch"].status == "done"
    assert tasks["follow_up"].status == "open"
    assert tasks["follow_up"].due_at == called_at + timedelta(days=3)
    lead = rows(staffed, schema.Lead, id="L1")[0]
    assert (lead.stage, lead.first_contact_at) == ("following_up", called_at)
    # The same contact again (a retried activity) changes nothing.
    assert contact(leads, at=called_at, now=NOW + 5 * HOUR, n=1) == decision
    assert count(staffed, schema.Interaction) == 1


# -- the send path ---------------------------------------------------------------------


class RecordingDeliverer(Deliverer):
    """A fake channel: keeps what it was given, and can refuse the first few.
    With `keyed`, its receiver drops repeats by the touch key."""

    def __init__(self, *, refuse: int = 0, keyed: bool = False) -> None:
        self.delivered: list[Message] = []
        self.refuse = refuse
        self.keyed = keyed

    def drops_repeats(self, channel: str) -> bool:
        return self.keyed

    def deliver(self, message: Message) -> None:
        if self.refuse:
            self.refuse -= 1
            raise DeliveryFailed(f"channel {message.channel}: gateway timed out")
        self.delivered.append(message)


class CrashOnce:
    """An after-delivery hook: the worker dies once between delivery and recording it."""

    def __init__(self) -> None:
        self.crashed = False

    def __call__(self, request: SendRequest) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("worker lost between delivery and recording")


def messaging(store: Store, deliverer: Deliverer, *, templates: Path = TEMPLATES,
              after_delivery: Any = None) -> MessagingActivities:
    return MessagingActivities(
        store=store,
        renderer=TemplateRenderer(templates),
        deliverer=deliverer,
        policy=MessagingPolicy(quiet_hours=QuietHours(enabled=False)),
        after_delivery=after_delivery,
    )


@pytest.fixture
def assigned_lead(leads: LeadActivities) -> str:
    intake(leads, a_lead("L1", 1))
    assign(leads, "L1")
    return "L1"


def to_owner(template: str = "assigned", key: str = "lead-L1:assigned:1") -> SendRequest:
    return SendRequest(key=key, journey="lead", step="assigned", message_class=MessageClass.staff,
                       recipient=Recipient(kind="staff", id="rep-a"), template=template,
                       entity_kind="lead", entity_id="L1", facts={"reason": "intake"}, now=NOW)


def touch(store: Store, key: str = "lead-L1:assigned:1") -> schema.Touch:
    [found] = rows(store, schema.Touch, key=key)
    return found


def test_a_staff_message_is_delivered_once(staffed: Store, assigned_lead: str) -> None:
    channel = RecordingDeliverer()
    send = messaging(staffed, channel).send_message

    first = send(to_owner())
    again = send(to_owner())

    assert (first.status, first.channel) == ("sent", "chat")
    assert again.status == "sent"
    [message] = channel.delivered
    assert (message.to, message.key) == ("rep-a", "lead-L1:assigned:1")
    assert "L1" in message.body and message.title.startswith("新线索分配")
    recorded = touch(staffed)
    assert (recorded.status, recorded.attempts, recorded.sent_at) == ("sent", 1, NOW)


def test_a_lead_who_opted_out_of_all_email_gets_none(staffed: Store, assigned_lead: str) -> None:
    with staffed.unit_of_work() as session:
        session.add(schema.Consent(subject_kind="lead", subject_id="L1", channel="email",
                                   scope="all", at=NOW - HOUR))
    channel = RecordingDeliverer()
    welcome = SendRequest(key="lead-L1:welcome:1", journey="lead", step="welcome",
                          message_class=MessageClass.reminder,
                          recipient=Recipient(kind="lead", id="L1"), template="welcome",
                          entity_kind="lead", entity_id="L1", now=NOW)

    outcome = messaging(staffed, channel).send_message(welcome)

    assert outcome.status == "suppressed"
    assert outcome.reason == "opted out of all messages on email"
    assert channel.delivered == []
    recorded = touch(staffed, "lead-L1:welcome:1")
    assert recorded.status == "suppressed"
    assert recorded.reason == "opted out of all messages on email"


@pytest.fixture
def broken_templates(tmp_path: Path) -> Path:
    (tmp_path / "lead").mkdir()
    (tmp_path / "lead" / "broken.zh-CN.j2").write_text("{{ recipient.name }}: {{ owner_nam }}")
    return tmp_path


def test_a_template_with_an_undefined_variable_is_a_non_retryable_error(
    staffed: Store, assigned_lead: str, broken_templates: Path
) -> None:
    channel = RecordingDeliverer()
    send = messaging(staffed, channel, templates=broken_templates).send_message

    with pytest.raises(ApplicationError) as failed:
        send(to_owner(template="broken"))

    assert failed.value.non_retryable is True
    assert failed.value.type == "TemplateError"
    assert "lead/broken.zh-CN.j2" in failed.value.message
    assert "'owner_nam' is undefined" in failed.value.message
    with pytest.raises(ApplicationError) as again:
        send(to_owner(template="broken"))
    assert again.value.non_retryable is True
    assert channel.delivered == []


def test_a_touch_whose_template_fails_is_recorded_as_failed(
    staffed: Store, assigned_lead: str, broken_templates: Path
) -> None:
    send = messaging(staffed, RecordingDeliverer(), templates=broken_templates).send_message

    with pytest.raises(ApplicationError):
        send(to_owner(template="broken"))

    recorded = rows(staffed, schema.Touch, key="lead-L1:assigned:1")
    assert [t.status for t in recorded] == ["failed"]
    assert "owner_nam" in (recorded[0].reason or "")


def test_a_channel_that_fails_leaves_the_touch_pending_for_a_retry(
    staffed: Store, assigned_lead: str
) -> None:
    channel = RecordingDeliverer(refuse=1)
    send = messaging(staffed, channel).send_message

    with pytest.raises(ApplicationError) as failed:
        send(to_owner())

    assert failed.value.non_retryable is False
    assert "gateway timed out" in failed.value.message
    recorded = touch(staffed)
    assert (recorded.status, recorded.reason) == ("pending", "channel chat: gateway timed out")

    assert send(to_owner()).status == "sent"
    assert len(channel.delivered) == 1
    recorded = touch(staffed)
    assert (recorded.status, recorded.attempts) == ("sent", 2)


def test_a_crash_after_delivery_on_a_channel_without_keys_is_raised_not_resent(
    staffed: Store, assigned_lead: str
) -> None:
    channel = RecordingDeliverer()
    send = messaging(staffed, channel, after_delivery=CrashOnce()).send_message

    with pytest.raises(RuntimeError):
        send(to_owner())
    assert touch(staffed).status == "sending"

    outcome = send(to_owner())
    again = send(to_owner())

    assert outcome.status == again.status == "unconfirmed"
    assert len(channel.delivered) == 1
    recorded = touch(staffed)
    assert recorded.status == "unconfirmed" and recorded.sent_at is None
    assert (recorded.reason or "").startswith("unconfirmed")
    [check] = rows(staffed, schema.Task, kind="delivery_check")
    assert (check.status, check.entity_id, check.assignee_id) == ("open", "L1", "mgr-east")


def test_a_crash_after_delivery_on_a_keyed_channel_sends_again_under_the_same_key(
    staffed: Store, assigned_lead: str
) -> None:
    channel = RecordingDeliverer(keyed=True)
    send = messaging(staffed, channel, after_delivery=CrashOnce()).send_message

    with pytest.raises(RuntimeError):
        send(to_owner())

    assert send(to_owner()).status == "sent"
    assert [m.key for m in channel.delivered] == ["lead-L1:assigned:1"] * 2
    assert channel.delivered[0] == channel.delivered[1]
    recorded = touch(staffed)
    assert (recorded.status, recorded.attempts, recorded.reason) == ("sent", 2, None)


def test_concurrent_intakes_of_the_same_person_merge(store: Store) -> None:
    """Two intakes with the same phone at the same moment: one of them is a duplicate."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from activities.leads import LeadActivities
    from domain.leads import IntakeRequest, LeadInput
    from domain.policy import LeadPolicy

    leads = LeadActivities(store=store, policy=LeadPolicy())
    now = datetime.now(UTC)

    def intake(n: int) -> object:
        return leads.intake_lead(IntakeRequest(
            lead=LeadInput(lead_id=f"race-{n}", name="Wu", phone="+8613800001111",
                           region="east", product_line="erp", source="ads"),
            workflow_id=f"lead-race-{n}", now=now))

    for _ in range(5):
        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.map(intake, (0, 1))
        duplicates = [r.duplicate_of for r in (first, second)]  # type: ignore[attr-defined]
        assert duplicates.count(None) == 1, duplicates
        with store.unit_of_work() as session:
            from sqlalchemy import delete

            session.execute(delete(schema.JourneyEvent))
            session.execute(delete(schema.Lead).where(schema.Lead.merged_into.is_not(None)))
            session.execute(delete(schema.Lead))
