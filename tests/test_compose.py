"""docker-compose.yml, checked statically (no Docker engine runs the tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from domain.settings import Settings
from workflows.common import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def setting_variables() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.add(str(alias.choices[0]))
        else:
            names.add(f"CRM_{name.upper()}")
    return names


def test_every_service_the_worker_needs_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "temporal-schema", "temporal", "temporal-ui", "search-attributes",
            "migrate", "worker"} <= set(services)
    worker = services["worker"]["depends_on"]
    assert worker["migrate"]["condition"] == "service_completed_successfully"
    assert worker["search-attributes"]["condition"] == "service_completed_successfully"
    assert worker["temporal"]["condition"] == "service_healthy"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == \
        "service_completed_successfully"
    for name in ("postgres", "temporal", "worker"):
        assert "healthcheck" in services[name], name


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"\d+(\.\d+)+", tag), f"{name}: {image} is not pinned"


def test_the_worker_environment_names_every_setting(compose: dict[str, Any]) -> None:
    environment = set(compose["services"]["worker"]["environment"])
    missing = setting_variables() - environment
    assert not missing, f"settings the worker reads but compose does not set: {sorted(missing)}"
    assert compose["services"]["worker"]["environment"]["CRM_DATABASE_URL"].startswith(
        "postgresql://")


def test_every_search_attribute_is_registered_with_its_type() -> None:
    script = (ROOT / "deploy" / "register-search-attributes.sh").read_text()
    for key in SEARCH_ATTRIBUTES:
        kind = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}[key.indexed_value_type.name]
        assert f"{key.name}={kind}" in script


def test_files_the_compose_file_mounts_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert (ROOT / "Dockerfile").exists()
    temporal = compose["services"]["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert (ROOT / "deploy" / "dynamicconfig" / Path(temporal).name).exists()
