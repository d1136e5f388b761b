"""Every test module runs in exactly one tier (see tests/README.md): the map in
tests/conftest.py names each module in this directory once, names no module
that is gone, and only tiers pytest knows as markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MODULE_TIERS, TIERS

HERE = Path(__file__).resolve().parent


def test_every_test_module_has_a_tier_and_every_tier_a_module() -> None:
    modules = {path.stem for path in HERE.glob("test_*.py")}
    assert sorted(modules - MODULE_TIERS.keys()) == [], "modules without a tier"
    assert sorted(MODULE_TIERS.keys() - modules) == [], "tiers for modules that are gone"
    assert set(MODULE_TIERS.values()) == set(TIERS)


def test_the_tiers_are_registered_markers(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert set(TIERS) <= registered
    assert "--strict-markers" in pytestconfig.getini("addopts")


def test_a_test_carries_its_module_s_tier_and_no_other(request: pytest.FixtureRequest) -> None:
    assert [m.name for m in request.node.iter_markers() if m.name in TIERS] == ["unit"]
