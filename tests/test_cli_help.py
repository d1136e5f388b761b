"""`crm --help` and `crm GROUP --help` list what the command tree declares,
though the root imports no sub-app until one runs: every command and group
with its help, none missing and none extra; a typo still gets its "did you
mean"; and `crm --help` loads neither a sub-app's module nor Temporal,
SQLAlchemy or the domain models.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.models import DefaultPlaceholder
from typer.testing import CliRunner

from domain.registry import load
from starter.cli.app import SUB_APPS, app
from starter.cli.lazy import SubApp

ROOT = Path(__file__).resolve().parent.parent
# Wide enough that no help line wraps, so each row reads "name  help".
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
runner = CliRunner()


def shown(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.stdout


def listed(help_text: str) -> dict[str, str]:
    """The rows of the help's Commands panel: command name -> its help (a help
    keeps its own line breaks; they are joined here)."""
    rows: dict[str, str] = {}
    for line in help_text.split("─ Commands ", 1)[1].splitlines():
        row = re.match(r"│ (\S*)\s+(.*?)\s*│$", line)
        if row and row[1]:
            name = row[1]
            rows[name] = row[2]
        elif row:
            rows[name] += " " + row[2]
    return rows


def summary(help_text: str | None) -> str:
    """What a listing shows of a help text: its first paragraph, on one line."""
    return " ".join((help_text or "").split("\n\n", 1)[0].split())


def declared_commands(typer_app: typer.Typer) -> dict[str, str]:
    """Each command a Typer app registers, with the help it declares."""
    commands = {}
    for info in typer_app.registered_commands:
        assert info.callback is not None and info.name is not None
        commands[info.name] = summary(info.help or inspect.getdoc(info.callback))
    return commands


def test_the_root_lists_its_commands_then_every_sub_app_with_its_help() -> None:
    assert all(sub.help for sub in SUB_APPS)
    expected = declared_commands(app) | {sub.name: summary(sub.help) for sub in SUB_APPS}

    rows = listed(shown())

    assert list(rows) == list(expected)
    assert rows == expected


@pytest.mark.parametrize("sub", SUB_APPS, ids=[sub.name for sub in SUB_APPS])
def test_each_group_shows_its_help_and_lists_its_commands(sub: SubApp) -> None:
    text = shown(sub.name)

    assert summary(sub.help) in " ".join(text.split())
    assert listed(text) == declared_commands(load(sub.app))


def test_a_group_has_no_help_but_the_declared_one() -> None:
    """The root lists a sub-app without importing it, so the declaration is
    the one place its help is written."""
    for sub in SUB_APPS:
        assert isinstance(load(sub.app).info.help, DefaultPlaceholder), (
            f"{sub.app} has a help of its own; declare it with {sub.name!r} only")


def test_a_mistyped_group_gets_a_suggestion() -> None:
    result = runner.invoke(app, ["laed"], env=WIDE)

    assert result.exit_code == 2
    assert "Did you mean 'lead'?" in result.output


def loaded_by(*args: str) -> set[str]:
    """The modules a fresh `crm ARGS --help` process has imported."""
    script = (
        "import sys\n"
        "from starter.cli import app\n"
        "try:\n"
        f"    app([*{list(args)!r}, '--help'], prog_name='crm')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sys.modules), file=sys.stderr)\n"
    )
    process = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    return set(process.stderr.split())


HEAVY = ("sqlalchemy", "temporalio", "pydantic_settings", "domain.leads", "activities",
         "workflows")


def test_the_root_help_imports_no_sub_app_and_nothing_heavy() -> None:
    modules = loaded_by()

    assert not {sub.app.partition(":")[0] for sub in SUB_APPS} & modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY}


def test_a_group_imports_its_own_module_only() -> None:
    modules = loaded_by("lead")

    assert "starter.cli.lead" in modules
    assert not {sub.app.partition(":")[0] for sub in SUB_APPS if sub.name != "lead"} & modules
