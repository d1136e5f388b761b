"""What every `crm` command shares: its settings, its errors, its output, and
parsing of the values typed on the command line.

Every command reads `Settings()` once, at its top, and hands it down (the
settings are the composition root's, never a module global), so an
environment change between two invocations (a test, a second terminal) is
always seen. Failures a person can act on print a short message on stderr and
exit with code 1; only the unexpected shows a traceback.

Nothing heavy is imported at module level: `crm --help` builds every command
but runs none, so SQLAlchemy, rich and the domain models load only in the
helpers that use them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError
    from rich.console import Console

    from activities.store import Store
    from domain.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


class CliError(Exception):
    """A failure the user can act on: printed as one message, exit code 1."""


def load_settings() -> Settings:
    """The one place a command reads its settings."""
    from domain.settings import Settings

    return Settings()  # type: ignore[call-arg]  # fields come from the environment


# Piped output (grep, a file) has no terminal to fit: tables keep their
# natural width up to this, so each row stays on one line.
PIPE_WIDTH = 240


def console(*, stderr: bool = False) -> Console:
    # Built per call so output goes to the current sys.stdout/stderr (the CLI
    # runner swaps them); soft wrap keeps messages and ids on one line, and
    # markup is off because messages carry user text such as "[east]".
    from rich.console import Console

    out = Console(stderr=stderr, soft_wrap=True, markup=False, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


def say(message: str, *, style: str | None = None) -> None:
    console().print(message, style=style)


def warn(message: str) -> None:
    console(stderr=True).print(message, style="yellow")


def fail(message: str) -> NoReturn:
    console(stderr=True).print(message, style="red")
    raise typer.Exit(1)


def reports_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turns a `CliError` raised anywhere in a command into its message and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            fail(str(exc))

    return wrapper


def safe_url(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as SQLAlchemy will reject it
        return url


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The store named by the settings; a store error becomes a message that says
    which store and what to try (most often: the schema was never created)."""
    from sqlalchemy.exc import SQLAlchemyError

    from activities.store import Store

    store = Store.from_url(settings.database_url)
    try:
        yield store
    except SQLAlchemyError as exc:
        raise CliError(
            f"store {safe_url(settings.database_url)}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]} (has `crm db upgrade` run?)"
        ) from exc
    finally:
        store.dispose()


def unreachable(settings: Settings, exc: BaseException) -> str:
    """Why a command that needs Temporal could not reach it, and what to try."""
    return (
        f"cannot reach Temporal at {settings.temporal_address} "
        f"(namespace {settings.temporal_namespace}): {exc} "
        "- is it running? (`crm up` starts a development one)"
    )


# -- values typed on the command line ---------------------------------------------------


def aware(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 time with its UTC offset, or None when the option was not given."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliError(f"{option} {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise CliError(f"{option} {value!r} needs a UTC offset, e.g. 2026-01-05T10:00:00+08:00")
    return parsed


def when(value: datetime | None) -> str:
    return value.isoformat() if value else "-"


def problems(exc: ValidationError) -> str:
    """One clause per invalid field, naming the field and the value given."""
    from starter import imports

    return imports.validation_problems(exc)


def decimal(value: str, option: str, *, positive: bool = False) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise CliError(f"{option} {value!r} is not a decimal number") from exc
    if not amount.is_finite():
        raise CliError(f"{option} {value!r} is not a decimal number")
    if positive and amount <= 0:
        raise CliError(f"{option} {value!r} must be positive")
    return amount


def money(value: str, currency: str, option: str = "--amount") -> Decimal:
    """A positive amount, exact in the currency's minor unit."""
    from domain.money import to_minor

    amount = decimal(value, option, positive=True)
    try:
        to_minor(amount, currency)
    except ValueError as exc:
        raise CliError(f"{option} {value!r}: {exc}") from exc
    return amount


def currency_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise CliError(f"--currency {value!r} is not an ISO 4217 code such as CNY")
    return code
