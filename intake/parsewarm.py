"""Imported once by the parser pool's fork server (``intake.parsepool.PRELOAD``), never by the worker.

pdfminer loads the character maps of Chinese PDF fonts on first use (~0.25 s); loaded here, every
parser child forked from the server starts with them, shared copy-on-write, instead of loading
them again for the first page it reads with pdfplumber (a rotated page; the rest go through PDFium).
"""

from __future__ import annotations

import contextlib

from pdfminer.cmapdb import CMapDB

CMAPS = ("UniGB-UCS2-H", "UniGB-UTF16-H", "GBK-EUC-H", "GB-EUC-H", "UniGB-UCS2-V", "UniGB-UTF16-V")

for _name in CMAPS:
    with contextlib.suppress(Exception):
        CMapDB.get_cmap(_name)
for _vertical in (False, True):
    with contextlib.suppress(Exception):
        CMapDB.get_unicode_map("Adobe-GB1", _vertical)
