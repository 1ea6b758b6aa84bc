"""Typed aiohttp AppKeys, and nothing else (so any module may import them without cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy
from aiohttp import web

from vrhub.config import Settings
from vrhub.pipeline.plugins import StageRegistry

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

    from vrhub.api.ratelimit import TokenBuckets
    from vrhub.blobs import BlobStore
    from vrhub.jobs.runner import JobRunner
    from vrhub.rooms.hub import RoomHub

settings_key = web.AppKey("settings", Settings)
plugin_manager_key = web.AppKey("plugin_manager", pluggy.PluginManager)
registry_key = web.AppKey("registry", StageRegistry)
engine_key: web.AppKey["AsyncEngine"] = web.AppKey("engine")
db_key: web.AppKey["async_sessionmaker[Any]"] = web.AppKey("db")
blobs_key: web.AppKey["BlobStore"] = web.AppKey("blobs")
jobs_key: web.AppKey["JobRunner"] = web.AppKey("jobs")
rooms_key: web.AppKey["RoomHub"] = web.AppKey("rooms")
upload_limit_key: web.AppKey["TokenBuckets"] = web.AppKey("upload_limit")

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: Redis client (rooms bus, health) when VRHUB_REDIS_URL is set.
redis_key: web.AppKey["Redis"] = web.AppKey("redis")
#: Stage plugin modules the app was made with (None: builtins + entry points).
plugin_modules_key: web.AppKey[tuple[str, ...] | None] = web.AppKey("plugin_modules")
