"""`crm segment define|load|refresh|show` as a person uses them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.store import Store
from domain import schema
from tests import cli_support
from tests.cli_support import _rows, crm

store_url = cli_support.store_url

TAG = "家庭消费+美妆潜在需求"
EXAMPLE = ('{"all": [{"orders": {"category": "母婴", "within_days": 30, "min_count": 3}}, '
           '{"follows": {"category": "美妆"}}]}')


def _seed(store_url: str) -> None:
    """Mum buys baby goods three times in the last days and follows beauty;
    Dad buys them as often and follows nothing."""
    now = datetime.now(UTC)
    store = Store.from_url(store_url)
    try:
        with store.unit_of_work() as s:
            for customer in ("mum", "dad"):
                s.add(schema.Customer(id=customer, name=customer, created_at=now))
            s.flush()
            for customer in ("mum", "dad"):
                for n in range(3):
                    at = now - timedelta(days=n + 1)
                    s.add(schema.Order(id=f"{customer}-{n}", customer_id=customer,
                                       amount_minor=9900, currency="CNY", category="母婴",
                                       at=at, recorded_at=at))
            s.add(schema.CustomerInterest(customer_id="mum", category="美妆", source="app",
                                          at=now))
    finally:
        store.dispose()


def test_a_rule_with_an_unknown_category_is_refused_with_the_reason(store_url: str) -> None:
    result = crm(f"segment define {TAG} --rule '{EXAMPLE.replace('母婴', '母嬰')}'")
    assert result.exit_code == 1
    assert "refused: segment '家庭消费+美妆潜在需求': rule.all[0].orders.category: unknown " \
           "category '母嬰'" in " ".join(result.output.split())
    assert _rows(store_url, schema.Segment) == []


def test_define_load_refresh_and_show(store_url: str, tmp_path: Path) -> None:
    _seed(store_url)
    result = crm(f"segment define {TAG} --rule '{EXAMPLE}' --description 'related products'")
    assert result.exit_code == 0, result.output
    assert f"segment {TAG} defined" in result.output
    policy = tmp_path / "segments.json"
    policy.write_text(json.dumps({"segments": [
        {"name": "baby-buyers", "rule": {"orders": {"category": "母婴", "within_days": 30}}},
        {"name": "beauty-fans", "rule": {"follows": {"category": ["美妆", "beauty"]}}},
    ]}, ensure_ascii=False), encoding="utf-8")
    result = crm(f"segment load {policy}")
    assert result.exit_code == 0, result.output
    assert "segment baby-buyers defined" in result.output

    result = crm("segment refresh")
    assert result.exit_code == 0, result.output
    sizes = {s.name: s.size for s in _rows(store_url, schema.Segment)}
    assert sizes == {TAG: 1, "baby-buyers": 2, "beauty-fans": 1}
    # Again: only the customers whose facts changed since are looked at, unless --full.
    result = crm("segment refresh beauty-fans")
    assert result.exit_code == 0, result.output
    assert "incremental" in result.output
    result = crm("segment refresh --full beauty-fans")
    assert result.exit_code == 0, result.output
    assert "full" in result.output and "incremental" not in result.output

    result = crm(f"segment show {TAG}")
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert any("members │ 1" in line for line in lines), result.output
    assert any("entered in 30 days │ 1" in line for line in lines), result.output
    assert any("mum │ entered" in line for line in lines), result.output

    result = crm("segment show")
    assert result.exit_code == 0, result.output
    assert "baby-buyers" in result.output and "beauty-fans" in result.output

    result = crm("segment refresh nobody")
    assert result.exit_code == 1
    assert "no segment named 'nobody'" in result.output
