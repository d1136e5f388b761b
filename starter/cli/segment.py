"""`crm segment`: define tag rules (one, or a policy file of them), compute
their members now as the daily schedule does, and show a segment's size and
who entered and left it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from starter.cli.common import CliError, console, load_settings, open_store, reports_errors, say

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
segment_app = typer.Typer(no_args_is_help=True)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not JSON: {exc}") from exc


def _define(definitions: list[Any]) -> None:
    from activities.segments import define_segment
    from domain.segments import SegmentPolicy

    settings = load_settings()
    policy = settings.policy_for("segment", SegmentPolicy)
    with open_store(settings) as store:
        for definition in definitions:
            new = define_segment(store, policy, definition, now=datetime.now(UTC))
            say(f"segment {definition.name} {'defined' if new else 'redefined'}")


@segment_app.command("define")
@reports_errors
def define(
    name: Annotated[str, typer.Argument(help="The segment's name (its tag).")],
    rule: Annotated[str, typer.Option(help='The rule as JSON, e.g. \'{"all": [{"orders": '
                                           '{"category": "母婴", "within_days": 30, '
                                           '"min_count": 3}}, {"follows": {"category": '
                                           '"美妆"}}]}\'.')],
    description: Annotated[str, typer.Option(help="What the segment is for.")] = "",
) -> None:
    """Define (or redefine) a segment. A rule naming an unknown field, category,
    tier or channel is refused with where and why, and nothing is written."""
    from domain.segments import RuleError, SegmentPolicy, parse_definitions

    data = {"segments": [{"name": name, "rule": _json(rule, "--rule"),
                          "description": description}]}
    try:
        [definition] = parse_definitions(
            data, load_settings().policy_for("segment", SegmentPolicy))
    except RuleError as exc:
        raise CliError(f"refused: {exc}") from exc
    _define([definition])


@segment_app.command("load")
@reports_errors
def load(
    file: Annotated[Path, typer.Argument(help='A policy file: {"segments": [{"name": ..., '
                                              '"rule": {...}, "description": ...}, ...]}.')],
) -> None:
    """Define every segment of a policy file; the whole file is checked first and
    a bad rule refuses the file, naming the segment and why."""
    from domain.segments import RuleError, SegmentPolicy, parse_definitions

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc}") from exc
    try:
        definitions = parse_definitions(_json(text, str(file)),
                                        load_settings().policy_for("segment", SegmentPolicy))
    except RuleError as exc:
        raise CliError(f"refused: {exc}") from exc
    _define(definitions)


@segment_app.command("refresh")
@reports_errors
def refresh(
    names: Annotated[list[str] | None, typer.Argument(help="Segments (default: all).")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Recompute every customer, not only those whose facts changed "
                       "or whose windows slid since the last refresh.")] = False,
) -> None:
    """Compute the members now, as the daily schedule does, recording who
    entered and who left."""
    from rich.table import Table

    from activities.segments import refresh_segment, segment_names
    from domain.segments import RuleError, SegmentPolicy

    settings = load_settings()
    policy = settings.policy_for("segment", SegmentPolicy)
    table = Table(title="segments refreshed")
    for column in ("segment", "members", "entered", "left", "refresh", "seconds"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    now = datetime.now(UTC)
    with open_store(settings) as store:
        for name in names or segment_names(store):
            try:
                done = refresh_segment(store, policy, name, now=now, full=full)
            except RuleError as exc:
                raise CliError(str(exc)) from exc
            table.add_row(name, str(done.size), str(done.entered), str(done.left), done.mode,
                          f"{done.seconds:.3f}")
    console().print(table)


@segment_app.command("show")
@reports_errors
def show(
    name: Annotated[str | None, typer.Argument(help="A segment (default: list them all).")]
    = None,
    days: Annotated[int, typer.Option(min=1, help="Count entries and exits over these "
                                                  "last days.")] = 30,
    recent: Annotated[int, typer.Option(min=0, help="List this many latest changes.")] = 20,
) -> None:
    """A segment's rule, size, entries and exits over the last days and its
    latest changes; without a name, every segment's size."""
    from rich.table import Table

    from activities.segments import segment_names, show_segment
    from domain.segments import RuleError

    settings = load_settings()
    now = datetime.now(UTC)
    with open_store(settings) as store:
        try:
            views = [show_segment(store, n, now=now, days=days, recent=recent)
                     for n in ([name] if name else segment_names(store))]
        except RuleError as exc:
            raise CliError(str(exc)) from exc
    if name is None:
        table = Table(title="segments")
        for column in ("segment", "members", f"entered ({days} d)", f"left ({days} d)",
                       "refreshed"):
            table.add_column(column)
        for v in views:
            table.add_row(v.name, str(v.size), str(v.entered), str(v.left),
                          v.refreshed_at.isoformat() if v.refreshed_at else "never")
        console().print(table)
        return
    [v] = views
    summary = Table(title=f"segment {v.name}", show_header=False)
    summary.add_row("description", v.description or "—")
    summary.add_row("rule", json.dumps(v.rule, ensure_ascii=False))
    summary.add_row("members", str(v.size))
    summary.add_row("refreshed", v.refreshed_at.isoformat() if v.refreshed_at else "never")
    summary.add_row(f"entered in {days} days", str(v.entered))
    summary.add_row(f"left in {days} days", str(v.left))
    console().print(summary)
    if v.recent:
        changes = Table(title="latest changes")
        for column in ("at", "customer", "change"):
            changes.add_column(column)
        for at, customer, change in v.recent:
            changes.add_row(at.isoformat(), customer, change)
        console().print(changes)
