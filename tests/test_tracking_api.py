"""GET /api/tracking/solver.json on a real hub: the browser's solver matrices, cached and compressed."""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

import numpy as np
import pytest
from hub_test_stages import FIXTURE_PLUGINS, FIXTURE_STAGE_TEXT

from vrhub.pipeline.types import ARKIT_BLENDSHAPES
from vrhub.tracking.solver import default_solver_matrices, solver_matrices_from_dict


@pytest.fixture
async def hub(aiohttp_client: Any, migrated_settings: Any) -> Any:
    from vrhub.app import make_app

    settings = dataclasses.replace(migrated_settings, stages=FIXTURE_STAGE_TEXT)
    app = make_app(settings, plugin_modules=FIXTURE_PLUGINS)
    if not any(r.resource.canonical == "/api/tracking/solver.json" for r in app.router.routes()):
        from vrhub.api.tracking import setup_tracking_routes  # until make_app wires it in

        setup_tracking_routes(app)
    return await aiohttp_client(app)


async def test_solver_json_is_served_gzipped_with_an_etag(hub: Any) -> None:
    resp = await hub.get(
        "/api/tracking/solver.json", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Content-Encoding"] == "gzip"
    raw = await resp.read()
    assert len(raw) < 200_000
    data = json.loads(gzip.decompress(raw))
    assert data["format"] == "vrhub-solver/1" and data["names"] == list(ARKIT_BLENDSHAPES)
    m = solver_matrices_from_dict(data)
    ref = default_solver_matrices()
    assert np.allclose(m.gram, ref.gram, atol=1e-8) and np.allclose(m.projector, ref.projector, atol=1e-8)
    etag = resp.headers["ETag"]
    again = await hub.get("/api/tracking/solver.json", headers={"If-None-Match": etag})
    assert again.status == 304


async def test_solver_json_without_gzip_and_in_the_openapi_document(hub: Any) -> None:
    resp = await hub.get("/api/tracking/solver.json", headers={"Accept-Encoding": "identity"})
    assert resp.status == 200 and "Content-Encoding" not in resp.headers
    assert (await resp.json())["unit_mm"] == 10.0
    doc = await (await hub.get("/api/openapi.json")).json()
    assert "get" in doc["paths"]["/api/tracking/solver.json"]
