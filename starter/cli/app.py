"""The `crm` command tree: the root app with its sub-apps, in the order the
help lists them.

The root's own commands are built with it; each sub-app is declared here (or,
for a journey's, in its registry entry) by name, module and help, and its
module is imported only when one of its commands runs (`starter.cli.lazy`):
`crm --help` and `crm lead status L1` load neither the other sub-apps nor
what their modules import.
"""

from __future__ import annotations

import typer

from domain.registry import JOURNEYS
from starter.cli.codec import codec_server
from starter.cli.lazy import LazyGroup, SubApp
from starter.cli.overview import overview
from starter.cli.report import report
from starter.cli.up import up

SUB_APPS: tuple[SubApp, ...] = (
    *(SubApp(entry.cli_name, entry.cli, entry.cli_help)
      for entry in JOURNEYS if entry.cli and entry.cli_name),
    SubApp("journey", "starter.cli.journeys:journey_app",
           "The journeys: list them, draw their diagrams."),
    SubApp("batch", "starter.cli.batch:batch_app",
           "Act on many journeys at once (Temporal batch jobs)."),
    SubApp("staff", "starter.cli.staff:staff_app",
           "Staff in the CRM store: add, list, deactivate."),
    SubApp("rfm", "starter.cli.rfm:rfm_app", "RFM tiers: run the daily sweep by hand."),
    SubApp("segment", "starter.cli.segment:segment_app",
           "Segments: tag rules over the store and their members."),
    SubApp("import", "starter.cli.importing:import_app",
           "Import staff, customers or leads from a CSV file (header row: the field names; "
           "lists separated by ';')."),
    SubApp("db", "starter.cli.db:db_app", "The CRM store's schema."),
)


class CrmGroup(LazyGroup):
    sub_apps = SUB_APPS


# Tracebacks stay short and without locals: locals hold settings, whose
# database URL may carry a password.
app = typer.Typer(
    name="crm",
    help="CRM customer journeys on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=CrmGroup,
)
app.command("up")(up)
app.command("report")(report)
app.command("overview")(overview)
app.command("codec-server")(codec_server)
