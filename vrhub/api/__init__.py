"""HTTP API: one module per resource; ``setup_routes`` adds them all, plus the OpenAPI document."""

from __future__ import annotations

import functools
import weakref
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from vrhub.api import avatars, health, plugins

OPENAPI_YAML = Path(__file__).with_name("openapi.yaml")
#: Extra OpenAPI path documents merged into /api/openapi.json (other areas append theirs).
openapi_fragments_key = web.AppKey("openapi_fragments", list)


@functools.cache
def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def openapi_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document: api/openapi.yaml plus the fragments other areas registered."""
    doc = dict(_load_yaml(OPENAPI_YAML))
    doc["paths"] = dict(doc["paths"])
    components = {k: dict(v) for k, v in doc.get("components", {}).items()}
    for path in app.get(openapi_fragments_key, []):
        fragment = _load_yaml(Path(path))
        doc["paths"].update(fragment.get("paths", {}))
        for section, items in fragment.get("components", {}).items():
            components.setdefault(section, {}).update(items)
    doc["components"] = components
    return doc


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app))


def setup_routes(app: web.Application) -> None:
    app.setdefault(openapi_fragments_key, [])
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_routes(health.routes)
    app.router.add_routes(plugins.routes)
    app.router.add_routes(avatars.routes)
    app[avatars.export_locks_key] = weakref.WeakValueDictionary()
