"""A clip chosen on a page (an example on disk or an upload held in memory) and a safe path to it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from arlib.errors import ArlibError

UPLOAD_TYPES = ["mp4", "avi", "mov", "mkv", "webm", "gif"]


def safe_filename(name: str, default: str = "clip") -> str:
    """An uploaded file's name made safe: no directories, unicode letters kept, extension kept (lower case)."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control characters
    stem, ext = os.path.splitext(name)
    ext = re.sub(r"[^A-Za-z0-9]", "", ext)[:10].lower()
    stem = re.sub(r"[^\w.\-]+", "_", stem).strip("._-")[:120]
    stem = stem or default
    return f"{stem}.{ext}" if ext else stem


@dataclass
class ClipSource:
    """A clip chosen on a page: an example file on disk, or an upload held in memory."""

    name: str
    path: Path | None = None  # examples
    data: bytes | None = None  # uploads

    @property
    def key(self) -> str:
        """The content hash: the same clip uploaded or picked from disk shares cached predictions."""
        from .resources import file_hash

        if self.data is not None:
            return hashlib.sha1(self.data).hexdigest()
        return file_hash(self.path)


@contextmanager
def materialised(source: ClipSource):
    """A path to the clip: the example itself, or the upload written under a sanitised name into a fresh
    temporary folder that is removed as soon as the caller is done with it."""
    if source.data is None:
        if not source.path.exists():
            raise ArlibError(f"Clip {source.path} does not exist any more; pick another clip.")
        yield source.path
        return
    folder = Path(tempfile.mkdtemp(prefix="arlib-upload-"))
    try:
        target = (folder / safe_filename(source.name)).resolve()
        if target.parent != folder.resolve():  # cannot happen after safe_filename; belt and braces
            raise ArlibError(f"Upload name {source.name!r} is not usable; rename the file and upload it again.")
        target.write_bytes(source.data)
        try:
            yield target
        except ArlibError as exc:  # name the upload as the user knows it, not by its temporary path
            raise type(exc)(str(exc).replace(str(target), source.name)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
