"""Python client SDK for vrhub rooms, on the ``websockets`` library.

    from vrhub.client import join

    client = await join("http://127.0.0.1:8080", "class-7b", "Ada", avatar_id="a1b2")
    await client.send_frame({"jawOpen": 0.4, "eyeBlinkLeft": 1.0}, rotation=(0, 0, 0, 1))
    async for item in client:            # JSON events (dict) and room frames (RoomFrame)
        if isinstance(item, RoomFrame):
            for participant, frame in item.frames.items(): ...
        elif item["type"] == "joined": ...
    await client.leave()

The client skips its own participant in room frames, keeps the room's idle timer alive with JSON
pings when it sends no frames, and can :meth:`RoomClient.resume` within the hub's resume window
with the same participant id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from vrhub.rooms.protocol import (
    ProtocolError,
    RoomFrame,
    decode_room_frame,
    encode_expression_frame,
)

__all__ = ["JoinError", "RoomClient", "RoomFrame", "join", "room_ws_url"]


class JoinError(Exception):
    """The hub refused the join; ``code`` is the websocket close code (e.g. 4401), ``reason`` why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"join refused ({code}): {reason}")
        self.code = code
        self.reason = reason


def room_ws_url(base_url: str, room: str, token: str | None = None) -> str:
    """``http://host:port`` (or ws://) + room -> ``ws://host:port/api/rooms/{room}/ws?token=...``."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if "/api/rooms/" not in path:
        path = f"{path}/api/rooms/{quote(room, safe='')}/ws"
    query = urlencode({"token": token}) if token else ""
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def now_ms() -> int:
    """Capture time for frames: wall clock milliseconds modulo 2**32 (comparable across machines
    with synchronised clocks, which is what the latency benchmark relies on)."""
    return int(time.time() * 1000) & 0xFFFFFFFF


class RoomClient:
    """A joined websocket connection to one room. Create with :func:`join`."""

    def __init__(
        self, ws: ClientConnection, welcome: dict[str, Any], url: str, *, decode: bool = True
    ) -> None:
        self.ws = ws
        self.welcome = welcome
        self.url = url
        self.decode = decode
        self.participant: int = int(welcome["participant"])
        self.peers: dict[int, dict[str, Any]] = {int(p["participant"]): p for p in welcome.get("peers", [])}
        self.resume_token: str = welcome.get("resume_token", "")
        self.tick_hz: float = float(welcome.get("tick_hz", 0))
        self.seq = 0
        self._last_sent = time.monotonic()
        idle = float(welcome.get("idle_timeout") or 0)
        self._keepalive: asyncio.Task[None] | None = None
        if idle > 0:
            self._keepalive = asyncio.create_task(self._keep_alive(max(0.2, idle / 3)))

    # ------------------------------------------------------------------ sending
    async def send_frame(
        self,
        weights: Mapping[str, float] | Sequence[float] | np.ndarray,
        rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        position_mm: Sequence[float] = (0, 0, 0),
        capture_ms: int | None = None,
    ) -> None:
        """Send one expression frame (weights by ARKit name or 52 floats in 0..1; head pose)."""
        self.seq = (self.seq + 1) & 0xFFFF
        frame = encode_expression_frame(
            self.seq, now_ms() if capture_ms is None else capture_ms, weights, rotation, position_mm
        )
        if isinstance(frame, ProtocolError):
            raise ValueError(frame.message)
        await self.send_raw(frame)

    async def send_raw(self, data: bytes | str) -> None:
        """Send bytes or text as they are (for tools and tests)."""
        self._last_sent = time.monotonic()
        await self.ws.send(data)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(message, separators=(",", ":")))

    async def set_avatar(self, avatar_id: str) -> None:
        await self.send_json({"type": "set_avatar", "avatar_id": avatar_id})

    async def ping(self) -> None:
        await self.send_json({"type": "ping", "t": now_ms()})

    async def leave(self) -> None:
        """Leave cleanly (peers get ``left`` at once; no resume)."""
        with contextlib.suppress(ConnectionClosed):
            await self.send_json({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        """Close the socket without ``leave`` (the hub holds the participant for resume)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        closer = asyncio.create_task(self.ws.close())
        # Keep reading (and discarding) so a full receive queue cannot stall the close handshake.
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while not closer.done():
                await asyncio.wait_for(self.ws.recv(), 5.0)
        await closer

    async def drop(self) -> None:
        """Cut the TCP connection without a close handshake (as a crashed client would)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        self.ws.transport.abort()
        with contextlib.suppress(Exception):
            await self.ws.wait_closed()

    async def _keep_alive(self, every: float) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                await asyncio.sleep(every)
                if time.monotonic() - self._last_sent >= every:
                    await self.ping()

    # ------------------------------------------------------------------ receiving
    async def recv(self, timeout: float | None = None) -> dict[str, Any] | RoomFrame | bytes:
        """Next event (dict) or room frame (RoomFrame without our own entry; raw bytes if
        ``decode=False``). Raises ConnectionClosed when the hub closes."""
        while True:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
            if isinstance(data, str):
                event = json.loads(data)
                self._track(event)
                return event
            if not self.decode:
                return data
            decoded = decode_room_frame(data)
            if isinstance(decoded, ProtocolError):
                raise ValueError(f"hub sent a bad room frame: {decoded.message}")
            decoded.frames.pop(self.participant, None)
            if decoded.frames:
                return decoded

    async def next_event(self, kind: str | None = None, timeout: float | None = 5.0) -> dict[str, Any]:
        """Skip room frames until a JSON event (of type ``kind`` if given) arrives."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            item = await self.recv(left)
            if isinstance(item, dict) and (kind is None or item.get("type") == kind):
                return item

    async def next_frame(self, timeout: float | None = 5.0) -> RoomFrame:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            item = await self.recv(left)
            if isinstance(item, RoomFrame):
                return item

    def __aiter__(self) -> AsyncIterator[dict[str, Any] | RoomFrame | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any] | RoomFrame | bytes]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosed:
            return

    def _track(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "joined":
            self.peers[int(event["participant"])] = event
        elif kind == "left":
            self.peers.pop(int(event["participant"]), None)
        elif kind == "avatar_ready" and event.get("participant") in self.peers:
            peer = self.peers[event["participant"]]
            peer["avatar_id"] = event.get("avatar_id")
            peer["avatar_url"] = event.get("avatar_url")

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    async def resume(self, hub_url: str | None = None) -> RoomClient:
        """Reconnect with the resume token (within the hub's resume window: same participant id).

        ``hub_url`` (``http(s)://host:port``) reconnects through another hub of the same Redis-shared
        deployment, e.g. when the first one went away; the room and its token are kept."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        with contextlib.suppress(Exception):
            self.ws.transport.abort()
        url = self.url
        if hub_url is not None:  # the same room on that hub, with the same ?token=
            other = urlsplit(room_ws_url(hub_url, str(self.welcome["room"])))
            url = urlunsplit(other._replace(query=urlsplit(self.url).query))
        return await _connect(
            url,
            {"type": "hello", "name": self.welcome.get("name", ""), "resume": self.resume_token},
            self.decode,
        )


async def _connect(url: str, hello: dict[str, Any], decode: bool, open_timeout: float = 10.0) -> RoomClient:
    ws = await connect(url, open_timeout=open_timeout, max_size=2**20, compression=None)
    try:
        await ws.send(json.dumps(hello, separators=(",", ":")))
        while True:
            data = await asyncio.wait_for(ws.recv(), open_timeout)
            if isinstance(data, str):
                msg = json.loads(data)
                if msg.get("type") == "welcome":
                    return RoomClient(
                        ws, msg | {"name": msg.get("name", hello.get("name"))}, url, decode=decode
                    )
                if msg.get("type") == "error":
                    continue
    except ConnectionClosed:
        raise JoinError(ws.close_code, ws.close_reason or "connection closed before welcome") from None
    except BaseException:
        await ws.close()
        raise


async def join(
    url: str,
    room: str,
    name: str,
    token: str | None = None,
    avatar_id: str | None = None,
    *,
    decode: bool = True,
    open_timeout: float = 10.0,
) -> RoomClient:
    """Connect to ``room`` on the hub at ``url`` (http(s):// or ws(s)://), say hello, wait for welcome.

    Raises :class:`JoinError` with the close code (4401 no/bad token, 4403 wrong room, 4409 full...).
    """
    hello: dict[str, Any] = {"type": "hello", "name": name}
    if avatar_id:
        hello["avatar_id"] = avatar_id
    return await _connect(room_ws_url(url, room, token), hello, decode, open_timeout)
