"""`crm batch` refuses what it cannot send before it reaches Temporal."""

from __future__ import annotations

from typer.testing import CliRunner

from starter.batch import scoped
from starter.cli import app

UNREACHABLE = {"TEMPORAL_ADDRESS": "127.0.0.1:1"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["batch", *args], env=UNREACHABLE)
    return result.exit_code, result.output


def test_a_payload_that_is_not_a_json_object_is_refused() -> None:
    code, out = run("signal", "--query", "CrmJourney = 'lead'", "--signal", "discard",
                    "--reason", "x", "--payload", "[1]")
    assert code == 1 and "--payload must be a JSON object, got list" in out
    code, out = run("signal", "--query", "CrmJourney = 'lead'", "--signal", "discard",
                    "--reason", "x", "--payload", "{oops")
    assert code == 1 and "--payload is not JSON" in out


def test_a_reason_is_required() -> None:
    code, out = run("terminate", "--query", "CrmJourney = 'lead'", "--reason", " ")
    assert code == 1 and "--reason is required" in out


def test_an_unreachable_server_is_named() -> None:
    code, out = run("status", "crm-signal-x")
    assert code == 1 and "cannot reach Temporal at 127.0.0.1:1" in out


def test_batches_touch_running_journeys_only() -> None:
    assert scoped("CrmJourney = 'lead'") == \
        "(CrmJourney = 'lead') AND ExecutionStatus = 'Running'"
    assert scoped(" ") == "ExecutionStatus = 'Running'"
