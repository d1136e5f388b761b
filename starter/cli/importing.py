"""`crm import`: staff, customers and leads from CSV files, with a summary of
what was imported, what was a duplicate and which rows were bad (the work
itself is `starter.imports`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from starter.cli.common import (
    CliError,
    console,
    load_settings,
    open_store,
    reports_errors,
    say,
    unreachable,
    warn,
)
from starter.cli.journey import run_temporal

if TYPE_CHECKING:
    from domain.leads import LeadInput
    from domain.settings import Settings
    from starter.imports import ImportReport, Outcome, Row, Tick

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
import_app = typer.Typer(no_args_is_help=True)

ImportFile = Annotated[
    Path,
    typer.Argument(
        help="A CSV file: a header row of field names, one record a row; lists "
        "(regions, product_lines) separated by ';'.",
        dir_okay=False,
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing.")]


@contextmanager
def _progress(what: str, total: int) -> Iterator[Tick]:
    """A progress bar on a terminal's stderr (none in a pipe, so output stays clean)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    out = console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
    ) as progress:
        task = progress.add_task(what, total=total)
        yield lambda _outcome: progress.advance(task)


def _read(path: Path, kind: str) -> list[Row]:
    from starter import imports

    try:
        return imports.read_rows(path, kind)
    except imports.ImportFileError as exc:
        raise CliError(str(exc)) from exc


def _lines(outcomes: list[Outcome], most: int = 12) -> str:
    lines = [str(o.line) for o in outcomes[:most]]
    if len(outcomes) > most:
        lines.append(f"… {len(outcomes) - most} more")
    return ", ".join(lines) or "-"


def _report(path: Path, kind: str, report: ImportReport, done_label: str) -> None:
    """Duplicates on stdout, bad rows on stderr (each with its line), then the summary;
    exit 1 if every row was bad."""
    from rich import box
    from rich.table import Table

    from starter.imports import Status

    for outcome in report.of(Status.duplicate):
        say(f"line {outcome.line}: {outcome.entity_id}: skipped, {outcome.detail}")
    for outcome in report.of(Status.bad):
        who = f" ({outcome.entity_id})" if outcome.entity_id else ""
        warn(f"{path.name} line {outcome.line}{who}: bad row skipped: {outcome.detail}")
    done = report.of(Status.imported) + report.of(Status.valid)
    done.sort(key=lambda o: o.line)
    table = Table(title=f"import {kind} from {path.name}", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_column("lines", overflow="fold")
    table.add_row(done_label, str(len(done)), _lines(done))
    table.add_row(
        "duplicates", str(len(report.of(Status.duplicate))), _lines(report.of(Status.duplicate))
    )
    table.add_row("bad rows", str(len(report.of(Status.bad))), _lines(report.of(Status.bad)))
    console().print(table)
    if report.exit_code:
        raise CliError(f"every row of {path} was bad: nothing imported")


def _import_into_store(path: Path, kind: str, dry_run: bool) -> None:
    from starter import imports

    settings = load_settings()
    rows = _read(path, kind)
    if not rows:
        say(f"{path} has no rows: nothing to import")
        return
    importer = imports.import_staff if kind == "staff" else imports.import_customers
    with open_store(settings) as store, _progress(f"importing {kind}", len(rows)) as tick:
        report = importer(store, rows, now=datetime.now(UTC), dry_run=dry_run, tick=tick)
    _report(path, kind, report, "would import" if dry_run else "imported")
    if dry_run:
        say("dry run: nothing was written", style="dim")


@import_app.command("staff")
@reports_errors
def import_staff(file: ImportFile, dry_run: DryRun = False) -> None:
    """Import staff (columns: StaffMember's fields); managers go before their reports.
    A staff id already in the store is a duplicate (`crm staff add` changes one)."""
    _import_into_store(file, "staff", dry_run)


@import_app.command("customers")
@reports_errors
def import_customers(file: ImportFile, dry_run: DryRun = False) -> None:
    """Import customers (columns: id, name, locale, timezone, phone, email, company,
    owner_id); one with the id, phone, e-mail or company of a known customer is a
    duplicate of that customer."""
    _import_into_store(file, "customers", dry_run)


async def _start_leads(
    settings: Settings,
    good: list[tuple[Row, LeadInput]],
    report: ImportReport,
    tick: Tick,
) -> None | CliError:
    from starter import imports
    from starter.client import Journeys, connect

    try:
        client = await connect(settings)
    except RuntimeError as exc:  # the SDK's connect failure
        return CliError(f"{unreachable(settings, exc)}\nno lead journey was started")
    await imports.start_lead_journeys(
        Journeys(client, task_queue=settings.task_queue, settings=settings), good, report, tick=tick
    )
    return None


@import_app.command("leads")
@reports_errors
def import_leads(
    file: ImportFile,
    start_journeys: Annotated[
        bool,
        typer.Option(
            "--start-journeys",
            help="Start a LeadJourney for each good row (its intake writes the lead). "
            "Without it the file is only checked.",
        ),
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Import leads (columns: LeadInput's fields) by starting their journeys: intake
    writes each lead and merges it into an open lead with the same contact. A lead
    id already in the store is a duplicate."""
    from starter import imports
    from starter.imports import Status

    settings = load_settings()
    rows = _read(file, "leads")
    if not rows:
        say(f"{file} has no rows: nothing to import")
        return
    starting = start_journeys and not dry_run
    with open_store(settings) as store, _progress("importing leads", len(rows)) as tick:
        report, good = imports.check_leads(store, rows, tick=tick)
        if starting:
            outcome = run_temporal(lambda: _start_leads(settings, good, report, tick))
            if isinstance(outcome, CliError):
                raise outcome
        else:
            imports.leads_not_started(good, report, tick=tick)
    if starting:
        label = "journeys started"
    elif dry_run:
        label = "would start" if start_journeys else "valid"
    else:
        label = "valid, not started"
    _report(file, "leads", report, label)
    started = len(report.of(Status.imported))
    if starting:
        say(
            f"started {started} LeadJourney(s) on task queue {settings.task_queue}; intake "
            "merges a lead into an open lead with the same phone, e-mail or company; "
            "see `crm lead status ID`",
            style="dim",
        )
    elif dry_run:
        say("dry run: nothing was written and no journey started", style="dim")
    else:
        say(
            "only checked: leads are imported by their journeys, and none was started; "
            "run again with --start-journeys to start them",
            style="dim",
        )
