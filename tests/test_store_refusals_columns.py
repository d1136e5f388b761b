"""Writes the store itself rejects, on SQLite and PostgreSQL: refused for good
(StoreRefused) naming the column and never the value; a conflicting write
stays retryable (StoreError).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import DataError, IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.store import MAX_FAILURE_MESSAGE, Store, migrate
from domain import schema
from tests.conftest import PG_ENV, _fresh_postgres
from tests.refusals import NOW, NUL, refusal, run


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
