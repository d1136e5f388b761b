"""Contact details: phones to E.164, e-mail addresses, and company keys that
match spellings of one company. Pure rules, no store, no clock.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.contact import InvalidContact, company_key, normalise_email, normalise_phone


@pytest.mark.parametrize(
    "raw",
    ["138 0013 8000", "13800138000", "+86 138-0013-8000", "8613800138000", "0086 138 0013 8000"],
)
def test_a_mainland_mobile_in_any_common_format_becomes_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+8613800138000"


def test_a_foreign_number_in_e164_keeps_its_country() -> None:
    assert normalise_phone("+14155552671") == "+14155552671"
    assert normalise_phone("+1 (415) 555-2671") == "+14155552671"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+86 138 0013"])
def test_an_invalid_phone_is_refused_naming_the_value(raw: str) -> None:
    with pytest.raises(InvalidContact) as refused:
        normalise_phone(raw)
    assert repr(raw) in str(refused.value)


def test_an_email_address_is_case_folded_and_trimmed() -> None:
    assert normalise_email("  Zhang.Wei@Example.COM ") == "zhang.wei@example.com"


@pytest.mark.parametrize("raw", ["zhang.wei.example.com", "zhang@", "zhang wei@example.com"])
def test_an_invalid_email_is_refused_naming_the_address(raw: str) -> None:
    with pytest.raises(InvalidContact) as refused:
        normalise_email(raw)
    assert repr(raw) in str(refused.value)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ACME Co., Ltd.", "acme"),
        ("Acme Inc.", "ACME"),
        ("Acme Corporation", "acme"),
        ("ACME Company Limited", "Acme"),
        ("北京星辰科技有限公司", "北京星辰科技"),
        ("北京星辰科技（集团）股份有限公司", "北京星辰科技"),
        ("北京星辰科技有限责任公司", "北京星辰科技 "),
        ("星辰科技Co.,Ltd", "星辰科技"),
        ("ＡＣＭＥ　Ｃｏ．，Ｌｔｄ．", "ACME Co., Ltd."),  # full-width forms
        ("北京星辰科技（北京）", "北京星辰科技(北京)"),
    ],
)
def test_spellings_of_the_same_company_share_a_key(one: str, other: str) -> None:
    assert company_key(one) == company_key(other)


def test_company_key_of_the_plain_name() -> None:
    assert company_key("ACME Co., Ltd.") == "acme"
    assert company_key("北京星辰科技有限公司") == "北京星辰科技"


@pytest.mark.parametrize(
    ("one", "other"),
    [("Costco", "Cost Inc."), ("Disco Ltd", "Dis Ltd"), ("Telecorp", "Tele Corp")],
)
def test_a_legal_form_inside_a_word_is_part_of_the_name(one: str, other: str) -> None:
    assert company_key(one) != company_key(other)


def test_a_name_that_is_only_a_legal_form_is_kept() -> None:
    assert company_key("Co.") == "co"
    assert company_key("公司") == "公司"


MOBILE_PREFIXES = [f"13{d}" for d in range(10)] + [
    f"{p}" for p in range(150, 200) if p not in (154, 160, 163, 164, 168, 169, 179, 194)
]


@st.composite
def cn_mobiles(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(MOBILE_PREFIXES))
    subscriber = draw(st.integers(min_value=0, max_value=10**8 - 1))
    national = f"{prefix}{subscriber:08d}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse(national, "CN")))
    layout = draw(
        st.sampled_from(
            [
                national,
                f"{national[:3]} {national[3:7]} {national[7:]}",
                f"+86 {national[:3]}-{national[3:7]}-{national[7:]}",
                f"86{national}",
                f"+86{national}",
            ]
        )
    )
    return layout


@given(cn_mobiles())
def test_normalising_a_normalised_mobile_changes_nothing(raw: str) -> None:
    once = normalise_phone(raw)
    assert once.startswith("+861")
    assert len(once) == 14
    assert normalise_phone(once) == once


COMPANY_WORDS = st.sampled_from(
    ["acme", "Star", "星辰", "科技", "北京", "Co", "Ltd", "Inc", "有限", "公司", "集团", "c", "o",
     "ＡＣＭＥ", "Café", "3M"]
)


COMPANY_SEPARATORS = st.sampled_from([" ", "", ".", ", ", "（", "）", "-", "　"])


@given(
    st.one_of(
        st.text(),
        st.lists(st.tuples(COMPANY_WORDS, COMPANY_SEPARATORS), min_size=1, max_size=6).map(
            lambda parts: "".join(word + sep for word, sep in parts)
        ),
    )
)
def test_the_key_of_a_company_key_is_itself(raw: str) -> None:
    key = company_key(raw)
    assert company_key(key) == key
