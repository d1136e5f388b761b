"""`crm customer`: add and list customers in the store; report purchases and
opt-outs to their lifecycle journeys, and show where one stands, with the tier
the store holds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import (
    CliError,
    aware,
    console,
    load_settings,
    money,
    open_store,
    problems,
    reports_errors,
    say,
    warn,
    when,
)
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.lifecycle import LifecycleStatus
    from domain.settings import Settings

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
customer_app = typer.Typer(no_args_is_help=True)

CHANNELS = ("email", "sms", "chat")
# The lifecycle journey's store currency.
LIFECYCLE_CURRENCY = "CNY"


@customer_app.command("add")
@reports_errors
def customer_add(
    customer_id: Annotated[str, typer.Option("--id", help="Customer id.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone; bare numbers are read as +86.")] = None,
    company: Annotated[str | None, typer.Option(help="Company name.")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN (default) or en.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone (default: Asia/Shanghai).")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="The owning rep's staff id.")] = None,
) -> None:
    """Add a customer, or replace the one with this id (options not given: defaults)."""
    from pydantic import ValidationError

    from activities.store.customers import CustomerRecord, add_customer
    from activities.store.staff import list_staff

    settings = load_settings()
    given: dict[str, Any] = {
        "id": customer_id,
        "name": name,
        "email": email,
        "phone": phone,
        "company": company,
        "locale": locale,
        "timezone": timezone,
        "owner_id": owner,
    }
    try:
        customer = CustomerRecord.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise CliError(f"customer {customer_id} not saved: {problems(exc)}") from exc
    with open_store(settings) as store:
        # The store would refuse an unknown owner too, but as a bare foreign-key error.
        if owner is not None and owner not in {m.id for m in list_staff(store)}:
            raise CliError(f"customer {customer_id} not saved: owner {owner!r} is not staff")
        add_customer(store, customer, now=datetime.now(UTC))
    say(f"saved customer {customer.id} ({customer.name})")


@customer_app.command("list")
@reports_errors
def customer_list() -> None:
    """List customers as a table."""
    from rich import box
    from rich.table import Table

    from activities.store.customers import list_customers

    settings = load_settings()
    with open_store(settings) as store:
        customers = list_customers(store)
    if not customers:
        say("no customers")
        return
    table = Table(title="customers", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for column in ("id", "name", "email", "phone", "company", "locale", "timezone", "owner"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "locale", "owner"))
    for c in customers:
        table.add_row(
            c.id,
            c.name,
            c.email or "-",
            c.phone or "-",
            c.company or "-",
            c.locale,
            c.timezone,
            c.owner_id or "-",
        )
    console().print(table)


@customer_app.command("purchase")
@reports_errors
def customer_purchase(
    customer_id: Annotated[str, typer.Argument(help="The customer who bought.")],
    order: Annotated[str, typer.Option(help="The order id (a repeat is recorded once).")],
    amount: Annotated[str, typer.Option(help=f"The order amount in {LIFECYCLE_CURRENCY}.")],
    category: Annotated[str, typer.Option(help="The product category.")],
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
    coupon: Annotated[str | None, typer.Option(help="The coupon code redeemed.")] = None,
) -> None:
    """Report a purchase to the customer's lifecycle journey (started by the first one)."""
    from domain.lifecycle import Purchase

    settings = load_settings()
    if not order.strip():
        raise CliError("--order must name the order")
    if not category.strip():
        raise CliError("--category must name the product category")
    purchase = Purchase(
        order_id=order,
        amount=money(amount, LIFECYCLE_CURRENCY),
        category=category,
        at=aware(at, "--at"),
        coupon_code=coupon or None,
    )
    subject = Subject.customer(customer_id)
    with_journeys(
        settings, subject, lambda journeys: journeys.report_purchase(customer_id, purchase)
    )
    subject.say_sent(f"purchase {order}")


@customer_app.command("opt-out")
@reports_errors
def customer_opt_out(
    customer_id: Annotated[str, typer.Argument(help="The customer opting out.")],
    channel: Annotated[
        str | None,
        typer.Option(help=f"One of: {', '.join(CHANNELS)} (default: every channel)."),
    ] = None,
) -> None:
    """Opt a customer out of marketing messages on one channel, or on all of them."""
    settings = load_settings()
    if channel is not None and channel not in CHANNELS:
        raise CliError(f"--channel {channel!r} is not one of: {', '.join(CHANNELS)}")
    subject = Subject.customer(customer_id)
    with_journeys(settings, subject, lambda journeys: journeys.opt_out(customer_id, channel))
    where = f"on {channel}" if channel else "on every channel"
    say(f"opt-out of marketing {where} sent to {subject.workflow_id}")


def _store_tier(settings: Settings, customer_id: str) -> tuple[str | None, date | None] | None:
    """The customer's tier as the store has it, and the business day it was set.
    The daily sweep writes every tier there; the journey hears only of those
    that call for an action (core, potential). None when the store cannot say."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from domain import schema

    try:
        with open_store(settings) as store, store.unit_of_work() as session:
            row = session.execute(
                select(schema.Customer.tier, schema.Customer.tier_changed_on).where(
                    schema.Customer.id == customer_id
                )
            ).first()
    except (CliError, SQLAlchemyError, OSError) as exc:
        warn(f"the tier shown is the journey's: the store could not be read ({exc})")
        return None
    return (row[0], row[1]) if row else (None, None)


def _lifecycle_table(status: LifecycleStatus, tier_since: date | None = None) -> Table:
    tier = status.tier or "-"
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("tier", f"{tier} (since {tier_since.isoformat()})" if tier_since else tier),
        ("orders", status.orders),
        ("last purchase", when(status.last_purchase_at)),
        ("dormant from", when(status.dormant_at)),
        ("next step", when(status.next_step_at)),
        ("win-back coupons", ", ".join(status.campaign) or "-"),
        ("win-backs credited", status.credited),
        ("runs", status.runs),
    ]
    return status_table(f"customer {status.customer_id}", rows, status)


@customer_app.command("status")
@reports_errors
def customer_status(
    customer_id: Annotated[str, typer.Argument(help="The customer.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a customer's lifecycle journey stands (stage, win-back), with the
    tier from the store and the day it was set."""
    from domain.lifecycle import LifecycleStatus

    settings = load_settings()
    subject = Subject.customer(customer_id)
    status = journey_status(
        settings, subject, LifecycleStatus, lambda journeys: journeys.customer_status(customer_id)
    )
    tier, since = _store_tier(settings, customer_id) or (None, None)
    if tier:
        status = status.model_copy(update={"tier": tier})
    else:
        since = None
    if as_json:
        shown = status.model_dump(mode="json")
        shown["tier_changed_on"] = since.isoformat() if since else None
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        console().print(_lifecycle_table(status, since))


@customer_app.command("erase")
@reports_errors
def customer_erase(
    customer_id: Annotated[str, typer.Argument(help="The customer to erase.")],
    reason: Annotated[str, typer.Option(help="Why (the request it honours; kept with the "
                                        "record of the erasure).")],
    by: Annotated[str | None, typer.Option(help="Who asks (default: your login name).")] = None,
) -> None:
    """Erase a customer on request: personal fields tombstoned in the store (ids, money
    and dates kept), consent removed, their open journeys terminated; prints which
    histories still hold encrypted copies."""
    from starter.cli.erasure import erase

    erase("customer", customer_id, reason=reason, by=by)
