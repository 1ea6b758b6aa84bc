"""The aiohttp application factory: one cleanup_ctx per resource, routes, plugins, static files.

Resources, in start order: database (engine + sessionmaker; refuses to start on an unmigrated
database), blob store, Redis (when configured), job runner (local pool, or arq when Redis is
configured), rooms (vrhub.rooms.web). Each is a bare async generator, so teardown runs only for
what started.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web

import vrhub
from vrhub.api import setup_routes
from vrhub.api.errors import ApiError, error_middleware, max_upload_key
from vrhub.api.ratelimit import TokenBuckets
from vrhub.api.tracking import setup_tracking_routes
from vrhub.appkeys import (
    blobs_key,
    db_key,
    engine_key,
    jobs_key,
    plugin_manager_key,
    plugin_modules_key,
    redis_key,
    registry_key,
    rooms_key,
    settings_key,
    upload_limit_key,
)
from vrhub.blobs import BlobStore
from vrhub.config import Settings
from vrhub.db.engine import current_revision, head_revision, make_engine, make_sessionmaker
from vrhub.jobs.build import load_plugins
from vrhub.pipeline.plugins import parse_selection

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web")
#: npm packages the web client loads, served read-only under /vendor/<package>/.
VENDOR_PACKAGES = ("three", "@mediapipe/face_mesh", "@pixiv/three-vrm")


def node_modules_dir(settings: Settings) -> Path:
    return settings.node_modules or Path(vrhub.__file__).resolve().parents[1] / "node_modules"


# --- resources --------------------------------------------------------------------------------


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    engine = make_engine(settings.database_url)
    try:
        current = await current_revision(engine)
        head = head_revision()
        if current != head:
            raise RuntimeError(
                f"the database {engine.url.render_as_string(hide_password=True)} is at revision {current}, "
                f"this vrhub needs {head}: run `vrhub migrate`"
            )
    except BaseException:
        await engine.dispose()
        raise
    app[engine_key] = engine
    app[db_key] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def blobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    assert settings.blob_dir is not None
    app[blobs_key] = BlobStore(settings.blob_dir)
    yield


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    from redis.asyncio import Redis

    client = Redis.from_url(app[settings_key].redis_url)
    app[redis_key] = client
    yield
    await client.aclose()


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    from vrhub.jobs.runner import JobRunner

    settings = app[settings_key]
    runner = JobRunner(
        settings,
        app[db_key],
        app[blobs_key],
        plugin_modules=app[plugin_modules_key],
        poll=not settings.redis_url,
    )
    runner.on_finished.append(_announce_to_room(app))
    app[jobs_key] = runner
    await runner.start()
    queue = None
    if settings.redis_url:
        from vrhub.jobs.arq_backend import ArqQueue

        queue = ArqQueue(settings, runner)
        await queue.start()
    try:
        yield
    finally:
        if queue is not None:
            await queue.stop()
        await runner.stop()


def _announce_to_room(app: web.Application):  # type: ignore[no-untyped-def]
    async def announce(avatar, outcome) -> None:  # type: ignore[no-untyped-def]
        if avatar.room and outcome.get("status") == "ready" and rooms_key in app:
            await app[rooms_key].avatar_ready(avatar.room, avatar.id, f"/api/avatars/{avatar.id}.glb")

    return announce


# --- static files -----------------------------------------------------------------------------


#: Route names of the static file routes (not part of the API document).
STATIC_ROUTE_PREFIX = "static:"


def static_files(root: Path, *, index_file: str | None = None):  # type: ignore[no-untyped-def]
    """A GET handler serving files under ``root`` (read-only). The requested path is resolved and
    must stay inside ``root``; hidden files are never served; misses are JSON 404s."""
    root = root.resolve()

    async def handler(request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        if not tail and index_file:
            tail = index_file
        parts = [p for p in tail.split("/") if p]
        if any(p.startswith(".") for p in parts):
            raise ApiError(404, "not_found", f"There is nothing at {request.path}.")
        target = root.joinpath(*parts).resolve() if parts else root
        if not target.is_relative_to(root) or not target.is_file():
            if not (WEB_DIR / "index.html").is_file() and request.path == "/":
                raise ApiError(
                    404, "no_web_client", "The web client is not installed (vrhub/web/index.html)."
                )
            raise ApiError(404, "not_found", f"There is nothing at {request.path}.")
        return web.FileResponse(target, headers={"Cache-Control": "no-cache"})

    return handler


def setup_static(app: web.Application, settings: Settings) -> None:
    """The web client at / and the npm packages it loads at /vendor/<package>/."""
    modules = node_modules_dir(settings)
    for package in VENDOR_PACKAGES:
        folder = modules / package
        if folder.is_dir():
            app.router.add_get(
                f"/vendor/{package}/{{tail:.*}}",
                static_files(folder),
                name=STATIC_ROUTE_PREFIX + re.sub(r"\W", "_", package),
            )
    app.router.add_get(
        "/{tail:(?!api/).*}", static_files(WEB_DIR, index_file="index.html"), name=f"{STATIC_ROUTE_PREFIX}web"
    )


# --- the factory ------------------------------------------------------------------------------


def make_app(
    settings: Settings | None = None, *, plugin_modules: Sequence[str] | None = None
) -> web.Application:
    """The hub. ``plugin_modules``: register only these stage plugin modules (tests); default:
    the builtin plugins and the ``vrhub`` entry points."""
    settings = settings or Settings.from_env()
    modules = None if plugin_modules is None else tuple(plugin_modules)
    pm, registry = load_plugins(modules, parse_selection(settings.stages))
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=settings.max_upload_bytes + 1024 * 1024,
    )
    app[settings_key] = settings
    app[max_upload_key] = settings.max_upload_bytes
    app[plugin_manager_key] = pm
    app[registry_key] = registry
    app[plugin_modules_key] = modules
    app[upload_limit_key] = TokenBuckets(settings.upload_rate_per_minute)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(blobs_ctx)
    if settings.redis_url:
        app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(jobs_ctx)
    setup_routes(app)
    setup_tracking_routes(app)
    _setup_rooms(app)
    pm.hook.startup(app=app)
    setup_static(app, settings)
    return app


def _setup_rooms(app: web.Application) -> None:
    from vrhub.api import openapi_fragments_key
    from vrhub.rooms.web import setup_rooms

    setup_rooms(app)
    app[openapi_fragments_key].append(Path(__file__).parent / "api" / "openapi_rooms.yaml")


def run_server(settings: Settings, *, plugin_modules: Sequence[str] | None = None) -> None:
    """Serve until interrupted (uvloop when installed)."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        loop_factory = asyncio.new_event_loop
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    app = make_app(settings, plugin_modules=plugin_modules)
    web.run_app(app, host=settings.host, port=settings.port, loop=loop, access_log=None)
