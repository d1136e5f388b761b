"""`crm rfm sweep` as a person uses it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from activities.store import Store
from domain import schema
from tests import cli_support
from tests.cli_support import ZONE, _rows, _table, crm

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url
DAY = date(2026, 6, 30)


def _at(days_before: int) -> datetime:
    local = datetime.combine(DAY - timedelta(days=days_before), time(12), ZoneInfo(ZONE))
    return local.astimezone(UTC)


# customer -> orders as (days before DAY, amount); the tier on DAY by the tier table
RFM_CUSTOMERS: dict[str, list[tuple[int, str]]] = {
    "core-1": [(10, "100")] * 5,
    "core-2": [(3, "150")] * 5,
    "potential": [(60, "100")] * 3,
    "new": [(5, "10")],
    "dormant": [(200, "100")],
    "lost": [(200, "50")],
    "regular": [(100, "100")],
    "never": [],
}


def _seed_orders(store_url: str) -> None:
    store = Store.from_url(store_url)
    try:
        with store.unit_of_work() as session:
            for customer_id, orders in RFM_CUSTOMERS.items():
                times = [_at(days) for days, _ in orders]
                session.add(
                    schema.Customer(
                        id=customer_id, name=customer_id, created_at=_at(500),
                        first_purchase_at=min(times, default=None),
                        last_purchase_at=max(times, default=None), order_count=len(orders),
                    )
                )  # fmt: skip
            session.flush()
            for customer_id, orders in RFM_CUSTOMERS.items():
                for n, (days, amount) in enumerate(orders):
                    session.add(
                        schema.Order(
                            id=f"{customer_id}-{n}", customer_id=customer_id,
                            amount_minor=int(Decimal(amount) * 100), currency="CNY",
                            category="tea", at=_at(days), recorded_at=_at(days),
                        )
                    )  # fmt: skip
    finally:
        store.dispose()


def test_rfm_sweep_prints_what_changed_and_the_tiers(store_url: str) -> None:
    _seed_orders(store_url)

    result = crm(f"rfm sweep --day {DAY.isoformat()} --full")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"RFM sweep of {DAY.isoformat()} ({ZONE})" in out
    assert "│ mode                    │ full" in out
    assert "│ tiers changed           │ 7 " in out
    assert "│ strategy changes queued │ 3 " in out  # core x2, potential
    tiers = _table(out, "customers by tier", n=7)
    assert {tier: int(cells[0]) for tier, cells in tiers.items()} == {
        "core": 2, "potential": 1, "new": 1, "dormant": 1, "lost": 1, "regular": 1, "none": 1,
    }  # fmt: skip
    assert "3 queued for the next dispatch" in out
    assert "RfmSweep workflow of the daily schedule" in out
    assert {c.id: c.tier for c in _rows(store_url, schema.Customer)}["core-2"] == "core"

    # The next day, incrementally: nothing new to queue, the old three still wait.
    nxt = crm(f"rfm sweep --day {(DAY + timedelta(days=1)).isoformat()}")
    assert nxt.exit_code == 0, nxt.output
    assert "│ mode                    │ incremental" in nxt.stdout
    assert "│ strategy changes queued │ 0 " in nxt.stdout
    assert "3 queued for the next dispatch" in nxt.stdout


def test_rfm_sweep_refuses_a_bad_day(store_url: str) -> None:
    result = crm("rfm sweep --day 30/06/2026")
    assert result.exit_code == 1
    assert "--day '30/06/2026' is not a date (YYYY-MM-DD)" in result.stderr
