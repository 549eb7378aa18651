"""The normalizers (names, headers, numbers, yes/no, project type): properties checked with hypothesis."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parsers.normalize import (
    COLUMN_VARIANTS,
    canonical_column,
    fold_header,
    fold_name,
    looks_like_formula,
    parse_number,
    parse_project_type,
    parse_yes_no,
)

FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
VARIANTS = [(canonical, variant) for canonical, variants in COLUMN_VARIANTS.items() for variant in variants]


def to_full_width(text: str) -> str:
    return "".join(FULL_WIDTH.get(c, c) for c in text)


def spaced(draw: st.DrawFn, text: str) -> str:
    """``text`` with spaces, ideographic spaces and line breaks put between its characters."""
    gaps = draw(st.lists(st.sampled_from(["", "", " ", "\n", "\u3000", "\r\n"]), min_size=len(text) + 1,
                         max_size=len(text) + 1))
    return "".join(g + c for g, c in zip(gaps, text + "", strict=False)) + gaps[-1]


# -- parse_number -------------------------------------------------------------------------------


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_survive_every_spelling(n: int):
    """An integer reads back as itself from a cell, text, padded text, full-width digits, "n.0" and "n,nnn"."""
    for spelling in (n, float(n), str(n), f" {n} ", to_full_width(str(n)), f"{n}.0", f"{n:,}", f"{n}万元"):
        result = parse_number(spelling)
        assert result == n and type(result) is int, spelling


@given(st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_decimals_read_as_their_value(d: Decimal):
    """Decimal text reads as the number it spells, an int when integral."""
    result = parse_number(str(d))
    assert result == float(d)
    assert isinstance(result, int) == (d == d.to_integral_value())


@given(st.text(max_size=30))
@example("")
@example("50万元万元")
@example("1e5")
@example("-")
@example("NaN")
def test_any_text_gives_a_number_or_none(text: str):
    """Arbitrary text never raises: a finite int/float or None."""
    result = parse_number(text)
    assert result is None or (type(result) in (int, float) and result == result)


@pytest.mark.parametrize("value", [None, True, False, "", "abc", "五十", float("nan"), float("inf"), "50元整"])
def test_non_numbers(value: object):
    """Booleans, blanks, words and non-finite floats are not figures."""
    assert parse_number(value) is None


# -- headers -----------------------------------------------------------------------------------


@st.composite
def decorated_variant(draw: st.DrawFn) -> tuple[str, str]:
    """A spec header variant as offices write it: spacing, brackets' width, a unit suffix, case."""
    canonical, variant = draw(st.sampled_from(VARIANTS))
    text = variant.upper() if draw(st.booleans()) else variant
    if draw(st.booleans()):
        text = to_full_width(text)
    text = spaced(draw, text)
    unit = draw(st.sampled_from(["", "（件）", "(件)", "（万元）", "(万元)", " （ 件 ）", "\n(万元)",
                                 "（单位：万元）"]))
    return canonical, text + unit


@given(decorated_variant())
def test_header_variants_map_to_their_canonical_column(case: tuple[str, str]):
    """Every variant of the spec's table maps to its canonical name however it is spaced or bracketed."""
    canonical, text = case
    assert canonical_column(text) == canonical


@given(st.text(max_size=40))
def test_fold_header_is_idempotent_and_has_no_spaces(text: str):
    """Folding twice changes nothing, and a folded header holds no whitespace."""
    folded = fold_header(text)
    assert fold_header(folded) == folded
    assert not any(c.isspace() for c in folded)


@given(st.text(max_size=40))
def test_canonical_column_is_a_known_name_or_none(text: str):
    """Any text maps to one of the spec's canonical names or to None, never raising."""
    assert canonical_column(text) in (*COLUMN_VARIANTS, None)


def test_hints_in_brackets_are_ignored_when_the_rest_is_known():
    """``项目类别（新建/升级）`` and ``申报单位（盖章）`` still name their columns."""
    assert canonical_column("项目类别（新建/升级）") == "项目类别"
    assert canonical_column("申报单位\n（盖章）") == "牵头申报单位"
    assert canonical_column("项目负责人") is None


# -- names ---------------------------------------------------------------------------------------

NAME_CHARS = st.sampled_from([*"徐州恒达智能装备有限公司江苏集团abcXYZ0123", "（", "）", "(", ")"])


@given(st.lists(NAME_CHARS, min_size=1, max_size=20).map("".join), st.data())
def test_fold_name_ignores_spacing_width_and_brackets(name: str, data: st.DataObject):
    """A name folds the same with spaces inserted, ASCII made full-width and brackets swapped."""
    variant = spaced(data.draw, to_full_width(name).replace("(", "（").replace(")", "）"))
    assert fold_name(variant) == fold_name(name)


NAME_TEXT = st.text(alphabet=st.one_of(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
                                        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                        st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E),
                                        st.sampled_from("\u3000\n（）【】")), max_size=30)


@given(NAME_TEXT)
def test_fold_name_is_idempotent(name: str):
    """Folding a folded name changes nothing (for the characters names are written in; a lone combining
    mark after a spacing one, e.g. ``O¯``, can recompose on the second pass)."""
    folded = fold_name(name)
    assert fold_name(folded) == folded


# -- yes/no, project type, formulas ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("是", "是"), ("否", "否"), (" 是 ", "是"), ("Y", "是"), ("n", "否"), ("YES", "是"), ("No", "否"),
    ("√", "是"), ("×", "否"), ("有", "是"), ("无", "否"), ("不是", "否"), (True, "是"), (False, "否"),
    ("", None), (None, None), ("待定", None),
])
def test_yes_no_variants(text: object, expected: str | None):
    """The usual ways of writing yes and no map to 是/否; anything unclear is None."""
    assert parse_yes_no(text) == expected


@given(st.text(max_size=20))
def test_yes_no_gives_one_of_three(text: str):
    """Any text gives 是, 否 or None, and a padded answer means the same as the bare one."""
    result = parse_yes_no(text)
    assert result in ("是", "否", None)
    assert parse_yes_no(f"  {text}\u3000") == result


@pytest.mark.parametrize(("text", "expected"), [
    ("新建", "新建"), ("新建项目", "新建"), ("升级", "升级"), (" 升级项目 ", "升级"), ("新建/升级", None),
    ("", None), (None, None), ("其他", None),
])
def test_project_type_variants(text: object, expected: str | None):
    """新建/升级 and their 项目 forms are recognized; both or neither is None."""
    assert parse_project_type(text) == expected


@given(st.one_of(st.integers(min_value=-(10**18), max_value=10**18),
                 st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=3)))
def test_numbers_never_look_like_formulas(n: object):
    """Signed numbers written as text ("-5", "+3.5") are figures, not formulas (up to 40 characters)."""
    assert not looks_like_formula(str(n))
    assert not looks_like_formula(f"+{n}".replace("+-", "-"))


@given(st.sampled_from("=+-@"), st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=10))
def test_leading_operator_text_looks_like_a_formula(lead: str, rest: str):
    """Text starting with = + - @ followed by words is formula-looking."""
    assert looks_like_formula(lead + rest)


def test_formula_edge_cases():
    """Blank text, numbers and non-text cells are no formulas; HYPERLINK and phone numbers are."""
    assert not looks_like_formula("")
    assert not looks_like_formula(5)
    assert looks_like_formula('=HYPERLINK("http://x","y")')
    assert looks_like_formula("+86 138 5200 1234")
