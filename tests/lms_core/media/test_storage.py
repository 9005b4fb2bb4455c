"""The local content-addressed store."""

from __future__ import annotations

import hashlib
import io

import pytest

from lms_core.media.storage import LocalStorage, key_for


def test_save_open_size_delete(tmp_path):
    store = LocalStorage(tmp_path / "media")
    data = b"x" * 3_000_000
    sha = hashlib.sha256(data).hexdigest()
    key = store.save(key_for(sha), io.BytesIO(data))
    assert key == f"{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.exists(key) and store.size(key) == len(data)
    assert store.local_path(key) == (tmp_path / "media" / key).resolve()
    with store.open(key) as fh:
        fh.seek(2_999_990)
        assert fh.read() == b"x" * 10
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # absent: ignored
    assert list((tmp_path / "media" / ".incoming").iterdir()) == []


def test_save_file_moves_the_spool_file(tmp_path):
    store = LocalStorage(tmp_path / "media")
    spool = store.spool_dir() / "upload-1"
    spool.write_bytes(b"content")
    key = store.save_file(key_for("ab" * 32), spool)
    assert not spool.exists() and store.size(key) == 7


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "abc"])
def test_keys_are_checked(tmp_path, bad):
    store = LocalStorage(tmp_path / "media")
    with pytest.raises(ValueError):
        key_for(bad)
    if bad.startswith(".."):
        with pytest.raises(ValueError):
            store.open(bad)
