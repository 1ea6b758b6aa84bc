"""Shared helpers for the rooms tests: a real aiohttp hub on a free port with given settings."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vrhub.appkeys import rooms_key, settings_key
from vrhub.config import Settings
from vrhub.rooms.hub import RoomHub
from vrhub.rooms.web import setup_rooms


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningHub:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def hub(self) -> RoomHub:
        return self.runner.app[rooms_key]  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def running_hub(tmp_path: Any = "/tmp/vrhub-rooms-test", **settings: Any) -> AsyncIterator[RunningHub]:
    """Serve only the rooms (setup_rooms on a bare app) with ``Settings(**settings)``."""
    extra = settings.pop("extra", {})
    app = web.Application()
    app[settings_key] = Settings(var_dir=tmp_path, extra=extra, **settings)
    setup_rooms(app)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningHub(runner, port)
    finally:
        await runner.cleanup()
