"""Content-addressed blob store: a file per sha256, at ``<root>/ab/abcdef...``.

Keys are 64 lowercase hex characters and are checked before any path is made from them, so no
path is ever built from user input. Writes go to a temporary file in the same folder and are
renamed into place, so a reader never sees half a blob and a crash leaves no partial file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_KEY = re.compile(r"[0-9a-f]{64}")


class BlobError(Exception):
    """A blob could not be stored or found; ``code`` is machine-readable."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class BlobTooLarge(BlobError):
    pass


class BlobNotFound(BlobError):
    pass


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def valid_key(key: object) -> bool:
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


@dataclass
class BlobStore:
    """Blobs under ``root``; ``max_bytes`` bounds one blob."""

    root: Path
    max_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file of ``key``; raises BlobError for anything but 64 hex characters."""
        if not valid_key(key):
            raise BlobError(f"not a blob key: {str(key)[:80]!r}", "bad_blob_key")
        return self.root / key[:2] / key

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its key."""
        if len(data) > self.max_bytes:
            raise BlobTooLarge(
                f"blob of {len(data)} bytes is over the limit of {self.max_bytes} bytes", "blob_too_large"
            )
        key = blob_key(data)
        target = self.path(key)
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key}", "blob_not_found") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> bool:
        """Remove ``key``; False if it was not there."""
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key}", "blob_not_found") from None

    def health(self) -> dict[str, object]:
        """Write, read back and remove a probe file; report free space."""
        probe = f"health-{os.getpid()}-{os.urandom(4).hex()}".encode()
        try:
            key = self.put(probe)
            ok = self.get(key) == probe
            self.delete(key)
            stat = os.statvfs(self.root)
            return {"ok": ok, "free_bytes": stat.f_bavail * stat.f_frsize}
        except OSError as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
