"""`crm db`: the store's schema."""

from __future__ import annotations

import typer

from starter.cli.common import CliError, load_settings, reports_errors, safe_url, say

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
db_app = typer.Typer(no_args_is_help=True)


@db_app.command("upgrade")
@reports_errors
def db_upgrade() -> None:
    """Create or upgrade the store's schema (Alembic, to head)."""
    from sqlalchemy.exc import SQLAlchemyError

    from activities.store import migrate

    settings = load_settings()
    try:
        migrate(settings.database_url)
    except SQLAlchemyError as exc:
        raise CliError(f"store {safe_url(settings.database_url)}: {exc}") from exc
    say(f"store {safe_url(settings.database_url)} is at the latest schema")
