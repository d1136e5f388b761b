"""`crm rfm`: run the RFM sweep on the store by hand, as the daily schedule
does, and show the customers per tier."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from starter.cli.common import CliError, console, load_settings, open_store, reports_errors, say

if TYPE_CHECKING:
    from activities.store import Store

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
rfm_app = typer.Typer(no_args_is_help=True)


def _tier_counts(store: Store) -> tuple[dict[str | None, int], int]:
    """Customers per tier, and the strategy changes not yet told to their journeys."""
    from sqlalchemy import func, select

    from domain import schema

    with store.unit_of_work() as session:
        counts = dict(
            session.execute(
                select(schema.Customer.tier, func.count()).group_by(schema.Customer.tier)
            ).all()
        )
        queued = session.scalar(
            select(func.count())
            .select_from(schema.TierOutbox)
            .where(schema.TierOutbox.sent_at.is_(None))
        )
    return counts, queued or 0


@rfm_app.command("sweep")
@reports_errors
def rfm_sweep(
    day: Annotated[
        str | None,
        typer.Option(help="The business day, YYYY-MM-DD (default: today in the business zone)."),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Recompute every customer, not only those whose tier can have changed."
        ),
    ] = False,
) -> None:
    """Run the RFM sweep on the store now, as the daily schedule does; show the tiers."""
    from rich import box
    from rich.table import Table

    from activities.rfm import RfmSweeper
    from domain.lifecycle import Tier, business_day

    settings = load_settings()
    zone = settings.default_timezone
    if day is None:
        when = business_day(datetime.now(UTC), zone)
    else:
        try:
            when = date.fromisoformat(day)
        except ValueError as exc:
            raise CliError(f"--day {day!r} is not a date (YYYY-MM-DD)") from exc
    with open_store(settings) as store:
        sweeper = RfmSweeper(store=store, policy=settings.lifecycle_policy.rfm, zone=zone)
        result = sweeper.sweep(when, full=full)
        counts, queued = _tier_counts(store)

    summary = Table(title=f"RFM sweep of {when.isoformat()} ({zone})", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    summary.add_row("mode", result.mode)
    summary.add_row("tiers changed", str(result.changed))
    summary.add_row("strategy changes queued", str(result.outboxed))
    summary.add_row("seconds", f"{result.seconds:.3f}")
    tiers = Table(title="customers by tier", box=box.SIMPLE_HEAD, show_edge=False)
    tiers.add_column("tier")
    tiers.add_column("customers", justify="right")
    for tier in Tier:
        tiers.add_row(tier.value, str(counts.get(tier.value, 0)))
    tiers.add_row("none", str(counts.get(None, 0)))
    out = console()
    out.print(summary)
    out.print(tiers)
    say(
        f"{queued} queued for the next dispatch: the RfmSweep workflow of the daily schedule "
        f"(rfm-daily, {settings.rfm_schedule_hour:02d}:00 {zone}) tells them to their "
        "customers' journeys",
        style="dim",
    )
