"""Lead score: how much a lead is worth a rep's time, 0-100."""

from __future__ import annotations

# How often a lead from each channel turns out genuine (operations' estimate).
SOURCE_RELIABILITY: dict[str, int] = {
    "referral": 40,
    "trade_show": 35,
    "web_form": 25,
    "mini_program": 25,
    "ecommerce": 20,
    "ads": 15,
}
_UNKNOWN_SOURCE = 10


def lead_score(
    *,
    source: str,
    has_phone: bool,
    has_email: bool,
    has_company: bool,
    need: str | None,
) -> int:
    """Source reliability (≤40) + completeness (≤30) + clarity of need (≤30)."""
    score = SOURCE_RELIABILITY.get(source, _UNKNOWN_SOURCE)
    score += 12 * has_phone + 8 * has_email + 10 * has_company
    words = len((need or "").split())
    chars = len((need or "").strip())
    # A stated need counts by its substance; Chinese text has no spaces, so
    # characters count too.
    if words >= 8 or chars >= 30:
        score += 30
    elif words >= 3 or chars >= 10:
        score += 20
    elif chars > 0:
        score += 10
    return min(score, 100)
