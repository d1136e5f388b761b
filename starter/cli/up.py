"""`crm up`: a development stack in one command (store migrated, Temporal dev
server, worker), and the walkthrough it suggests once it runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from starter.cli.common import CliError, load_settings, reports_errors, safe_url, say
from starter.cli.journey import run_temporal

if TYPE_CHECKING:
    from domain.settings import Settings
    from starter.devstack import RunningServer

# The README's first lead ("Run it"), which `crm up` suggests once the stack runs.
WALKTHROUGH = (
    'staff add --id mgr-1 --name "张经理" --role manager --region east --chat mgr-1',
    'staff add --id rep-1 --name "李娜" --role rep --region east --product-line erp '
    "--manager mgr-1 --chat rep-1",
    "lead new --id L1 --name 王芳 --phone 13800138000 --email wang.fang@example.com "
    '--region east --product-line erp --source web_form --need "ERP for three plants"',
    "lead status L1",
    'lead contact L1 rep-1 --channel phone --note "demo booked"',
)


def _crm_command() -> str:
    """`crm` as this one was run (`.venv/bin/crm` from ./run.sh), so a suggested
    command can be pasted as it is."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if Path(invoked).name == "crm" else "crm"


@reports_errors
def up(
    port: Annotated[int, typer.Option(help="Temporal frontend (gRPC) port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
    http_port: Annotated[int, typer.Option(help="Temporal HTTP API port.")] = 7243,
    db_file: Annotated[
        str, typer.Option(help="The dev server's SQLite file (journeys survive restarts).")
    ] = "var/temporal.db",
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the journey worker in-process.")
    ] = True,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed staff and leads and play them, time sped up.")
    ] = False,
    time_scale: Annotated[
        float | None,
        typer.Option(help="Divide every journey duration (the demo's default: a day in 5 s)."),
    ] = None,
    codec_port: Annotated[
        int | None,
        typer.Option(help="The codec server's port, which the UI decrypts payloads through "
                     "(default: CRM_CODEC_PORT, 8234)."),
    ] = None,
) -> None:
    """Run a development stack: store migrated, Temporal dev server, worker."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from starter import devstack

    settings = load_settings()
    options = devstack.DevStackOptions(
        port=port,
        ui_port=ui_port,
        http_port=http_port,
        db_file=Path(db_file),
        worker=worker or demo,
        demo=demo,
        time_scale=time_scale,
        codec_port=settings.codec_port if codec_port is None else codec_port,
    )

    def announce(server: RunningServer, stack: Settings) -> None:
        if server.reused:
            say(f"Temporal already runs on {options.address}: reusing it")
            say(
                f"Temporal UI: that server's own (a dev server on port {options.port} serves it "
                f"at http://{devstack.HOST}:{options.port + 1000} unless told otherwise)"
            )
        else:
            say(f"Temporal dev server on {options.address} (log: {options.server_log})")
            say(f"Temporal UI: {options.ui_url}")
        say(f"store: {safe_url(stack.database_url)} (migrated); task queue: {stack.task_queue}")
        keys = "CRM_CODEC_KEYS" if stack.codec_keys else str(stack.codec_key_path)
        say(f"codec server: {server.codec_url} (keys: {keys}); payloads are encrypted in "
            "Temporal" + ("" if server.reused else ", the UI decrypts them through it"))
        if options.worker:
            say("worker: running; Ctrl-C stops it" + ("" if server.reused else ", then the server"))
        elif server.reused:
            say("worker: not started (--no-worker); nothing left to run")
        else:
            say("worker: not started (--no-worker); Ctrl-C stops the server")
        crm = _crm_command()
        say("try, from another terminal (the README's walkthrough):", style="bold")
        for command in WALKTHROUGH:
            say(f"  {crm} {command}")

    try:
        run_temporal(lambda: devstack.run_dev_stack(settings, options, announce=announce))
    except devstack.DevStackError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:  # migrating the store
        raise CliError(f"store {safe_url(settings.database_url)}: {exc}") from exc
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    say("stopped")

