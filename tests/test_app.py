"""The app factory: health, JSON errors for every 4xx/5xx (aiohttp's own included), static files,
plugin listing, and refusing to start on an unmigrated database."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hub_test_stages import FIXTURE_PLUGINS, FIXTURE_STAGE_TEXT

from vrhub.app import make_app
from vrhub.config import Settings


def _is_error_json(body: Any) -> bool:
    return isinstance(body, dict) and set(body["error"]) == {"code", "message", "detail"}


async def test_health_reports_database_and_blob_store(client: Any) -> None:
    resp = await client.get("/api/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["checks"]["db"]["ok"] and body["checks"]["db"]["backend"] == "sqlite"
    assert body["checks"]["blobs"]["ok"]
    assert "redis" not in body["checks"]


needs_redis_bus = pytest.mark.skipif(
    importlib.util.find_spec("vrhub.rooms.redis_bus") is None,
    reason="the rooms area's Redis bus (vrhub/rooms/redis_bus.py) is not in this tree yet",
)


@needs_redis_bus
@pytest.mark.redis
async def test_health_reports_redis_when_configured(make_client: Any) -> None:
    client = await make_client(redis_url="redis://127.0.0.1:6379/0")
    body = await (await client.get("/api/health")).json()
    assert body["checks"]["redis"]["ok"] is True


@needs_redis_bus
async def test_health_is_503_when_redis_is_unreachable(make_client: Any) -> None:
    client = await make_client(redis_url="redis://127.0.0.1:1/0")
    resp = await client.get("/api/health")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "degraded" and body["checks"]["redis"]["ok"] is False


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/nothing-here", 404, "not_found"),
        ("GET", "/no/such/page", 404, "not_found"),
        ("POST", "/api/health", 405, "method_not_allowed"),
        ("GET", "/api/avatars/" + "0" * 32, 404, "avatar_not_found"),
        ("GET", "/api/avatars/not-an-id", 404, "not_found"),
        ("GET", "/vendor/three/../../../etc/passwd", 404, "not_found"),
        ("GET", "/.git/config", 404, "not_found"),
    ],
)
async def test_every_error_is_json_with_code_message_detail(
    client: Any, method: str, path: str, status: int, code: str
) -> None:
    resp = await client.request(method, path)
    assert resp.status == status
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert _is_error_json(body) and body["error"]["code"] == code


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/avatars?limit=0", "bad_limit"),
        ("/api/avatars?limit=x", "bad_limit"),
        ("/api/avatars?cursor=garbage", "bad_cursor"),
    ],
)
async def test_bad_listing_queries_are_json_400s(make_client: Any, path: str, code: str) -> None:
    client = await make_client(admin_key="adm1n")
    resp = await client.get(path, headers={"Authorization": "Bearer adm1n"})
    assert resp.status == 400 and resp.content_type == "application/json"
    body = await resp.json()
    assert _is_error_json(body) and body["error"]["code"] == code


async def test_an_unexpected_exception_is_a_json_500_without_traceback(make_client: Any) -> None:
    from vrhub import hookimpl
    from vrhub.jobs.build import load_plugins

    class Crashing:
        @hookimpl
        def startup(self, app: web.Application) -> None:
            async def boom(request: web.Request) -> web.Response:
                raise KeyError("secret internals")

            app.router.add_get("/api/boom", boom)

    pm, _ = load_plugins(FIXTURE_PLUGINS)
    plugin = Crashing()
    pm.register(plugin, name="crashing")
    try:
        client = await make_client()
        resp = await client.get("/api/boom")
    finally:
        pm.unregister(plugin)
    assert resp.status == 500
    text = await resp.text()
    assert "Traceback" not in text and "secret internals" not in text
    assert (await resp.json())["error"]["code"] == "internal_error"


async def test_plugins_lists_slot_name_plugin_version_origin_default(client: Any) -> None:
    body = await (await client.get("/api/plugins")).json()
    assert body["slots"][0] == "detect" and body["slots"][-1] == "export"
    rows = {(r["slot"], r["name"]): r for r in body["stages"]}
    fixture = rows[("detect", "fixture")]
    assert fixture["plugin"] == "hub_test_stages" and fixture["version"] == "0.0-test"
    assert fixture["default"] is True and rows[("detect", "raises")]["default"] is False
    assert {"slot", "name", "plugin", "version", "origin", "default"} <= set(fixture)


async def test_web_client_and_vendor_packages_are_served(client: Any) -> None:
    from vrhub.app import WEB_DIR

    resp = await client.get("/")
    if (WEB_DIR / "index.html").is_file():
        assert resp.status == 200 and resp.content_type == "text/html"
    else:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "no_web_client"
    resp = await client.get("/vendor/three/package.json")
    assert resp.status == 200
    assert (await resp.json())["name"] == "three"
    assert (await client.post("/vendor/three/package.json")).status == 405


async def test_hub_refuses_to_start_on_an_unmigrated_database(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", job_workers=0)
    settings.stages = FIXTURE_STAGE_TEXT
    with pytest.raises(RuntimeError, match="vrhub migrate"):
        await aiohttp_client(make_app(settings, plugin_modules=FIXTURE_PLUGINS))
