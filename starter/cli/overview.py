"""`crm overview`: where every running journey stands — per journey, how many
wait in each step, how many are past their SLA deadline and how many are in
incident, counted by Temporal's visibility, each with its Temporal UI link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from starter.cli.common import CliError, console, load_settings, reports_errors, say, unreachable

UI = "http://localhost:8233"


@reports_errors
def overview(
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    html: Annotated[Path | None, typer.Option(
        help="Write the overview as an HTML page to this file.")] = None,
    ui: Annotated[str, typer.Option(help="The Temporal Web UI the links point at.")] = UI,
) -> None:
    """Every journey's running instances per step, overdue and in incident."""
    from starter.cli.journey import run_temporal
    from starter.client import connect
    from starter.overview import Overview, render_html
    from starter.overview import overview as count

    settings = load_settings()

    async def go() -> Overview | CliError:
        try:
            client = await connect(settings)
        except RuntimeError as exc:
            return CliError(unreachable(settings, exc))
        try:
            return await count(client, ui=ui)
        except Exception as exc:  # noqa: BLE001 - visibility refused the query
            return CliError(f"visibility: {exc} (are the Crm* search attributes "
                            "registered? `crm up` and compose register them)")

    view = run_temporal(go)
    if isinstance(view, CliError):
        raise view
    if html is not None:
        html.write_text(render_html(view), encoding="utf-8")
        say(f"{html}: overview of {len(view.journeys)} journeys ({view.calls} visibility calls)")
    if as_json:
        typer.echo(json.dumps(view.as_json(), ensure_ascii=False, indent=2))
        return
    if html is not None:
        return
    from rich import box
    from rich.table import Table

    out = console()
    for j in view.journeys:
        table = Table(title=f"{j.journey} ({j.workflow}): {j.running} running, "
                            f"{j.overdue} past SLA, {j.incidents} in incident",
                      box=box.SIMPLE, title_justify="left")
        table.add_column("step")
        table.add_column("running", justify="right")
        for step in j.steps:
            if step.running or not step.ends:
                table.add_row(step.step, str(step.running))
        out.print(table)
    say(f"{view.calls} visibility calls; lists in the UI: crm overview --json shows the links")
