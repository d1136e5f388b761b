"""The `crm` command tree: the root app with its sub-apps, in the order the
help lists them."""

from __future__ import annotations

import typer

from domain.registry import JOURNEYS, load
from starter.cli.batch import batch_app
from starter.cli.codec import codec_server
from starter.cli.db import db_app
from starter.cli.importing import import_app
from starter.cli.journeys import journey_app
from starter.cli.overview import overview
from starter.cli.report import report
from starter.cli.rfm import rfm_app
from starter.cli.segment import segment_app
from starter.cli.staff import staff_app
from starter.cli.up import up

# Tracebacks stay short and without locals: locals hold settings, whose
# database URL may carry a password.
app = typer.Typer(
    name="crm",
    help="CRM customer journeys on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("up")(up)
app.command("report")(report)
app.command("overview")(overview)
app.command("codec-server")(codec_server)
# Each journey's sub-app, as the registry names it.
for entry in JOURNEYS:
    if entry.cli and entry.cli_name:
        app.add_typer(load(entry.cli), name=entry.cli_name)
app.add_typer(journey_app, name="journey")
app.add_typer(batch_app, name="batch")
app.add_typer(staff_app, name="staff")
app.add_typer(rfm_app, name="rfm")
app.add_typer(segment_app, name="segment")
app.add_typer(import_app, name="import")
app.add_typer(db_app, name="db")
