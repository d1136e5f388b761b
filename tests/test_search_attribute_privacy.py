"""Search attributes are indexed in the clear (the payload codec never sees
them), so they carry ids and stages only: across every recorded history, no
search attribute a journey upserted holds a name, phone number or e-mail
address that the journey was given."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from workflows.kit import SEARCH_ATTRIBUTES

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
PERSONAL_FIELDS = ("name", "phone", "email", "company")


def payload_objects(node: Any) -> list[dict[str, Any]]:
    """Every JSON object carried by a payload anywhere in a history."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and "metadata" in node:
            try:
                value = json.loads(base64.b64decode(node["data"]))
            except ValueError:
                value = None
            if isinstance(value, dict):
                found.append(value)
        for child in node.values():
            found += payload_objects(child)
    elif isinstance(node, list):
        for child in node:
            found += payload_objects(child)
    return found


def personal_values(history: dict[str, Any]) -> set[str]:
    values: set[str] = set()
    for obj in payload_objects(history):
        for field in PERSONAL_FIELDS:
            value = obj.get(field)
            if isinstance(value, str) and len(value) >= 2:
                values.add(value)
                if field == "phone":
                    values.add(value.removeprefix("+86").replace(" ", ""))
    return values


def upserts(history: dict[str, Any]) -> list[dict[str, str]]:
    """Each upsert's attributes, name -> the value's JSON text."""
    return [
        {name: base64.b64decode(field.get("data", "")).decode()
         for name, field in event["upsertWorkflowSearchAttributesEventAttributes"]
         ["searchAttributes"]["indexedFields"].items()}
        for event in history["events"]
        if "upsertWorkflowSearchAttributesEventAttributes" in event
    ]


def test_the_recorded_histories_carry_personal_data_to_look_for() -> None:
    leads = [json.loads(path.read_text()) for path in HISTORIES if path.stem.startswith("lead")]
    assert leads and all(personal_values(history) for history in leads)


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_no_upserted_search_attribute_holds_personal_data(path: Path) -> None:
    history = json.loads(path.read_text())
    personal = personal_values(history)
    # The journeys' own, and the SDK's record of `workflow.patched` (patch names).
    known = {key.name for key in SEARCH_ATTRIBUTES} | {"TemporalChangeVersion"}

    for attributes in upserts(history):
        assert set(attributes) <= known
        for name, value in attributes.items():
            assert not [p for p in personal if p in value], (name, value)
