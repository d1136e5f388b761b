"""What the store can hold, as limits the boundary can check before a write.

The lengths mirror the store's columns (domain/schema.py; a test holds the two
together): a value over them could never be written, so a journey started
with one would retry its first write for ever. Free text has no column limit
but travels in workflow history, so it is capped too. Start inputs carry these
limits as pydantic types; signal models stay lenient (replay re-decodes old
signals with new code) and the store activities check their values with the
`*_problem` functions instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, AwareDatetime, ValidationInfo

# -- column lengths ----------------------------------------------------------------

ID = 64  # staff, customer, lead, ticket, enrolment, contract, course, order ids
NAME = 200  # people, companies, opportunities, chat handles
EMAIL = 320
PHONE = 64  # as entered; the store keeps E.164, far shorter
REGION = 64
PRODUCT_LINE = 64
SOURCE = 32
CHANNEL = 32
LOCALE = 16
TIMEZONE = 64
GROUP = 64
SUBJECT = 300
CATEGORY = 64
MILESTONE_NAME = 64
PERCENT_TEXT = 16  # a milestone's percentage, kept as exact decimal text
REFERENCE = 128
COUPON = 32
# Notes, reasons, needs, descriptions, resolutions, comments: unbounded
# columns, but every one also travels in workflow history.
TEXT = 10_000

# -- numbers -----------------------------------------------------------------------

# Money is kept in BIGINT minor units, and running totals (paid, lifetime value,
# collected) add many amounts up; 10^15 minor units leaves room for thousands
# of the largest amounts in one total.
MAX_MINOR = 10**15
# The largest amount for any currency (four minor digits at most), where the
# currency is not known: a threshold in a policy.
MAX_PLAIN_AMOUNT = Decimal(MAX_MINOR) / 10**4
# Day counts and durations: about ten years. Longer ones overflow no column,
# but nothing in a customer journey is due that far ahead, and far larger
# ones overflow date arithmetic and the store's INTEGER day counts.
MAX_DAYS = 3660
MAX_DURATION = timedelta(days=MAX_DAYS)
# Times a journey takes from outside: far enough from both ends of the
# calendar that adding any duration above stays a valid date.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
# The store's INTEGER columns (scores, seniority, capacity, percentages).
MAX_INT32 = 2**31 - 1

# ISO 4217 codes as the CLDR data babel ships knows them, read once at import
# (journeys validate their input inside the workflow sandbox, which reads no
# files). "XXX" (no currency) and "XTS" (testing) are codes, not money.
CURRENCY_DIGITS: dict[str, int] = {
    code: get_currency_precision(code)
    for code in sorted(list_currencies())
    if code not in ("XXX", "XTS")
}


# -- problems: None when the value can be stored -----------------------------------


def text_problem(value: str | None, max_length: int) -> str | None:
    """Why the store cannot keep this text, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if "\x00" in value:
        return "contains a NUL character (\\x00), which the store cannot keep"
    if len(value) > max_length:
        return f"is {len(value)} characters long; the store keeps at most {max_length}"
    return None


def currency_problem(code: str | None) -> str | None:
    """Why this is not a currency the store can keep amounts in, or None."""
    if code is None:
        return None
    if not isinstance(code, str):
        return f"must be an ISO 4217 code, not {type(code).__name__}"
    if code.upper() not in CURRENCY_DIGITS:
        return f"{_shown(code)} is not an ISO 4217 currency code"
    return None


def amount_problem(amount: Decimal | int | str | None, currency: str | None) -> str | None:
    """Why this amount cannot be kept in `currency`'s integer minor units, or
    None. A currency that is itself a problem is reported by `currency_problem`."""
    if amount is None:
        return None
    try:
        value = Decimal(amount)
    except (ArithmeticError, TypeError, ValueError):
        return f"{_shown(amount)} is not a decimal number"
    if not value.is_finite():
        return f"{value} is not a finite number"
    code = (currency or "").upper()
    digits = CURRENCY_DIGITS.get(code)
    if digits is None:
        if value.copy_abs() > MAX_PLAIN_AMOUNT:
            return f"{_magnitude(value)} is beyond what the store can keep"
        return None
    largest = Decimal(MAX_MINOR).scaleb(-digits)
    if value.copy_abs() > largest:
        return (f"{_magnitude(value)} is beyond what the store can keep in {code} "
                f"(at most {largest:f})")
    if value != value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_DOWN):
        return f"{value} has more than {digits} decimal places for {code}"
    return None


def moment_problem(value: datetime | None) -> str | None:
    if value is None or value.tzinfo is None:
        return None
    if not EARLIEST <= value < LATEST:
        return f"{value.isoformat()} is outside the years {EARLIEST.year}-{LATEST.year - 1}"
    return None


def _shown(value: object) -> str:
    """A value quoted in a message: short, whatever it was."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _magnitude(value: Decimal | int) -> str:
    """A number as a message shows it: an exponent rather than 10^12 digits."""
    text = str(value)
    return text if len(text) <= 30 else f"{Decimal(value):.3E}"


def range_problem(value: int | Decimal | None, low: int | Decimal, high: int | Decimal,
                  *, unit: str = "") -> str | None:
    if value is None or low <= value <= high:
        return None
    return f"{_magnitude(value)}{unit} is outside {low}-{high}{unit}"


def duration_problem(value: timedelta | None) -> str | None:
    if value is None or timedelta(0) <= value <= MAX_DURATION:
        return None
    return f"{value} is not between 0 and {MAX_DAYS} days"


# -- pydantic types for start inputs -----------------------------------------------

# The validation context that turns the limits off: what a start input was
# checked against before they existed. A journey started then is replayed
# with it, so a value the store happened to keep (SQLite keeps text of any
# length) does not stop the journey it started.
WITHOUT_LIMITS = {"store_limits": False}


def limits_apply(info: ValidationInfo) -> bool:
    context = info.context
    return not (isinstance(context, dict) and context.get("store_limits") is False)


def store_limit(problem: Callable[[Any], str | None]) -> AfterValidator:
    """A validator raising `problem(value)` when there is one and the limits apply."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if limits_apply(info):
            found = problem(value)
            if found:
                raise ValueError(found)
        return value

    return AfterValidator(check)


def _fits(max_length: int) -> AfterValidator:
    """The check for text that fits a column of `max_length` characters,
    without NUL."""
    return store_limit(lambda v: text_problem(v, max_length))


# Spelled as `Annotated[...]` at each name (not returned by a function) so
# that type checkers read them as the `str` they are.
Id = Annotated[str, _fits(ID)]
Name = Annotated[str, _fits(NAME)]
Email = Annotated[str, _fits(EMAIL)]
Phone = Annotated[str, _fits(PHONE)]
Region = Annotated[str, _fits(REGION)]
ProductLine = Annotated[str, _fits(PRODUCT_LINE)]
Source = Annotated[str, _fits(SOURCE)]
Channel = Annotated[str, _fits(CHANNEL)]
Locale = Annotated[str, _fits(LOCALE)]
Timezone = Annotated[str, _fits(TIMEZONE)]
Group = Annotated[str, _fits(GROUP)]
Subject = Annotated[str, _fits(SUBJECT)]
MilestoneName = Annotated[str, _fits(MILESTONE_NAME)]
FreeText = Annotated[str, _fits(TEXT)]
Currency = Annotated[str, store_limit(currency_problem)]
Moment = Annotated[AwareDatetime, store_limit(moment_problem)]
DayCount = Annotated[int, store_limit(lambda v: range_problem(v, 0, MAX_DAYS, unit=" days"))]
Duration = Annotated[timedelta, store_limit(duration_problem)]
Percent = Annotated[int, store_limit(lambda v: range_problem(v, 0, 100))]
StoreInt = Annotated[int, store_limit(lambda v: range_problem(v, 0, MAX_INT32))]
PlainAmount = Annotated[Decimal, store_limit(lambda v: range_problem(v, 0, MAX_PLAIN_AMOUNT))]
