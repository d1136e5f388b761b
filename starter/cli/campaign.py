"""`crm campaign`: declare campaigns, launch, pause and resume them, and see
their runs and results (conversion per arm, lift over the hold-out with its
confidence interval, revenue per customer)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from starter.cli.common import CliError, console, load_settings, open_store, reports_errors, say

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
campaign_app = typer.Typer(no_args_is_help=True)


def _refused(action: Any) -> Any:
    from domain.campaigns import CampaignError
    from domain.segments import RuleError

    try:
        return action()
    except (CampaignError, RuleError) as exc:
        raise CliError(f"refused: {exc}") from exc


@campaign_app.command("define")
@reports_errors
def define(file: Annotated[Path, typer.Argument(help="A campaign's declaration, JSON.")]) -> None:
    """Define (or redefine) a campaign; a new one is off until launched. A bad
    declaration is refused with where and why, and nothing is written."""
    from activities.campaigns import define_campaign

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read {file}: {exc}") from exc
    with open_store(load_settings()) as store:
        definition = _refused(lambda: define_campaign(store, data, now=datetime.now(UTC)))
    say(f"campaign {definition.name} defined (off until launched)")


@campaign_app.command("examples")
@reports_errors
def examples() -> None:
    """Define the two example campaigns, switched off: the coupon to customers
    with no repurchase in 90 days, and the new-customer pack (with their segments)."""
    from activities.campaigns import define_campaign
    from activities.segments import define_segment
    from domain.campaigns import EXAMPLE_CAMPAIGNS, EXAMPLE_SEGMENTS
    from domain.segments import SegmentDefinition, SegmentPolicy

    settings = load_settings()
    now = datetime.now(UTC)
    with open_store(settings) as store:
        for segment in EXAMPLE_SEGMENTS:
            define_segment(store, settings.policy_for("segment", SegmentPolicy),
                           SegmentDefinition.model_validate(segment), now=now)
        for data in EXAMPLE_CAMPAIGNS:
            definition = _refused(lambda d=data: define_campaign(store, d, now=now))
            say(f"campaign {definition.name} defined (off until launched)")


@campaign_app.command("launch")
@reports_errors
def launch(name: Annotated[str, typer.Argument(help="The campaign.")]) -> None:
    """Enter the segment's members who may enter (its re-entry policy), each in
    the hold-out or a variant, and start a run for each outside the hold-out."""
    import asyncio

    from activities.campaigns import PAUSED, campaign
    from activities.campaigns import launch as launch_campaign
    from domain.campaigns import CampaignError
    from starter.cli.common import unreachable
    from starter.client import connect

    settings = load_settings()

    def launchable() -> None:
        """Refused before Temporal is asked: an unknown or paused campaign."""
        with open_store(settings) as store, store.unit_of_work() as session:
            row, _ = campaign(session, name)
            if row.status == PAUSED:
                raise CampaignError(f"campaign {name!r} is paused: resume it to launch")

    _refused(launchable)

    async def go() -> dict[str, int] | CliError:
        try:
            client = await connect(settings)
        except RuntimeError as exc:  # the SDK's connect failure
            return CliError(unreachable(settings, exc))
        with open_store(settings) as store:
            return await launch_campaign(store, client, task_queue=settings.task_queue,
                                         name=name, now=datetime.now(UTC))

    counts = _refused(lambda: asyncio.run(go()))
    if isinstance(counts, CliError):
        raise counts
    say(f"campaign {name} launched: " + (", ".join(f"{k} {v}" for k, v in sorted(
        counts.items())) or "nobody may enter now"))


def _status(name: str, status: str) -> None:
    from activities.campaigns import set_status

    with open_store(load_settings()) as store:
        _refused(lambda: set_status(store, name, status, now=datetime.now(UTC)))
    say(f"campaign {name} {status}")


@campaign_app.command("pause")
@reports_errors
def pause(name: Annotated[str, typer.Argument(help="The campaign.")]) -> None:
    """No one enters, and the runs' next messages wait until it is resumed."""
    _status(name, "paused")


@campaign_app.command("resume")
@reports_errors
def resume(name: Annotated[str, typer.Argument(help="The campaign.")]) -> None:
    """The runs' messages go on; launch enters new members again."""
    _status(name, "active")


@campaign_app.command("status")
@reports_errors
def status(name: Annotated[str, typer.Argument(help="The campaign.")]) -> None:
    """The campaign's state and its runs per arm and outcome."""
    from rich.table import Table
    from sqlalchemy import func, select

    from activities.campaigns import campaign
    from domain import schema

    m = schema.CampaignMember
    with open_store(load_settings()) as store, store.unit_of_work() as session:
        row, definition = _refused(lambda: campaign(session, name))
        counts = session.execute(select(m.arm, m.outcome, func.count()).where(
            m.campaign == name).group_by(m.arm, m.outcome)).all()
    entry = " (and as customers enter it)" if definition.entry.value == "on_entry" else ""
    table = Table(title=f"campaign {name}: {row.status}, audience {definition.segment}{entry}, "
                        f"hold-out {definition.holdout:.0%}")
    for column in ("arm", "outcome", "runs"):
        table.add_column(column)
    for arm_name, outcome, n in sorted(counts, key=lambda r: (r[0], r[1] or "")):
        table.add_row(arm_name, outcome or "running", str(n))
    console().print(table)


@campaign_app.command("results")
@reports_errors
def results(name: Annotated[str, typer.Argument(help="The campaign.")]) -> None:
    """Conversion per arm within the attribution window, revenue per customer,
    and each variant's lift over the hold-out with its 95 % confidence interval
    (two-proportion test)."""
    from rich.table import Table

    from activities.campaigns import results as campaign_results
    from domain.campaigns import HOLDOUT, lift

    with open_store(load_settings()) as store:
        arms = _refused(lambda: campaign_results(store, name))
    holdout = next(a for a in arms if a.arm == HOLDOUT)
    table = Table(title=f"campaign {name}: results")
    for column in ("arm", "customers", "converted", "rate", "revenue / customer",
                   "lift over hold-out (95% CI)", "p"):
        table.add_column(column)
    for a in arms:
        found = lift(a, holdout) if a.arm != HOLDOUT else None
        table.add_row(a.arm, str(a.customers), str(a.converted),
                      "—" if a.rate is None else f"{a.rate:.1%}",
                      ", ".join(f"{v} {k}" for k, v in a.revenue_per_customer.items())
                      or "—",
                      "" if found is None else
                      f"{found.difference:+.1%} ({found.low:+.1%} to {found.high:+.1%})",
                      "" if found is None else f"{found.p_value:.3f}")
    console().print(table)
