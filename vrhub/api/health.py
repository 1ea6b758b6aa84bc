"""GET /api/health: is the database reachable, can the blob store write, is Redis up (when configured)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from sqlalchemy import text

import vrhub
from vrhub.appkeys import blobs_key, engine_key, redis_key, settings_key

routes = web.RouteTableDef()


async def _timed(check: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        result = await asyncio.wait_for(check, 5.0)
    except Exception as exc:  # noqa: BLE001 - a failing dependency is a report, not a crash
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return result


async def _db(app: web.Application) -> dict[str, Any]:
    async with app[engine_key].connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"ok": True, "backend": app[engine_key].dialect.name}


async def _blobs(app: web.Application) -> dict[str, Any]:
    return await asyncio.to_thread(app[blobs_key].health)


async def _redis(app: web.Application) -> dict[str, Any]:
    return {"ok": bool(await app[redis_key].ping())}


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    app = request.app
    checks = {"db": await _timed(_db(app)), "blobs": await _timed(_blobs(app))}
    if app[settings_key].redis_url:
        checks["redis"] = (
            await _timed(_redis(app)) if redis_key in app else {"ok": False, "error": "not connected"}
        )
    ok = all(c.get("ok") for c in checks.values())
    body = {"status": "ok" if ok else "degraded", "version": vrhub.__version__, "checks": checks}
    return web.json_response(body, status=200 if ok else 503)
