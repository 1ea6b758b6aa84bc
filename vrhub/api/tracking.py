"""GET /api/tracking/solver.json: the face solver's matrices, so browsers solve exactly like Python.

``setup_tracking_routes(app)`` registers the route and its OpenAPI fragment. The matrices are built
once per process, on the first request, in a worker thread (about a second: the rig computes its 52
blendshapes on the canonical face), then served from memory with an ETag, gzip-compressed when the
client accepts it (about 430 KB of JSON, 50 KB compressed).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from vrhub.api.errors import ApiError

OPENAPI_FRAGMENT = Path(__file__).with_name("openapi_tracking.yaml")


@dataclass(frozen=True)
class SolverPayload:
    body: bytes
    gzipped: bytes
    etag: str


class _SolverCache:
    def __init__(self) -> None:
        self.payload: SolverPayload | None = None
        self.lock = asyncio.Lock()

    async def get(self) -> SolverPayload:
        if self.payload is None:
            async with self.lock:
                if self.payload is None:
                    self.payload = await asyncio.to_thread(_build_payload)
        return self.payload


solver_cache_key = web.AppKey("tracking_solver_cache", _SolverCache)


def _build_payload() -> SolverPayload:
    from vrhub.tracking.solver import solver_matrices_json  # noqa: PLC0415 - heavy, built on demand

    body = solver_matrices_json().encode()
    return SolverPayload(body, gzip.compress(body, 6), '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


async def solver_json(request: web.Request) -> web.Response:
    try:
        payload = await request.app[solver_cache_key].get()
    except Exception as exc:  # the rig or the canonical face is missing: say what, not a traceback
        raise ApiError(
            503,
            "solver_unavailable",
            f"The face solver could not be prepared: {exc}",
            {"type": type(exc).__name__},
        ) from exc
    headers = {"ETag": payload.etag, "Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == payload.etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=payload.gzipped, content_type="application/json", headers=headers)
    return web.Response(body=payload.body, content_type="application/json", headers=headers)


def setup_tracking_routes(app: web.Application) -> None:
    """Add GET /api/tracking/solver.json and its OpenAPI paths."""
    from vrhub.api import openapi_fragments_key  # noqa: PLC0415

    app[solver_cache_key] = _SolverCache()
    app.router.add_get("/api/tracking/solver.json", solver_json)
    app.setdefault(openapi_fragments_key, []).append(OPENAPI_FRAGMENT)
