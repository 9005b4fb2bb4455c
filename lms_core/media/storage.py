"""Where media bytes live: a small interface and the local-disk implementation.

The rest of the code only speaks :class:`Storage`, so an object store (S3, MinIO,
OSS) can replace :class:`LocalStorage` by implementing the same few methods and
being installed as ``app.extensions["lms_media_storage"]``.

Keys are content addresses, ``ab/cd/<sha256>``: the same bytes always land on the
same key, which is what makes deduplication and concurrent identical uploads safe
(two writers of one key write the same content).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app

#: Bytes per read/write when copying streams (large enough to keep syscalls rare).
CHUNK = 1024 * 1024


def key_for(sha256: str) -> str:
    """The storage key of content with this digest."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class Storage(Protocol):
    """What the media services need from a storage backend."""

    def save(self, key: str, stream: BinaryIO) -> str:
        """Store everything readable from ``stream`` under ``key``; returns the key."""

    def save_file(self, key: str, path: Path) -> str:
        """Take ownership of the local file ``path`` (moved, not copied, where possible)."""

    def open(self, key: str) -> BinaryIO:
        """A seekable binary file object for reading; the caller closes it."""

    def size(self, key: str) -> int:
        """Size in bytes; ``FileNotFoundError`` if absent."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; absent objects are ignored."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the object, or ``None`` for remote backends."""

    def spool_dir(self) -> Path:
        """A local folder for uploads in progress (same filesystem as the store, if local)."""


class LocalStorage:
    """Files under one folder: ``<root>/ab/cd/<sha256>``, uploads spooled in ``<root>/.incoming``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key escapes the media folder: {key!r}")
        return path

    def spool_dir(self) -> Path:
        folder = self.root / ".incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def save(self, key: str, stream: BinaryIO) -> str:
        fd, tmp = tempfile.mkstemp(dir=self.spool_dir(), prefix="save-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            return self.save_file(key, Path(tmp))
        finally:
            Path(tmp).unlink(missing_ok=True)

    def save_file(self, key: str, path: Path) -> str:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o644)
        # os.replace is atomic on one filesystem: a reader never sees half a file.
        # Across filesystems (a spool elsewhere) fall back to copy-then-rename.
        try:
            os.replace(path, target)
        except OSError:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".copy-")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
            Path(path).unlink(missing_ok=True)
        return key

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def media_dir(app: Flask) -> Path:
    """``LMS_MEDIA_DIR`` or ``<instance>/media``."""
    configured = app.config.get("LMS_MEDIA_DIR")
    return Path(configured) if configured else Path(app.instance_path) / "media"


def get_storage(app: Flask | None = None) -> Storage:
    """The application's storage backend (a :class:`LocalStorage` unless replaced)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    storage = app.extensions.get("lms_media_storage")
    if storage is None:
        storage = LocalStorage(media_dir(app))
        app.extensions["lms_media_storage"] = storage
    return storage
