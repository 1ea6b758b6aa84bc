"""GET /api/plugins: every stage implementation, with its plugin, version, origin and whether it is the default."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vrhub.appkeys import plugin_manager_key, registry_key
from vrhub.pipeline.plugins import StageRegistry
from vrhub.pipeline.types import SLOTS

routes = web.RouteTableDef()


def describe_registry(registry: StageRegistry) -> list[dict[str, Any]]:
    """One row per implementation, slots in pipeline order."""
    return [
        {**impl.describe(), "default": registry.defaults.get(impl.slot) == impl.name}
        for impl in registry.all()
    ]


@routes.get("/api/plugins")
async def list_plugins(request: web.Request) -> web.Response:
    registry = request.app[registry_key]
    pm = request.app[plugin_manager_key]
    return web.json_response(
        {
            "slots": list(SLOTS),
            "defaults": dict(registry.defaults),
            "stages": describe_registry(registry),
            "plugins": sorted(name for name, _ in pm.list_name_plugin()),
        }
    )
