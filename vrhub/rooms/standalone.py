"""Serve only the rooms (no avatars, no database): ``python -m vrhub.rooms.standalone --port 8081``.

For multi-process tests and the relay benchmark; settings come from VRHUB_* like ``vrhub serve``,
with the flags below on top. Runs on uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import resource
from typing import Any

from aiohttp import web

from vrhub.appkeys import settings_key
from vrhub.config import Settings
from vrhub.rooms.web import setup_rooms


def make_rooms_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[settings_key] = settings
    setup_rooms(app)
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m vrhub.rooms.standalone", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--redis", default=None, help="Redis URL for scale-out (default: VRHUB_REDIS_URL)")
    ap.add_argument(
        "--prefix", default=None, help="Redis key/channel prefix (default: VRHUB_REDIS_PREFIX or vrhub)"
    )
    ap.add_argument("--presence-ttl", type=float, default=None)
    ap.add_argument("--presence-interval", type=float, default=1.0)
    ap.add_argument("--tick-hz", type=float, default=None)
    ap.add_argument("--max-participants", type=int, default=None)
    ap.add_argument("--max-fps", type=float, default=None)
    ap.add_argument("--secret", default=None)
    ap.add_argument("--heartbeat", type=float, default=None, help="websocket ping interval, seconds")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--no-fast-reader", action="store_true", help="read every frame through aiohttp's queue")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    overrides: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.redis is not None:
        overrides["redis_url"] = args.redis
    if args.tick_hz is not None:
        overrides["room_tick_hz"] = args.tick_hz
    if args.max_participants is not None:
        overrides["room_max_participants"] = args.max_participants
    if args.max_fps is not None:
        overrides["room_max_frames_per_second"] = args.max_fps
    if args.secret is not None:
        overrides["secret"] = args.secret
    settings = Settings.from_env(**overrides)
    if args.prefix is not None:
        settings.redis_prefix = args.prefix
    if args.presence_ttl is not None:
        settings.room_presence_ttl = args.presence_ttl
    settings.extra["room_presence_interval"] = args.presence_interval
    if args.no_fast_reader:
        settings.extra["room_fast_reader"] = False
    if args.heartbeat is not None:
        settings.extra["room_heartbeat"] = args.heartbeat
    with contextlib.suppress(ValueError, OSError):  # many sockets: raise the open-files limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    web.run_app(
        make_rooms_app(settings),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        shutdown_timeout=2.0,
    )


if __name__ == "__main__":
    main()
