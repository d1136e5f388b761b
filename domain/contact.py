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


_LEGAL_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团",
    "公司",
    "co ltd",
    "company limited",
    "limited",
    "ltd",
    "inc",
    "llc",
    "gmbh",
    "corp",
    "corporation",
    "co",
)


def company_key(raw: str) -> str:
    """A matching key for a company name: width-folded, lower-cased, punctuation
    and legal-form suffixes removed ("ACME Co., Ltd." == "acme")."""
    text = unicodedata.normalize("NFKC", raw).lower()
    text = re.sub(r"[\s\.,，。、()（）\-_&'\"]+", " ", text).strip()
    changed = True
    while changed and text:
        changed = False
        for suffix in _LEGAL_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].strip()
                changed = True
    return text.replace(" ", "")
