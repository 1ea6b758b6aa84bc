"""The blob store names blobs by sha256, writes atomically, enforces its size limit and never
builds a path from anything but a 64-hex key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vrhub.blobs import BlobError, BlobNotFound, BlobStore, BlobTooLarge


def test_put_names_the_blob_by_its_sha256_under_a_two_letter_folder(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"an avatar, say"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.path(key) == tmp_path / "blobs" / key[:2] / key
    assert store.get(key) == data and store.exists(key) and store.size(key) == len(data)


def test_put_is_idempotent_and_delete_removes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    key = store.put(b"x" * 10)
    assert store.put(b"x" * 10) == key
    assert store.delete(key) is True
    assert store.delete(key) is False
    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.get(key)


def test_a_blob_over_the_limit_is_refused_and_leaves_no_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_bytes=100)
    with pytest.raises(BlobTooLarge):
        store.put(b"y" * 101)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "ab",
        "A" * 64,
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "/" + "0" * 63,
        "",
        None,
        "0" * 32 + "/" + "0" * 31,
    ],
)
def test_anything_but_64_lowercase_hex_is_not_a_key(tmp_path: Path, key: object) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(BlobError):
        store.path(key)  # type: ignore[arg-type]
    with pytest.raises(BlobError):
        store.get(key)  # type: ignore[arg-type]


def test_no_temporary_file_is_left_after_writes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    for i in range(5):
        store.put(f"blob {i}".encode())
    leftovers = [p for p in tmp_path.rglob(".tmp-*")]
    assert leftovers == []


def test_health_writes_reads_and_cleans_up(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    report = store.health()
    assert report["ok"] is True and report["free_bytes"] > 0
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
