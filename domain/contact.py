"""Normalising contact details, so duplicates can be found by equality."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidContact(ValueError):
    """A phone number or e-mail address that cannot be used; says which and why."""


def normalise_phone(raw: str, *, default_region: str = "CN") -> str:
    """E.164 form of a phone number; bare numbers are read as mainland China."""
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact(f"phone {raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact(f"phone {raw!r} is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Lower-cased, syntax-checked address (no DNS lookup: intake must not block on DNS)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidContact(f"email {raw!r} is not valid: {exc}") from exc
    return result.normalized.lower()


_SEPARATORS = re.compile(r"[\s\.,，。、()（）\-_&'\"]+")

# Legal forms, compared without spaces ("co ltd" matches "Co., Ltd."). A Latin
# one counts only as its own word or glued to a non-Latin name ("星辰科技Co."),
# so "Costco" keeps its "co" and is not taken for "Cost Inc.".
_LEGAL_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团",
    "公司",
    "companylimited",
    "corporation",
    "coltd",
    "limited",
    "gmbh",
    "corp",
    "ltd",
    "inc",
    "llc",
    "co",
)


def company_key(raw: str) -> str:
    """A matching key for a company name: width-folded, lower-cased, punctuation
    and legal-form suffixes removed ("ACME Co., Ltd." == "acme")."""
    words = _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", raw).lower()).split()
    # NFKC again after joining: a mark split off by a space ("A´") composes now,
    # so the key of a key is the key itself.
    key = unicodedata.normalize("NFKC", "".join(words))
    word_starts = {
        len(unicodedata.normalize("NFKC", "".join(words[:i]))) for i in range(1, len(words))
    }
    stripped = True
    while stripped:
        stripped = False
        for suffix in _LEGAL_SUFFIXES:
            cut = len(key) - len(suffix)
            if cut <= 0 or not key.endswith(suffix):
                continue
            before = key[cut - 1]
            inside_word = before.isascii() and before.isalnum() and cut not in word_starts
            if suffix.isascii() and inside_word:
                continue
            key = key[:cut]
            stripped = True
            break
    return key
