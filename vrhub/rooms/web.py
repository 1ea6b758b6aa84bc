"""HTTP side of the rooms: the websocket endpoint, room tokens, participants, Prometheus metrics.

``setup_rooms(app)`` registers::

    GET  /api/rooms/{room}/ws       websocket (docs/protocol.md)
    POST /api/rooms/{room}/tokens   {"name", "role"?, "ttl"?} -> {"token", "expires"}; Authorization: Bearer <admin_key>
    GET  /api/rooms/{room}          {"room", "tick_hz", "participants": [...]}
    GET  /metrics                   Prometheus text format (a registry per app)

and a cleanup_ctx that creates the :class:`RoomHub` into ``app[rooms_key]`` (with the Redis bus when
``Settings.redis_url`` is set) plus an on_shutdown hook closing every socket with 1001 GOING_AWAY.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from vrhub.api.admin import admin_refusal
from vrhub.appkeys import rooms_key, settings_key
from vrhub.config import Settings
from vrhub.rooms import frame_reader
from vrhub.rooms.hub import Joined, RoomHub
from vrhub.rooms.metrics import make_registry
from vrhub.rooms.protocol import (
    EXPRESSION_FRAME_SIZE,
    KIND_EXPRESSION,
    PROTOCOL_VERSION,
    CloseCode,
    ProtocolError,
    check_expression_frame,
    decode_control,
    encode_control,
)
from vrhub.rooms.room import Participant, Room
from vrhub.rooms.tokens import (
    DEFAULT_TTL_S,
    MAX_TTL_S,
    ROLES,
    TokenClaims,
    TokenError,
    issue_token,
    verify_token,
)

log = logging.getLogger(__name__)

rooms_registry_key = web.AppKey("rooms_registry", CollectorRegistry)
rooms_sockets_key: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("rooms_sockets")

ROOM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Largest message the hub reads at all (aiohttp closes 1009 above it).
WS_READ_LIMIT = 64 * 1024
#: Largest message the hub accepts (closes 4413 above it). Expression frames are 74 bytes.
MAX_MESSAGE_BYTES = 4096
#: Protocol errors a client may make before it is closed with 4400.
MAX_VIOLATIONS = 32


def _error(status: int, code: str, message: str, detail: Any = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "detail": detail}}, status=status)


def _settings(app: web.Application) -> Settings:
    try:
        return app[settings_key]
    except KeyError:
        settings = Settings()
        app[settings_key] = settings
        return settings


def setup_rooms(app: web.Application) -> None:
    """Register the rooms routes, metrics and the RoomHub lifecycle on ``app``."""
    _settings(app)
    app.router.add_get("/api/rooms/{room}/ws", room_socket)
    app.router.add_post("/api/rooms/{room}/tokens", create_token)
    app.router.add_get("/api/rooms/{room}", room_info)
    app.router.add_get("/metrics", metrics)
    app[rooms_sockets_key] = weakref.WeakSet()
    app.cleanup_ctx.append(_rooms_ctx)
    app.on_shutdown.append(_close_sockets)


async def _rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    bus = None
    if settings.redis_url:
        from vrhub.rooms.redis_bus import RedisBus

        extra = settings.extra or {}
        bus = RedisBus(
            settings.redis_url,
            prefix=str(extra.get("redis_prefix", settings.redis_prefix)),
            ttl=float(extra.get("room_presence_ttl", settings.room_presence_ttl)),
            interval=float(extra.get("room_presence_interval", 1.0)),
        )
    hub = RoomHub(settings, bus=bus)
    await hub.start()
    app[rooms_key] = hub
    app[rooms_registry_key] = make_registry(hub)
    try:
        yield
    finally:
        await _close_sockets(app)
        await hub.close()


async def _close_sockets(app: web.Application) -> None:
    hub = app.get(rooms_key)
    if hub is not None:
        hub.closing = True
    sockets = list(app.get(rooms_sockets_key, ()))
    if sockets:
        await asyncio.gather(
            *(ws.close(code=CloseCode.GOING_AWAY, message=b"server shutting down") for ws in sockets),
            return_exceptions=True,
        )


# ----------------------------------------------------------------------------- HTTP handlers


async def room_info(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    if not ROOM_ID_RE.match(room_id):
        return _error(400, "bad_room", "room ids are 1-64 letters, digits, '_', '.', '-'")
    return web.json_response(request.app[rooms_key].snapshot(room_id))


async def create_token(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    room_id = request.match_info["room"]
    refused = admin_refusal(settings, request.headers, "issuing room tokens")
    if refused:
        return _error(*refused)
    if not ROOM_ID_RE.match(room_id):
        return _error(400, "bad_room", "room ids are 1-64 letters, digits, '_', '.', '-'")
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return _error(400, "bad_json", "request body must be JSON")
    if not isinstance(body, dict):
        return _error(400, "bad_json", "request body must be a JSON object")
    name = body.get("name", "")
    role = body.get("role", "participant")
    ttl = body.get("ttl", DEFAULT_TTL_S)
    if not isinstance(name, str) or len(name) > 64:
        return _error(400, "bad_name", "name must be a string of at most 64 characters")
    if role not in ROLES:
        return _error(400, "bad_role", f"role must be one of {', '.join(ROLES)}")
    if not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL_S:
        return _error(400, "bad_ttl", f"ttl must be seconds in (0, {MAX_TTL_S:g}]")
    token, exp = issue_token(settings.secret, room_id, name, role, float(ttl))
    return web.json_response({"token": token, "room": room_id, "name": name, "role": role, "expires": exp})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[rooms_registry_key])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# ----------------------------------------------------------------------------- websocket


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    await ws.close(code=code, message=reason.encode("utf-8")[:120])


async def room_socket(request: web.Request) -> web.StreamResponse:
    app = request.app
    hub = app[rooms_key]
    settings = app[settings_key]
    room_id = request.match_info["room"]
    if not ROOM_ID_RE.match(room_id):
        return _error(400, "bad_room", "room ids are 1-64 letters, digits, '_', '.', '-'")
    extra = settings.extra or {}
    # No websocket-level heartbeat by default: aiohttp's costs a loop callback per received chunk.
    # Liveness is the idle timeout (clients send frames or JSON pings; dead sockets go silent).
    heartbeat = float(extra.get("room_heartbeat", 0.0)) or None
    # timeout: how long close() waits for the client's close frame (a stalled client never sends one)
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=WS_READ_LIMIT, compress=False, timeout=2.0)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:  # small kernel send buffer: a stalled reader shows up in the transport buffer within ticks
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(extra.get("room_so_sndbuf", 32 * 1024)))
        except OSError:
            pass
    app[rooms_sockets_key].add(ws)
    if hub.closing:
        await _close(ws, CloseCode.GOING_AWAY, "hub is shutting down")
        return ws

    # -- who is this: token (query) or an open room
    token = request.query.get("token")
    claims: TokenClaims | None = None
    if token:
        checked = verify_token(settings.secret, token, room_id)
        if isinstance(checked, TokenError):
            await _close(ws, checked.close_code, checked.reason)
            return ws
        claims = checked
    elif not settings.open_rooms:
        await _close(ws, CloseCode.UNAUTHORIZED, "this hub needs a room token (?token=...)")
        return ws

    # -- hello
    hello = await _wait_hello(ws, float(extra.get("room_hello_timeout", 10.0)))
    if hello is None:
        return ws
    name = claims.name if claims is not None and claims.name else str(hello.get("name") or "guest")
    role = claims.role if claims is not None else "participant"
    joined = await hub.join(
        room_id,
        transport=transport,  # type: ignore[arg-type]
        ws=ws,
        name=name,
        avatar_id=hello.get("avatar_id"),
        role=role,
        resume=hello.get("resume"),
    )
    if not isinstance(joined, Joined):
        await _close(ws, joined.close_code, joined.reason)
        return ws
    room, p = joined.room, joined.participant
    room.send_json(
        p,
        encode_control(
            "welcome",
            participant=p.pid,
            room=room_id,
            name=p.name,
            role=p.role,
            tick_hz=hub.config.tick_hz,
            max_frames_per_second=hub.config.max_frames_per_second,
            idle_timeout=hub.config.idle_timeout,
            peers=room.peers(exclude=p.pid),
            resume_token=joined.resume_token,
            resumed=joined.resumed,
        ),
    )
    intake = FrameIntake(ws, hub, room, p)
    if extra.get("room_fast_reader", True):
        frame_reader.install(request, intake.frame, WS_READ_LIMIT)
    clean = False
    reason = "left"
    try:
        clean, reason = await _serve(ws, hub, room, p, intake)
    finally:
        if p.ws is ws:  # not replaced by a resumed connection
            hub.disconnected(room, p, clean=clean, reason=reason)
    return ws


async def _wait_hello(ws: web.WebSocketResponse, timeout: float) -> dict[str, Any] | None:
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        await _close(ws, CloseCode.TIMEOUT, f"no hello within {timeout:g} s")
        return None
    if msg.type != WSMsgType.TEXT:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return None
        await _close(ws, CloseCode.BAD_REQUEST, "the first message must be a JSON hello")
        return None
    if len(msg.data) > MAX_MESSAGE_BYTES:
        await _close(ws, CloseCode.TOO_LARGE, f"message over {MAX_MESSAGE_BYTES} bytes")
        return None
    parsed = decode_control(msg.data)
    if isinstance(parsed, ProtocolError):
        await _close(ws, CloseCode.BAD_REQUEST, f"{parsed.code}: {parsed.message}")
        return None
    if parsed["type"] != "hello":
        await _close(ws, CloseCode.BAD_REQUEST, f"the first message must be hello, got {parsed['type']}")
        return None
    return parsed


class FrameIntake:
    """Per-connection handling of incoming expression frames (sync: also called straight from the
    socket's data_received by :mod:`vrhub.rooms.frame_reader`)."""

    __slots__ = ("ws", "hub", "room", "p", "stats", "max_fps", "flood", "observer", "push", "closing")

    def __init__(self, ws: web.WebSocketResponse, hub: RoomHub, room: Room, p: Participant) -> None:
        self.ws = ws
        self.hub = hub
        self.room = room
        self.p = p
        self.stats = hub.stats
        self.max_fps = hub.config.max_frames_per_second
        self.flood = max(3 * self.max_fps, self.max_fps + 30)
        self.observer = p.role == "observer"
        self.push = room.push_local
        self.closing = False

    def frame(self, data: bytes | bytearray) -> None:
        p = self.p
        now = time.monotonic()
        p.last_seen = now
        if data[0] != PROTOCOL_VERSION or data[1] != KIND_EXPRESSION or len(data) != EXPRESSION_FRAME_SIZE:
            err = check_expression_frame(bytes(data)) or ProtocolError("bad_frame", "not an expression frame")
            asyncio.ensure_future(_violation(self.ws, self.room, p, self.stats, err))
            return
        if now - p.win_start >= 1.0:
            p.win_start = now
            p.win_count = 0
        p.win_count += 1
        if p.win_count > self.max_fps or self.observer:
            self.stats.rate_limited += 1
            if p.win_count > self.flood:
                if not self.closing:
                    self.closing = True
                    p.violations = -1
                    asyncio.ensure_future(
                        _close(self.ws, CloseCode.FLOOD, f"more than {self.flood:g} frames per second")
                    )
                return
            if now - p.error_sent_at > 1.0:
                p.error_sent_at = now
                if self.observer:
                    text = encode_control("error", code="forbidden", message="observers do not send frames")
                else:
                    text = encode_control(
                        "error",
                        code="rate_limited",
                        message=f"over {self.max_fps:g} frames per second; frames dropped",
                    )
                self.room.send_json(p, text)
            return
        self.stats.frames_in += 1
        self.push(p, data)


async def _serve(
    ws: web.WebSocketResponse, hub: RoomHub, room: Room, p: Participant, intake: FrameIntake
) -> tuple[bool, str]:
    """Read the client's messages until it leaves or breaks a rule. Returns (clean leave, reason)."""
    stats = hub.stats
    binary, text = WSMsgType.BINARY, WSMsgType.TEXT
    async for msg in ws:
        p.last_seen = time.monotonic()
        mtype = msg.type
        if mtype is binary:
            data = msg.data
            if len(data) > MAX_MESSAGE_BYTES:
                p.violations = -1
                stats.bad_messages += 1
                await _close(
                    ws, CloseCode.TOO_LARGE, f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}"
                )
                return False, "too_large"
            if len(data) == EXPRESSION_FRAME_SIZE:
                intake.frame(data)
                if intake.closing:
                    return False, "flood"
                continue
            err = check_expression_frame(data) or ProtocolError("bad_frame", "not an expression frame")
            if not await _violation(ws, room, p, stats, err):
                return False, "protocol_error"
        elif mtype is text:
            data = msg.data
            if len(data) > MAX_MESSAGE_BYTES:
                p.violations = -1
                stats.bad_messages += 1
                await _close(
                    ws, CloseCode.TOO_LARGE, f"message of {len(data)} characters is over {MAX_MESSAGE_BYTES}"
                )
                return False, "too_large"
            parsed = decode_control(data)
            if isinstance(parsed, ProtocolError):
                if not await _violation(ws, room, p, stats, parsed):
                    return False, "protocol_error"
                continue
            kind = parsed["type"]
            if kind == "ping":
                room.send_json(p, encode_control("pong", t=parsed.get("t")))
            elif kind == "set_avatar":
                hub.set_avatar(room, p, parsed["avatar_id"])
            elif kind == "leave":
                await _close(ws, 1000, "left")
                return True, "left"
            elif kind == "hello":
                if not await _violation(ws, room, p, stats, ProtocolError("bad_message", "already joined")):
                    return False, "protocol_error"
        else:  # CLOSE, CLOSING, CLOSED, ERROR
            break
    if intake.closing:
        return False, "flood"
    if p.violations < 0:
        return False, "protocol_error"
    if ws.close_code is not None and ws.close_code in (1000, 1001):
        return True, "left"
    return False, "disconnected"


async def _violation(
    ws: web.WebSocketResponse, room: Room, p: Participant, stats: Any, err: ProtocolError
) -> bool:
    """Tell the client what was wrong; close 4400 after too many. Returns False when closed."""
    stats.bad_messages += 1
    p.violations += 1
    if p.violations > MAX_VIOLATIONS:
        p.violations = -1
        await _close(ws, CloseCode.BAD_REQUEST, f"too many protocol errors (last: {err.code})")
        return False
    room.send_json(p, encode_control("error", code=err.code, message=err.message))
    return True
