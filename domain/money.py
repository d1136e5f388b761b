"""Money as Decimal in Python, integer minor units in the store."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision


def minor_digits(currency: str) -> int:
    return get_currency_precision(currency.upper())


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact minor units; an amount finer than the currency allows is an error."""
    digits = minor_digits(currency)
    scaled = amount * (Decimal(10) ** digits)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {digits} decimal places for {currency}")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    digits = minor_digits(currency)
    return (Decimal(minor) / (Decimal(10) ** digits)).quantize(Decimal(1).scaleb(-digits))


def round_money(amount: Decimal, currency: str) -> Decimal:
    digits = minor_digits(currency)
    return amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
