"""docker-compose.yml, checked statically (no Docker engine runs the tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from domain.settings import Settings
from workflows.kit import SEARCH_ATTRIBUTES

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
        # A version, or one with its tools' versions (1.29.1-tctl-1.18.4-cli-1.5.0).
        assert repository and re.fullmatch(r"\d+(\.\d+)+(-[a-z]+-\d+(\.\d+)+)*", tag), \
            f"{name}: {image} is not pinned"


# The tags Temporal's own compose files run (temporalio/docker-compose .env, the
# same in temporalio/samples-server compose/.env); compose must say so.
TEMPORAL_TAGS = {
    "temporalio/server": "1.29.1",
    "temporalio/admin-tools": "1.29.1-tctl-1.18.4-cli-1.5.0",
    "temporalio/ui": "2.34.0",
}


def test_temporal_images_are_tags_temporal_publishes(compose: dict[str, Any]) -> None:
    used: dict[str, set[str]] = {}
    for service in compose["services"].values():
        repository, _, tag = service["image"].rpartition(":")
        if repository.startswith("temporalio/"):
            used.setdefault(repository, set()).add(tag)
    assert used == {repository: {tag} for repository, tag in TEMPORAL_TAGS.items()}
    # The admin tools are those of the server they set up.
    assert TEMPORAL_TAGS["temporalio/admin-tools"].startswith(
        TEMPORAL_TAGS["temporalio/server"] + "-")
    text = (ROOT / "docker-compose.yml").read_text()
    header = text[: text.index("\nname:")]
    assert "temporalio/docker-compose, file .env" in header
    assert "temporalio/samples-server" in header and "compose/.env" in header
    for tag in TEMPORAL_TAGS.values():
        assert tag in header, tag
    assert "http" not in header  # a public repository's file, named, not linked


def _ignored(patterns: list[str], path: str) -> bool:
    from fnmatch import fnmatch

    parts = path.split("/")
    return any(fnmatch(path, p) or fnmatch(parts[0], p) or
               (p.startswith("**/") and any(fnmatch(part, p[3:]) for part in parts))
               for p in patterns)


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for heavy in (".venv", "var", ".git", ".pytest_cache", ".ruff_cache", ".hypothesis",
                  "crm_journeys.egg-info", "domain/__pycache__/schema.cpython-312.pyc", ".env"):
        assert _ignored(patterns, heavy), heavy
    # ... but never what the Dockerfile copies.
    copied = [source for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") for source in line.split()[1:-1]]
    assert "domain" in copied and "worker.py" in copied
    for source in copied:
        assert not _ignored(patterns, source), source


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


def test_the_codec_server_serves_the_ui_with_keys_from_the_environment(
    compose: dict[str, Any]
) -> None:
    services = compose["services"]
    codec = services["codec-server"]
    assert codec["command"][:2] == ["crm", "codec-server"]
    assert codec["environment"] == services["worker"]["environment"]
    [published] = codec["ports"]
    assert published.startswith("127.0.0.1:")  # it decrypts: loopback only
    port = published.rsplit(":", 1)[1]
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"] == \
        f"http://localhost:{port}"
    # Keys come from the environment, never from the file.
    assert codec["environment"]["CRM_CODEC_KEYS"].startswith("${CRM_CODEC_KEYS:?")
