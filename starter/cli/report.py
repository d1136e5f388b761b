"""`crm report`: the KPIs of a period from the store and each journey's funnel,
as tables and, on request, an HTML page with charts (the figures themselves
are `starter.report`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from starter.cli.common import CliError, console, load_settings, open_store, reports_errors, say


@reports_errors
def report(
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 30 days ago).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD, included (default: today).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as an HTML page with charts.")
    ] = None,
) -> None:
    """The KPIs of a period from the store: conversion, first touch, collection,
    overdue, win-back, tiers, escalations, ticket SLAs and CSAT per group and
    agent, and each journey's funnel."""
    from rich import box
    from rich.table import Table

    from starter.report import (
        TICKET_COLUMNS,
        build_report,
        render_html,
        render_text,
        ticket_tables,
    )

    settings = load_settings()
    try:
        last = date.fromisoformat(end) if end else datetime.now(UTC).date()
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError as exc:
        raise CliError(f"dates are YYYY-MM-DD: {exc}") from exc
    if first > last:
        raise CliError(f"--from {first} is after --to {last}")
    with open_store(settings) as store:
        figures = build_report(store, start=first, end=last + timedelta(days=1))
    table = Table(box=box.SIMPLE, show_header=False)
    for label, value in render_text(figures):
        table.add_row(label, value)
    console().print(table)
    for journey, steps in figures.funnels.items():
        funnel = Table(title=f"{journey} funnel", box=box.SIMPLE)
        funnel.add_column("step")
        funnel.add_column("reached", justify="right")
        funnel.add_column("dropped", justify="right")
        for step in steps:
            funnel.add_row(step.step, str(step.reached), str(step.dropped or ""))
        exits = ", ".join(f"{k} {v}" for k, v in figures.exits.get(journey, {}).items())
        funnel.caption = f"completed {figures.completed.get(journey, 0)}" + \
            (f"; {exits}" if exits else "")
        console().print(funnel)
    for title, header, rows in ticket_tables(figures):
        tickets = Table(title=title, box=box.SIMPLE)
        for column in header:
            tickets.add_column(column, justify="right" if column in TICKET_COLUMNS else "left")
        for row in rows:
            tickets.add_row(*row)
        console().print(tickets)
    if html is not None:
        html.write_text(render_html(figures), encoding="utf-8")
        say(f"wrote {html}")
