"""Tags and segments as data: a segment is a name and a rule, a declarative
condition over the store that the daily refresh (and `crm segment refresh`)
evaluates for every customer at once.

A rule is JSON (in a policy file or given to `crm segment define`). A
condition is one of

- ``{"orders": {"category": "母婴", "within_days": 30, "min_count": 3}}``:
  the customer's orders in the trailing window (optionally of some
  categories), their count (``min_count``, ``max_count``; at least one
  unless only a most is given) and
  amount (``min_amount``, ``max_amount``, in ``currency``, default CNY);
  ``"max_count": 0`` is "bought nothing of it";
- ``{"follows": {"category": "美妆"}}``: the customer follows a category
  (the app, a social account, the mini-program report what they follow);
- ``{"interactions": {"channel": "wechat", "within_days": 90, "min_count": 2}}``:
  contacts staff logged with the customer;
- ``{"field": {"name": "locale", "equals": "en"}}`` (or ``"in": [...]``, or
  ``"missing": true``): a field of the customer record;
- ``{"tier": ["core", "potential"]}``: the RFM tier;

combined with ``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": {...}}``.
The documents' example — bought mother-and-baby goods 3+ times a month and
follow beauty — is, as written::

    {"all": [{"orders": {"category": "母婴", "within_days": 30, "min_count": 3}},
             {"follows": {"category": "美妆"}}]}

`parse_rule` checks a rule against the policy's categories and the known
fields and refuses one it cannot evaluate, saying where and why. Pure: the
SQL is `activities.segment_sql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.lifecycle import Tier
from domain.vocabulary import CONTACT_CHANNELS

# Customer fields a rule may test, and the store column each reads.
CUSTOMER_FIELDS = ("locale", "timezone", "owner_id", "advisor_id", "company",
                   "favourite_category", "lifecycle_state", "tier")
MAX_WINDOW_DAYS = 3650
MAX_NAME = 100
MAX_DEPTH = 8


class SegmentPolicy(BaseModel):
    """The categories a rule may name (the order system's, and what customers
    follow). `CRM_JOURNEY_POLICIES={"segment": {"categories": [...]}}` sets them."""

    categories: list[str] = Field(default_factory=lambda: [
        "母婴", "美妆", "食品", "服饰", "数码", "家居", "图书", "运动", "保健", "宠物",
        "baby", "beauty", "food", "tea", "coffee", "snacks", "apparel", "digital", "home",
        "books", "sports"])


class RuleError(ValueError):
    """A rule that cannot be evaluated; the message says where and why."""


class _Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Orders(_Leaf):
    category: list[str] | None = None
    within_days: int = Field(ge=1, le=MAX_WINDOW_DAYS)
    min_count: int | None = Field(default=None, ge=0, le=1_000_000)
    max_count: int | None = Field(default=None, ge=0, le=1_000_000)
    min_amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"))
    max_amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"))
    currency: Literal["CNY", "USD", "EUR", "HKD"] = "CNY"

    one_category = field_validator("category", mode="before")(_one_or_many)

    @property
    def least(self) -> int:
        """The fewest orders: as given, else none when a most is given
        ("at most 2"), else one."""
        if self.min_count is not None:
            return self.min_count
        return 0 if self.max_count is not None else 1

    def admits_none(self) -> bool:
        """Whether a customer with no such order meets it (then the SQL keeps
        everyone but those whose orders break it)."""
        return self.least == 0 and not self.min_amount


class Follows(_Leaf):
    category: list[str] = Field(min_length=1)

    one_category = field_validator("category", mode="before")(_one_or_many)


class Interactions(_Leaf):
    channel: list[str] | None = None
    within_days: int = Field(ge=1, le=MAX_WINDOW_DAYS)
    min_count: int = Field(default=1, ge=1, le=1_000_000)

    one_channel = field_validator("channel", mode="before")(_one_or_many)


class CustomerField(_Leaf):
    name: str
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    missing: bool | None = None


@dataclass(frozen=True)
class TierIn:
    tiers: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Orders | Follows | Interactions | CustomerField | TierIn | AllOf | AnyOf | Not

Leaf = Orders | Follows | Interactions | CustomerField
_LEAVES: dict[str, type[Leaf]] = {"orders": Orders, "follows": Follows,
                                  "interactions": Interactions, "field": CustomerField}
KINDS = (*_LEAVES, "tier", "all", "any", "not")


def parse_rule(data: Any, policy: SegmentPolicy) -> Condition:
    """The condition a rule's JSON declares, or `RuleError` naming the first
    thing wrong with it (its path in the rule, and why)."""
    return _parse(data, policy, "rule", 0)


def _parse(data: Any, policy: SegmentPolicy, at: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise RuleError(f"{at}: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict) or len(data) != 1:
        raise RuleError(f"{at}: a condition is an object with one key, one of "
                        f"{', '.join(KINDS)}")
    [(kind, body)] = data.items()
    here = f"{at}.{kind}"
    if kind in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise RuleError(f"{here}: a non-empty list of conditions")
        parts = tuple(_parse(part, policy, f"{here}[{n}]", depth + 1)
                      for n, part in enumerate(body))
        return AllOf(parts) if kind == "all" else AnyOf(parts)
    if kind == "not":
        return Not(_parse(body, policy, here, depth + 1))
    if kind == "tier":
        tiers = _one_or_many(body)
        if not isinstance(tiers, list) or not tiers:
            raise RuleError(f"{here}: a tier or a non-empty list of tiers")
        unknown = [t for t in tiers if t not in Tier.__members__]
        if unknown:
            raise RuleError(f"{here}: unknown tier {unknown[0]!r} "
                            f"(known: {', '.join(Tier.__members__)})")
        return TierIn(tuple(tiers))
    leaf_type = _LEAVES.get(kind)
    if leaf_type is None:
        raise RuleError(f"{at}: unknown condition {kind!r} (known: {', '.join(KINDS)})")
    try:
        leaf = leaf_type.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise RuleError(f"{here}{'.' + where if where else ''}: {error['msg']}") from None
    _check(leaf, policy, here)
    return leaf


def _check(leaf: _Leaf, policy: SegmentPolicy, here: str) -> None:
    known = policy.categories
    if isinstance(leaf, Orders | Follows):
        for category in leaf.category or []:
            if category not in known:
                raise RuleError(f"{here}.category: unknown category {category!r} "
                                f"(known: {', '.join(known)})")
    if isinstance(leaf, Orders):
        if leaf.max_count is not None and leaf.max_count < leaf.least:
            raise RuleError(f"{here}: max_count {leaf.max_count} is below min_count "
                            f"{leaf.least}")
        if leaf.min_amount is not None and leaf.max_amount is not None \
                and leaf.max_amount < leaf.min_amount:
            raise RuleError(f"{here}: max_amount is below min_amount")
    if isinstance(leaf, Interactions):
        for channel in leaf.channel or []:
            if channel not in CONTACT_CHANNELS:
                raise RuleError(f"{here}.channel: unknown channel {channel!r} "
                                f"(known: {', '.join(CONTACT_CHANNELS)})")
    if isinstance(leaf, CustomerField):
        if leaf.name not in CUSTOMER_FIELDS:
            raise RuleError(f"{here}.name: unknown field {leaf.name!r} "
                            f"(known: {', '.join(CUSTOMER_FIELDS)})")
        tests = [t for t in (leaf.equals, leaf.in_, leaf.missing) if t is not None]
        if len(tests) != 1:
            raise RuleError(f"{here}: exactly one of equals, in, missing")
        if leaf.name == "favourite_category":
            for value in [leaf.equals] if leaf.equals else leaf.in_ or []:
                if value not in known:
                    raise RuleError(f"{here}: unknown category {value!r} "
                                    f"(known: {', '.join(known)})")


_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")  # MAX_NAME


def check_name(name: str) -> str:
    """A segment's name (its tag): 1 to 100 printable characters."""
    name = name.strip()
    if not _NAME.match(name):
        raise RuleError(f"a segment name is 1 to {MAX_NAME} printable characters: {name!r}")
    return name


class SegmentDefinition(BaseModel):
    """One segment in a policy file: ``{"name": ..., "rule": {...}, "description": ...}``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    rule: dict[str, Any]
    description: str = Field(default="", max_length=2000)


def parse_definitions(data: Any, policy: SegmentPolicy) -> list[SegmentDefinition]:
    """A policy file's segments (``{"segments": [...]}``), each rule checked;
    the first bad one is refused with its name and why."""
    if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
        raise RuleError('a segment file is {"segments": [{"name": ..., "rule": {...}}, ...]}')
    found: list[SegmentDefinition] = []
    for n, item in enumerate(data["segments"]):
        try:
            definition = SegmentDefinition.model_validate(item)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise RuleError(f"segments[{n}].{'.'.join(map(str, error['loc']))}: "
                            f"{error['msg']}") from None
        definition.name = check_name(definition.name)
        try:
            parse_rule(definition.rule, policy)
        except RuleError as exc:
            raise RuleError(f"segment {definition.name!r}: {exc}") from None
        if any(d.name == definition.name for d in found):
            raise RuleError(f"segment {definition.name!r} is defined twice")
        found.append(definition)
    return found


class SegmentRefreshRequest(BaseModel):
    names: list[str] = Field(default_factory=list)  # empty: every segment
    full: bool = False  # recompute every customer, not only the candidates


class SegmentRefreshAnswer(BaseModel):
    segments: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class RefreshResult:
    segment: str
    size: int
    entered: int
    left: int
    at: datetime
    seconds: float
    mode: str = "full"  # or "incremental"
    candidates: int | None = None  # the customers an incremental refresh evaluated
