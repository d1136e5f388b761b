"""`crm staff`: add, list and deactivate staff in the store; deactivation tells
every open journey they hold a role in to hand it on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from domain.vocabulary import STAFF_ROLES
from starter.cli.common import (
    CliError,
    console,
    load_settings,
    open_store,
    problems,
    reports_errors,
    say,
    unreachable,
    warn,
)
from starter.cli.journey import run_temporal

if TYPE_CHECKING:
    from domain.settings import Settings

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
staff_app = typer.Typer(no_args_is_help=True)

ROLES = STAFF_ROLES


@staff_app.command("add")
@reports_errors
def staff_add(
    staff_id: Annotated[str, typer.Option("--id", help="Staff id.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    group: Annotated[str | None, typer.Option(help="Support group (agents).")] = None,
    regions: Annotated[
        list[str] | None, typer.Option("--region", help="A region served (repeatable).")
    ] = None,
    product_lines: Annotated[
        list[str] | None,
        typer.Option("--product-line", help="A product line sold (repeatable)."),
    ] = None,
    manager: Annotated[str | None, typer.Option(help="Manager's staff id.")] = None,
    seniority: Annotated[int | None, typer.Option(help="Higher wins assignment ties.")] = None,
    capacity: Annotated[int | None, typer.Option(help="Most open leads at once.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail for staff messages.")] = None,
    phone: Annotated[str | None, typer.Option(help="Mobile for SMS.")] = None,
    chat: Annotated[str | None, typer.Option(help="Chat handle.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone.")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN or en.")] = None,
) -> None:
    """Add a staff member, or update the one with this id."""
    from pydantic import ValidationError

    from activities.store.staff import StaffError, StaffMember, add_staff

    settings = load_settings()
    given: dict[str, Any] = {
        "id": staff_id,
        "name": name,
        "role": role,
        "group": group,
        "regions": regions,
        "product_lines": product_lines,
        "manager_id": manager,
        "seniority": seniority,
        "capacity": capacity,
        "email": email,
        "phone": phone,
        "chat": chat,
        "timezone": timezone,
        "locale": locale,
    }
    # Options not given fall back to the model's defaults, kept in one place.
    try:
        member = StaffMember.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise CliError(f"staff {staff_id} not saved: {problems(exc)}") from exc
    with open_store(settings) as store:
        try:
            add_staff(store, member, now=datetime.now(UTC))
        except StaffError as exc:
            raise CliError(f"staff {staff_id} not saved: {exc}") from exc
    say(f"saved {member.role} {member.id} ({member.name})")
    if member.role in ("agent", "supervisor"):
        groups = sorted(set(settings.ticket_policy.groups.values())
                        | {settings.ticket_policy.default_group})
        if not member.group:
            warn(f"{member.role} {member.id} has no --group, so no ticket reaches them "
                 f"(groups: {', '.join(groups)})")
        elif member.group not in groups:
            warn(f"{member.role} {member.id}: no ticket type is routed to group "
                 f"{member.group!r} (groups: {', '.join(groups)})")


@staff_app.command("list")
@reports_errors
def staff_list(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
) -> None:
    """List staff as a table."""
    from rich import box
    from rich.table import Table

    from activities.store.staff import list_staff

    settings = load_settings()
    with open_store(settings) as store:
        members = list_staff(store, role=role)
    if not members:
        say("no staff" + (f" with role {role}" if role else ""))
        return
    # A light box so ten columns fit an 80-column terminal; ids and roles never wrap.
    table = Table(
        title="staff",
        caption="sen.: seniority (wins ties); cap.: most open leads",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for column in (
        "id",
        "name",
        "role",
        "group",
        "regions",
        "products",
        "manager",
        "sen.",
        "cap.",
        "active",
    ):
        table.add_column(
            column, overflow="fold", no_wrap=column in ("id", "role", "manager", "active")
        )
    for m in members:
        table.add_row(
            m.id,
            m.name,
            m.role,
            m.group or "-",
            ", ".join(m.regions) or "-",
            ", ".join(m.product_lines) or "-",
            m.manager_id or "-",
            str(m.seniority),
            str(m.capacity),
            "yes" if m.active else "no",
        )
    console().print(table)


async def _tell_journeys(
    settings: Settings, staff_id: str, workflow_ids: list[str]
) -> tuple[list[str], dict[str, str]] | CliError:
    """Signals each journey; one that cannot be told does not stop the others.
    (An unreachable Temporal comes back as a value, as in `with_journeys`.)"""
    from temporalio.service import RPCError

    from starter.client import Journeys, connect

    try:
        client = await connect(settings)
    except RuntimeError as exc:  # the SDK's connect failure
        return CliError(
            f"{unreachable(settings, exc)}\nthe deactivation stands, but these open "
            f"journeys were not told: {', '.join(workflow_ids)}; run "
            f"`crm staff deactivate {staff_id}` again once Temporal is up"
        )
    journeys = Journeys(client, task_queue=settings.task_queue, settings=settings)
    told: list[str] = []
    failed: dict[str, str] = {}
    for workflow_id in workflow_ids:
        try:
            await journeys.tell_staff_deactivated([workflow_id], staff_id)
        except RPCError as exc:
            failed[workflow_id] = exc.message
        else:
            told.append(workflow_id)
    return told, failed


@staff_app.command("deactivate")
@reports_errors
def staff_deactivate(
    staff_id: Annotated[str, typer.Argument(help="The staff member leaving.")],
) -> None:
    """Deactivate a staff member and tell their open journeys (leads, tickets, courses,
    contracts, exclusive customers) to hand their part on."""
    from activities.store.staff import StaffError, deactivate_staff

    settings = load_settings()
    with open_store(settings) as store:
        try:
            workflow_ids = deactivate_staff(store, staff_id, now=datetime.now(UTC))
        except StaffError as exc:
            raise CliError(str(exc)) from exc
    say(f"deactivated {staff_id} in the store")
    if not workflow_ids:
        # Nothing to signal, so Temporal is not needed (nor contacted).
        say("they hold no role in an open journey; told 0 journeys")
        return
    outcome = run_temporal(lambda: _tell_journeys(settings, staff_id, workflow_ids))
    if isinstance(outcome, CliError):
        raise outcome
    told, failed = outcome
    say(f"told {len(told)} journeys to reassign: {', '.join(told) or '-'}")
    if failed:
        # Rerunning is safe: the store change repeats and the journeys are told again.
        for workflow_id, reason in failed.items():
            warn(f"{workflow_id}: journey not told: {reason}")
        raise typer.Exit(1)
