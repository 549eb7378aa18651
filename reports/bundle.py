"""``intake export --bundle``: the workbook with the forms beside it, to copy to a staff PC or a USB stick.

In ``data_dir`` the forms are archived under their hashes and the workbook's links lead there. A bundle
is a folder (or a ``.zip`` of one) holding ``ledger.xlsx`` and ``申报书/``, one copy of each project's
form named ``<受理编号>-<file name as sent>``, and the workbook's 申报书文件 links are relative to the
workbook, so they work wherever the folder is copied or unpacked.

The file names come from senders. ``safe_name`` keeps letters, digits, CJK and a few marks; anything
else (path separators, ``..``, control and reserved characters, Windows device names) is replaced, and
every destination is checked to be inside the bundle before anything is written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from pathlib import Path, PurePosixPath

from intake.errors import IntakeError
from intake.models import Ledger, ReplyInfo, StoredMessage
from reports.files import atomic_write
from reports.ledger import DEFAULT_TITLE, write_ledger

FORMS_DIR = "申报书"
LEDGER_NAME = "ledger.xlsx"
NAME_LIMIT = 80  # characters of a file name's stem: well within every file system's 255 bytes
UNSAFE = re.compile(r"[^\w\-.()（）【】《》，、]")  # \w: letters, digits, _ in any script (CJK included)
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


class BundleError(IntakeError):
    """A bundle path that cannot be used (an existing file where a folder should be, a name leaving it)."""


def safe_name(name: str, fallback: str = "申报书") -> str:
    """A single file-name component made from sender text: never a path, never hidden, never special.

    Keeps letters (any script), digits and ``-_.()（）【】《》，、``; every other character (``/``, ``\\``,
    ``:``, spaces, controls, ``%``, ``#``...) becomes ``_``. Leading and trailing dots and underscores go,
    the stem is cut to ``NAME_LIMIT`` characters, and a Windows device name (``CON``, ``nul.txt``) gets a
    ``_`` in front. Nothing usable left: ``fallback``.
    """
    text = UNSAFE.sub("_", unicodedata.normalize("NFKC", name))
    text = re.sub(r"_+", "_", re.sub(r"\.{2,}", ".", text)).strip("._")
    stem, dot, ext = text.rpartition(".") if "." in text else (text, "", "")
    stem = stem[:NAME_LIMIT].rstrip("._") or fallback
    if stem.split(".")[0].upper() in WINDOWS_DEVICES:
        stem = "_" + stem
    return f"{stem}{dot}{ext[:10]}" if ext else stem


def form_names(ledger: Ledger) -> dict[str, str]:
    """Each linked form's archived path (``StoredAttachment.path``) → its path inside the bundle
    (``申报书/XZ2024-云龙-001-申报书.pdf``), unique, with the archived file's own extension."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for p in ledger.projects:
        if p.form is None or p.form.path in names:
            continue
        suffix = PurePosixPath(p.form.path).suffix
        stem = PurePosixPath(safe_name(p.form.filename)).stem
        base = safe_name(f"{p.number}-{stem}")
        name, n = f"{base}{suffix}", 1
        while name.lower() in taken:  # case-insensitive file systems
            n += 1
            name = f"{base}-{n}{suffix}"
        taken.add(name.lower())
        names[p.form.path] = f"{FORMS_DIR}/{name}"
    return names


def write_bundle(
    target: Path,
    ledger: Ledger,
    messages: Sequence[StoredMessage],
    replies: Mapping[int, ReplyInfo],
    tz: tzinfo,
    *,
    data_dir: Path,
    title: str = DEFAULT_TITLE,
) -> Path:
    """Write the bundle to ``target``: a folder, or a zip file when ``target`` ends in ``.zip`` (replaced
    atomically). Returns the workbook's path, or the zip's."""
    if target.suffix.lower() == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-bundle-") as tmp:
            _fill(Path(tmp), ledger, messages, replies, tz, data_dir, title)
            atomic_write(target, lambda fh: _zip(Path(tmp), fh))
        return target
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} exists and is not a folder")
    return _fill(target, ledger, messages, replies, tz, data_dir, title)


def _fill(
    folder: Path, ledger: Ledger, messages: Sequence[StoredMessage], replies: Mapping[int, ReplyInfo],
    tz: tzinfo, data_dir: Path, title: str,
) -> Path:
    """Copy the forms into ``folder`` and write the workbook linking to them; returns the workbook's path.
    A form missing from the archive gets no copy and no link."""
    root = folder.resolve()
    names = form_names(ledger)
    for archived, inside in list(names.items()):
        if not (data_dir / archived).is_file():
            del names[archived]
            continue
        destination = (root / inside).resolve()
        if not destination.is_relative_to(root / FORMS_DIR) or destination.parent != root / FORMS_DIR:
            raise BundleError(f"refusing a form name that leaves the bundle: {inside!r}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / archived, destination)
    workbook = root / LEDGER_NAME
    write_ledger(workbook, ledger, messages, replies, tz, data_dir=data_dir, title=title, form_links=names)
    return workbook


def _zip(folder: Path, fh: object) -> None:
    """The folder's files into a zip (UTF-8 names), the workbook first."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name != LEDGER_NAME, str(p)))
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:  # type: ignore[arg-type]
        for path in files:
            z.write(path, path.relative_to(folder).as_posix())
