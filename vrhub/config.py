"""Settings (a dataclass) read from VRHUB_* environment variables and an optional TOML file.

Precedence: explicit keyword arguments > environment > TOML file (``VRHUB_CONFIG`` or ./vrhub.toml) > defaults.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Working folder for the embedded database and the blob store.
    var_dir: Path = Path("var")
    #: SQLAlchemy async URL; default ``sqlite+aiosqlite:///<var_dir>/vrhub.db``.
    database_url: str = ""
    #: Blob store root; default ``<var_dir>/blobs``.
    blob_dir: Path | None = None
    #: Redis for room scale-out and the arq job queue; empty = single hub, local jobs.
    redis_url: str = ""
    #: HMAC key for room tokens and owner tokens. Generated per process when unset (tokens then
    #: do not survive a restart: set it in production).
    secret: str = ""
    #: Key for admin endpoints (room tokens, the avatar listing); empty disables them.
    admin_key: str = ""
    #: Default stage choices, e.g. ``"hair_model=braids,reconstruct=landmark_head"``.
    stages: str = ""
    keep_photos: bool = False
    #: After each build, render the avatar in the photo's pose and store the likeness NME (~0.3 s).
    measure_likeness: bool = True
    max_upload_bytes: int = 15 * 1024 * 1024
    #: Uploads per client address per minute, in a burst of as many (0 = no limit). A classroom
    #: behind one NAT shares one address: keep it above the class size.
    upload_rate_per_minute: float = 60.0
    #: Avatars waiting for or in a build at once; further uploads get 503 ``busy`` (0 = no limit).
    max_pending_builds: int = 500
    max_pixels: int = 40_000_000
    #: Local job runner: number of worker processes (0 = run in a thread of the hub; for tests).
    job_workers: int = 1
    #: Per-stage time limit, seconds.
    stage_timeout: float = 120.0
    #: A running job whose lease is older than this is taken to be interrupted and is retried.
    job_lease_seconds: float = 300.0
    job_max_attempts: int = 3
    #: Rooms: anyone may join without a token.
    open_rooms: bool = True
    room_tick_hz: float = 30.0
    room_max_participants: int = 64
    room_max_frames_per_second: float = 60.0
    room_idle_timeout: float = 60.0
    #: Seconds a participant that dropped (no ``leave``) is kept for a resume with the same id.
    room_resume_window: float = 15.0
    #: Unsent bytes over which a client skips ticks (its kernel send buffer is capped too).
    room_send_buffer_limit: int = 16 * 1024
    #: Redis scale-out: key/channel prefix, and the hub presence TTL in seconds.
    redis_prefix: str = "vrhub"
    room_presence_ttl: float = 5.0
    #: Where node_modules lives (three.js, @mediapipe/face_mesh); default: next to the project.
    node_modules: Path | None = None
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.var_dir = Path(self.var_dir)
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.var_dir / 'vrhub.db').as_posix()}"
        if self.blob_dir is None:
            self.blob_dir = self.var_dir / "blobs"
        self.blob_dir = Path(self.blob_dir)
        if not self.secret:
            self.secret = secrets.token_hex(32)
        if self.node_modules is not None:
            self.node_modules = Path(self.node_modules)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read the TOML file (if any), then VRHUB_<FIELD> variables, then ``overrides``."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        config_path = Path(env.get("VRHUB_CONFIG", "vrhub.toml"))
        if config_path.is_file():
            with config_path.open("rb") as fh:
                values.update(tomllib.load(fh).get("vrhub", {}))
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        for name in fields:
            raw = env.get(f"VRHUB_{name.upper()}")
            if raw is None:
                continue
            values[name] = raw
        values.update(overrides)
        converted: dict[str, Any] = {}
        for name, value in values.items():
            if name not in fields:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(sorted(fields))}")
            converted[name] = _convert(fields[name].type, value, name)
        return cls(**converted)


def _convert(type_name: Any, value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value
    t = str(type_name)
    try:
        if t == "bool":
            return _bool(value)
        if t == "int":
            return int(value)
        if t == "float":
            return float(value)
        if "Path" in t:
            return Path(value) if value else None
    except ValueError:
        raise ValueError(f"setting VRHUB_{name.upper()}={value!r} is not a valid {t}") from None
    return value
