"""/api/openapi.json documents exactly the routes the app serves (methods included)."""

from __future__ import annotations

import re
from typing import Any

from vrhub.app import STATIC_ROUTE_PREFIX

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _app_routes(app: Any) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or (route.name or "").startswith(STATIC_ROUTE_PREFIX):
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        # "{id:[0-9a-f]{32}}" in aiohttp is "{id}" in OpenAPI.
        path = re.sub(r"\{(\w+):[^/]*?\}(?=$|/|\.)", r"{\1}", path)
        routes.add((route.method.lower(), path))
    return routes


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in HTTP_METHODS}


async def test_openapi_document_and_routes_agree(client: Any) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    served = _app_routes(client.server.app)
    documented = _documented(doc)
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented routes the app does not serve"


async def test_every_reference_in_the_document_resolves(client: Any) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    for ref in refs:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"unresolved {ref}"
            node = node[part]


async def test_every_operation_has_an_id_and_responses(client: Any) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    ids = []
    for item in doc["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert op.get("responses"), op
                ids.append(op["operationId"])
    assert len(ids) == len(set(ids))
