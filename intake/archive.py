"""The archive of originals: every raw message and attachment, content-addressed.

A file's address is its SHA-256; its name on disk is the hash plus an
extension taken from the sniffed type (never from the sender's file name, so
sender text is never a path). Writing the same bytes twice is a no-op, which
makes a crashed poll's re-run harmless.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reports.files import atomic_write, remove_stale_temp

SUFFIX = {
    "pdf": ".pdf", "xlsx": ".xlsx", "xlsm": ".xlsm", "xls": ".xls", "docx": ".docx", "doc": ".doc",
    "zip": ".zip", "rar": ".rar", "7z": ".7z", "text": ".txt", "image": ".img", "eml": ".eml",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Archive:
    """Content-addressed files under ``<data_dir>/archive``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "archive"

    def remove_stale_temp(self) -> int:
        """Clear temporary files a killed writer left in the data directory (archive, ledger, digest)."""
        return remove_stale_temp(self.data_dir)

    def relative_path(self, digest: str, kind: str) -> str:
        return f"archive/{digest[:2]}/{digest}{SUFFIX.get(kind, '.bin')}"

    def put(self, data: bytes, kind: str) -> tuple[str, str]:
        """Store ``data``; return (sha256, path relative to the data directory)."""
        digest = sha256(data)
        rel = self.relative_path(digest, kind)
        target = self.data_dir / rel
        if not target.exists():
            atomic_write(target, lambda fh: fh.write(data), mode=None)
        return digest, rel

    def read(self, rel: str) -> bytes:
        return (self.data_dir / rel).read_bytes()
