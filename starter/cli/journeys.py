"""`crm journey`: the journeys the engine runs, as the registry declares them,
and each one's diagram drawn from its declaration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from starter.cli.common import CliError, console, reports_errors, say

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
journey_app = typer.Typer(no_args_is_help=True)


@journey_app.command("list")
@reports_errors
def journey_list() -> None:
    """Every journey: its workflow, its workflow ids and its command."""
    from rich import box
    from rich.table import Table

    from domain.registry import JOURNEYS

    table = Table(box=box.SIMPLE)
    for column in ("journey", "workflow", "workflow id", "command"):
        table.add_column(column)
    for entry in JOURNEYS:
        table.add_row(entry.name, entry.workflow.partition(":")[2],
                      entry.workflow_id("{id}"), f"crm {entry.cli_name}" if entry.cli_name else "")
    console().print(table)


@journey_app.command("diagram")
@reports_errors
def journey_diagram(
    name: Annotated[str | None, typer.Argument(help="The journey (`crm journey list`).")] = None,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="The whole section: diagram, timed steps in words, signals.")] = False,
    write: Annotated[Path | None, typer.Option(
        help="Rewrite every journey's section in this Markdown file (docs/journeys.md).")] = None,
) -> None:
    """Print a journey's Mermaid state diagram, drawn from its declaration."""
    from domain.registry import JOURNEYS, journey, load
    from workflows.kit.diagram import markdown as section
    from workflows.kit.diagram import mermaid

    if write is not None:
        changed = rewrite_sections(write, {e.name: section(e.name, load(e.workflow))
                                           for e in JOURNEYS})
        say(f"{write}: {changed} section(s) rewritten" if changed else f"{write}: up to date")
        return
    if name is None:
        raise CliError("name a journey (crm journey list), or give --write FILE")
    try:
        entry = journey(name)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None
    cls = load(entry.workflow)
    typer.echo(section(entry.name, cls) if markdown else mermaid(cls))


SECTION = re.compile(r"<!-- diagram (?P<name>[\w-]+)\b.*?<!-- /diagram (?P=name) -->", re.S)


def rewrite_sections(path: Path, sections: dict[str, str]) -> int:
    """Replaces each journey's section in `path`; a journey with no section yet
    is appended. Returns how many sections changed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    changed = 0
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        nonlocal changed
        name = match.group("name")
        seen.add(name)
        new = sections.get(name, match.group(0))
        changed += new != match.group(0)
        return new

    text = SECTION.sub(replace, text)
    for name, new in sections.items():
        if name not in seen:
            text = text.rstrip("\n") + f"\n\n### {name}\n\n{new}\n"
            changed += 1
    if changed:
        path.write_text(text, encoding="utf-8")
    return changed
