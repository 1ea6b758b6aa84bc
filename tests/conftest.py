"""Shared fixtures: settings in a temporary var folder, a migrated database, the hub as a real
aiohttp test server, and the shared photos (../shared/data, skipped cleanly when absent)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hub_test_stages import FIXTURE_PLUGINS, FIXTURE_STAGE_TEXT

from vrhub.config import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
FACES = SHARED_DATA / "faces"
ASTRONAUT = FACES / "skimage_astronaut_eileen_collins.png"
#: For tests that need a real shared photo: a clone without ../shared skips them.
needs_photos = pytest.mark.skipif(not ASTRONAUT.is_file(), reason="../shared/data is not present")


def builtin_stages_present() -> bool:
    """True once every builtin stage module exists (the real pipeline can run)."""
    from importlib.util import find_spec

    from vrhub.pipeline.plugins import DEFAULT_PLUGINS

    return all(find_spec(name) is not None for name in DEFAULT_PLUGINS)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def real_photo_bytes(shared_data: Path) -> bytes:
    """A real portrait (NASA astronaut Eileen Collins, public domain), PNG bytes."""
    return ASTRONAUT.read_bytes()


@pytest.fixture
def hub_settings(tmp_path: Path) -> Settings:
    """Settings in a fresh var folder; builds run in a thread of the hub (job_workers=0)."""
    return Settings(
        var_dir=tmp_path / "var",
        job_workers=0,
        secret="test-secret",
        redis_url="",
        stages="",
        job_lease_seconds=30.0,
    )


@pytest.fixture
async def migrated_settings(hub_settings: Settings) -> Settings:
    from vrhub.db.engine import upgrade

    await upgrade(hub_settings.database_url)
    return hub_settings


@pytest.fixture
def make_client(aiohttp_client: Any, migrated_settings: Settings) -> Callable[..., Any]:
    """``await make_client(plugin_modules=..., **setting_overrides)`` -> aiohttp TestClient of the hub."""
    import dataclasses

    from vrhub.app import make_app

    async def make(plugin_modules: tuple[str, ...] | None = FIXTURE_PLUGINS, **overrides: Any) -> Any:
        if plugin_modules == FIXTURE_PLUGINS:
            overrides.setdefault("stages", FIXTURE_STAGE_TEXT)
        settings = dataclasses.replace(migrated_settings, **overrides)
        return await aiohttp_client(make_app(settings, plugin_modules=plugin_modules))

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> Any:
    """The hub with the fixture stage plugins."""
    return await make_client()


async def stored_avatar_ids(client: Any) -> list[str]:
    """Ids of the avatars in the hub's database, newest first (straight from the DB: the listing
    endpoint needs the admin key)."""
    from vrhub.appkeys import db_key
    from vrhub.db import avatars as queries

    rows, _ = await queries.list_avatars(client.server.app[db_key], limit=100)
    return [row.id for row in rows]


async def wait_for_avatar(client: Any, avatar_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll GET /api/avatars/{id} until it is ready or failed."""
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.get(f"/api/avatars/{avatar_id}")
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if body["status"] in ("ready", "failed"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"avatar {avatar_id} still {body['status']} after {timeout} s: {body}")
        await asyncio.sleep(0.1)


async def upload(client: Any, data: bytes, filename: str = "photo.png", **fields: str) -> Any:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("photo", data, filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        form.add_field(name, value)
    return await client.post("/api/avatars", data=form)


@pytest.fixture
def tiny_photo_bytes() -> bytes:
    """A small synthetic PNG with texture (the fixture detect stage sees a 'face' in any non-flat image)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def flat_photo_bytes() -> bytes:
    """A flat grey PNG: the fixture detect stage finds no face in it."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 80), (128, 128, 128)).save(buf, "PNG")
    return buf.getvalue()
