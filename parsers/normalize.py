"""Normalizers shared by the parsers and the merge: names, numbers, yes/no.

Pure functions over strings; property-tested in tests/test_normalize.py.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_BRACKETS = str.maketrans({"(": "", ")": "", "（": "", "）": "", "[": "", "]": "", "【": "", "】": ""})


def fold_name(name: str | None) -> str:
    """A name folded for matching: NFKC (full-width to half-width), no spaces, no brackets.

    ``徐州 某某（集团）有限公司`` and ``徐州某某(集团)有限公司`` fold to the same key.
    """
    if not name:
        return ""
    text = unicodedata.normalize("NFKC", str(name))
    text = _SPACES.sub("", text)
    return text.translate(_BRACKETS).lower()
