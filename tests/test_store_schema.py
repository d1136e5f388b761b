"""The store itself on SQLite and PostgreSQL: migrations and indexes, times
in UTC, exact amounts, units of work and savepoints, SQLite's settings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from activities.store import SQLITE_BUSY_TIMEOUT_MS, Store, make_engine
from domain import schema
from domain.money import from_minor, to_minor
from tests.store_support import NOW, count, rows

CST = timezone(timedelta(hours=8))


def an_event(key: str = "lead-L1:received", at: datetime = NOW) -> schema.JourneyEvent:
    return schema.JourneyEvent(key=key, journey="lead", entity_id="L1", step="received", at=at)


def a_touch(key: str) -> schema.Touch:
    return schema.Touch(key=key, workflow_id=key.split(":", 1)[0], journey="lead",
                        step="assigned", message_class="staff", recipient_kind="staff",
                        recipient_id="rep-a", template="assigned", status="pending",
                        attempts=0, created_at=NOW, updated_at=NOW)


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
    # Tables a later migration adds are absent after a downgrade.
    present = set(inspector.get_table_names())
    return {name: {index["name"] for index in inspector.get_indexes(name)
                   if not index.get("duplicates_constraint")}
            for name in schema.Base.metadata.tables if name in present}


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
