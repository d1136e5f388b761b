"""A campaign's results per arm: conversion (an order in any currency within
the attribution window after entering), revenue per customer in each
currency, and each variant's lift over the hold-out with a 95 % confidence
interval from a two-proportion test (statsmodels). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from domain.money import round_money


@dataclass(frozen=True)
class ArmResult:
    """An arm's customers, those converted (an order in any currency within
    the attribution window) and the revenue of those orders, per currency."""

    arm: str
    customers: int
    converted: int
    revenue: dict[str, Decimal] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.converted / self.customers if self.customers else None

    @property
    def revenue_per_customer(self) -> dict[str, Decimal]:
        """Per currency, in that currency's minor units (2 places for CNY, 0 for JPY)."""
        if not self.customers:
            return {}
        return {currency: round_money(amount / self.customers, currency)
                for currency, amount in sorted(self.revenue.items())}


@dataclass(frozen=True)
class Lift:
    """A variant's conversion rate minus the hold-out's, with its 95 %
    confidence interval (Wald, two independent proportions) and the
    two-sided p-value of the difference."""

    variant: str
    difference: float
    low: float
    high: float
    p_value: float


def lift(variant: ArmResult, holdout: ArmResult, *, alpha: float = 0.05) -> Lift | None:
    """Computed by statsmodels' two-proportion test; None when an arm is empty."""
    if not variant.customers or not holdout.customers:
        return None
    from statsmodels.stats.proportion import (  # type: ignore[import-untyped]
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    low, high = confint_proportions_2indep(variant.converted, variant.customers,
                                           holdout.converted, holdout.customers,
                                           method="wald", compare="diff", alpha=alpha)
    test = test_proportions_2indep(variant.converted, variant.customers, holdout.converted,
                                   holdout.customers, method="wald", compare="diff")
    difference = variant.converted / variant.customers - holdout.converted / holdout.customers
    return Lift(variant=variant.arm, difference=difference, low=float(low), high=float(high),
                p_value=float(test.pvalue))
