"""Scale-out over Redis: rooms shared by several hub processes.

* Frames: once per tick per room, each hub publishes its local participants' changed frames as ONE
  message on channel ``{prefix}:room:{room}`` (``b"F"`` + hub id + send time + tick + 74-byte entries);
  the other hubs merge them into their own next tick.
* Events (``b"E"`` + JSON) on the same channel: ``joined``, ``left``, ``avatar_ready``, and
  ``moved`` (a participant resumed through another hub, which now owns it; the old hub closes its
  socket, if still open, with 4000 and nobody sees ``left``).
* Presence: hash ``{prefix}:presence:{room}`` (participant id -> JSON with its hub id) plus one
  liveness key per hub ``{prefix}:hub:{hub_id}`` with a TTL refreshed every ``interval`` seconds.
  A hub that dies (SIGKILL) stops refreshing; within ``ttl`` its key expires and the other hubs
  drop its participants (``left`` with reason ``hub_lost``) and clean its hash entries; for the
  resume window such a participant can come back, with its id, through any live hub.
* Participant ids are allocated with INCR on ``{prefix}:room:{room}:pid`` so they are unique per room.
* Connection loss (Redis restart, CLIENT KILL): publishes are dropped and counted, the subscriber
  reconnects with back-off and re-subscribes, the presence loop re-writes this hub's participants.
  Rooms keep working locally meanwhile and recover without restarting the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from vrhub.rooms.protocol import encode_control
from vrhub.rooms.room import Participant

if TYPE_CHECKING:
    from vrhub.rooms.hub import RoomHub
    from vrhub.rooms.room import Room

log = logging.getLogger(__name__)

_FRAMES_HEAD = struct.Struct("<dI")  # send time (unix s), tick
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _resp(*parts: bytes) -> bytes:
    """One Redis command in RESP (the wire format redis-server reads)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n" % len(part))
        out.append(part)
        out.append(b"\r\n")
    return b"".join(out)


class FramePublisher(asyncio.Protocol):
    """Fire-and-forget PUBLISH on a dedicated Redis connection, RESP written by hand.

    The per-tick publish is the hot path of scale-out: through redis-py each one costs a pipeline,
    a pool checkout and an awaited reply (about 160 µs of CPU measured here); this costs one
    ``transport.write``. Replies (receiver counts) are read and discarded. While disconnected, or
    when more than ``max_buffer`` bytes are unsent, publishes are refused (counted as dropped by the
    caller). Reconnects with back-off. Plain ``redis://`` URLs only (TLS/unix sockets use redis-py).
    """

    def __init__(
        self, host: str, port: int, password: str | None, client_name: str, max_buffer: int = 1 << 20
    ):
        self.host = host
        self.port = port
        self.password = password
        self.client_name = client_name
        self.max_buffer = max_buffer
        self.transport: asyncio.Transport | None = None
        self.errors = 0
        self._lost: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        hello = b""
        if self.password:
            hello += _resp(b"AUTH", self.password.encode())
        hello += _resp(b"CLIENT", b"SETNAME", self.client_name.encode())
        self.transport.write(hello)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if b"-" in data[:1] or b"\r\n-" in data:
            self.errors += 1
            log.warning("redis bus: publisher got an error reply: %r", data[:120])

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def publish(self, channel: bytes, payload: bytes) -> bool:
        t = self.transport
        if t is None or t.is_closing() or t.get_write_buffer_size() > self.max_buffer:
            return False
        t.write(
            b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n" % (len(channel), channel, len(payload))
            + payload
            + b"\r\n"
        )
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.1
        while True:
            try:
                self._lost = loop.create_future()
                await asyncio.wait_for(loop.create_connection(lambda: self, self.host, self.port), 2.0)
                backoff = 0.1
                await self._lost
            except (TimeoutError, OSError) as exc:
                log.debug("redis bus: publisher connect failed: %s", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RedisBus:
    def __init__(
        self, url: str, *, prefix: str = "vrhub", ttl: float = 5.0, interval: float = 1.0, hub_id: str = ""
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.interval = interval
        self.hub_id = hub_id
        self.hub: RoomHub | None = None
        self.redis: aioredis.Redis | None = None
        self.pubsub: Any = None
        self.watched: set[str] = set()
        self.connected = False
        self.lag = 0.0
        self.lag_max = 0.0
        self.publishes = 0
        self.received = 0
        self.reconnects = 0
        self.dropped = 0
        self._outbox: list[tuple[str, bytes]] = []
        self.publisher: FramePublisher | None = None
        self._channels: dict[str, bytes] = {}
        self._flush_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: monotonic time each other hub was last seen alive (hub key present, or a message from it)
        self._last_alive: dict[str, float] = {}
        self._absent_since: dict[tuple[str, int], float] = {}

    # ------------------------------------------------------------------ names
    def channel(self, room_id: str) -> str:
        return f"{self.prefix}:room:{room_id}"

    def presence_key(self, room_id: str) -> str:
        return f"{self.prefix}:presence:{room_id}"

    def hub_key(self, hub_id: str) -> str:
        return f"{self.prefix}:hub:{hub_id}"

    # ------------------------------------------------------------------ lifecycle
    async def start(self, hub: RoomHub) -> None:
        self.hub = hub
        self.hub_id = self.hub_id or hub.hub_id
        self._header = b"F" + bytes([len(self.hub_id)]) + self.hub_id.encode()
        self.redis = aioredis.Redis.from_url(
            self.url,
            client_name=f"vrhub-hub-{self.hub_id}",
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        with contextlib.suppress(*_ERRORS):
            await asyncio.wait_for(
                self.redis.set(self.hub_key(self.hub_id), "1", px=int(self.ttl * 1000)), 2.0
            )
        self._tasks = [
            asyncio.create_task(self._subscriber_loop(), name="redis-bus-subscriber"),
            asyncio.create_task(self._presence_loop(), name="redis-bus-presence"),
        ]
        parts = urlsplit(self.url)
        if parts.scheme == "redis" and parts.hostname:
            self.publisher = FramePublisher(
                parts.hostname, parts.port or 6379, parts.password, f"vrhub-hub-{self.hub_id}"
            )
            self._tasks.append(asyncio.create_task(self.publisher.run(), name="redis-bus-publisher"))

    async def close(self) -> None:
        self._closed = True
        for t in self._tasks:
            t.cancel()
        if self.publisher is not None:
            self.publisher.close()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                await t
        if self.redis is not None:
            with contextlib.suppress(*_ERRORS):
                # Leave cleanly: remove our presence at once rather than waiting for the TTL.
                pipe = self.redis.pipeline(transaction=False)
                for room_id, room in self._local_rooms():
                    local = [pid for pid, p in room.participants.items() if p.local]
                    if local:
                        pipe.hdel(self.presence_key(room_id), *local)
                pipe.delete(self.hub_key(self.hub_id))
                await asyncio.wait_for(pipe.execute(), 2.0)
            with contextlib.suppress(*_ERRORS):
                await self.redis.aclose()
        if self.pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await self.pubsub.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _local_rooms(self) -> list[tuple[str, Room]]:
        return list(self.hub.rooms.items()) if self.hub is not None else []

    # ------------------------------------------------------------------ rooms watched by this hub
    def watch(self, room_id: str) -> None:
        self.watched.add(room_id)
        if self.pubsub is not None and self.connected:
            self._spawn(self._subscribe(self.channel(room_id)))

    def unwatch(self, room_id: str) -> None:
        self.watched.discard(room_id)
        if self.pubsub is not None and self.connected:
            self._spawn(self._unsubscribe(self.channel(room_id)))

    async def _subscribe(self, channel: str) -> None:
        with contextlib.suppress(*_ERRORS):
            await self.pubsub.subscribe(channel)

    async def _unsubscribe(self, channel: str) -> None:
        with contextlib.suppress(*_ERRORS):
            await self.pubsub.unsubscribe(channel)

    async def allocate_pid(self, room_id: str) -> int | None:
        """A room-wide unique participant id (1..65535), or None when Redis is unreachable."""
        if self.redis is None:
            return None
        try:
            n = await asyncio.wait_for(self.redis.incr(f"{self.prefix}:room:{room_id}:pid"), 1.0)
        except _ERRORS:
            return None
        return (int(n) - 1) % 65535 + 1

    # ------------------------------------------------------------------ publishing
    def publish_frames(self, room_id: str, tick: int, entries: list[bytes]) -> None:
        """Called by a room once per tick with its local changed entries: written at once on the
        publisher connection (or, for URLs it cannot handle, queued for one redis-py pipeline with
        the other rooms' publishes of the same loop turn)."""
        payload = self._header + _FRAMES_HEAD.pack(time.time(), tick & 0xFFFFFFFF) + b"".join(entries)
        if self.publisher is not None:
            channel = self._channels.get(room_id)
            if channel is None:
                channel = self._channels[room_id] = self.channel(room_id).encode()
            if self.publisher.publish(channel, payload):
                self.publishes += 1
            else:
                self.dropped += 1
            return
        if len(self._outbox) > 10_000:  # Redis is stuck: never queue without bound
            self.dropped += 1
            return
        self._outbox.append((self.channel(room_id), payload))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._spawn(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let every room of this loop turn add its message
        outbox, self._outbox = self._outbox, []
        self._flush_scheduled = False
        if not outbox or self.redis is None:
            return
        if not self.connected:
            self.dropped += len(outbox)
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for channel, payload in outbox:
                pipe.publish(channel, payload)
            await pipe.execute()
            self.publishes += len(outbox)
        except _ERRORS as exc:
            self.dropped += len(outbox)
            log.warning("redis bus: publish failed (%s); frames dropped until Redis is back", exc)

    async def publish_event(self, room_id: str, event: dict[str, Any]) -> None:
        if self.redis is None:
            return
        data = b"E" + json.dumps({"hub": self.hub_id, **event}, separators=(",", ":")).encode()
        with contextlib.suppress(*_ERRORS):
            await asyncio.wait_for(self.redis.publish(self.channel(room_id), data), 2.0)

    def _presence_value(self, p: Participant) -> str:
        return json.dumps({**p.info(), "hub": self.hub_id}, separators=(",", ":"))

    def announce_join(self, room_id: str, p: Participant) -> None:
        self._spawn(self._announce_join(room_id, p))

    async def _announce_join(self, room_id: str, p: Participant) -> None:
        if self.redis is None:
            return
        with contextlib.suppress(*_ERRORS):
            await asyncio.wait_for(
                self.redis.hset(self.presence_key(room_id), str(p.pid), self._presence_value(p)), 2.0
            )
        await self.publish_event(room_id, {"event": "joined", **p.info()})

    def announce_leave(self, room_id: str, pid: int, reason: str) -> None:
        self._spawn(self._announce_leave(room_id, pid, reason))

    async def _announce_leave(self, room_id: str, pid: int, reason: str) -> None:
        if self.redis is None:
            return
        with contextlib.suppress(*_ERRORS):
            await asyncio.wait_for(self.redis.hdel(self.presence_key(room_id), str(pid)), 2.0)
        await self.publish_event(room_id, {"event": "left", "participant": pid, "reason": reason})

    def announce_move(self, room_id: str, p: Participant, old_hub: str) -> None:
        """``p`` (until now on ``old_hub``) resumed on this hub: rewrite its presence and tell the
        other hubs (the old one closes its socket; the rest route it here)."""
        self._spawn(self._announce_move(room_id, p, old_hub))

    async def _announce_move(self, room_id: str, p: Participant, old_hub: str) -> None:
        if self.redis is None:
            return
        with contextlib.suppress(*_ERRORS):
            await asyncio.wait_for(
                self.redis.hset(self.presence_key(room_id), str(p.pid), self._presence_value(p)), 2.0
            )
        await self.publish_event(room_id, {"event": "moved", "from": old_hub, **p.info()})

    def announce_avatar(self, room_id: str, p: Participant) -> None:
        self._spawn(self._announce_avatar(room_id, p))

    async def _announce_avatar(self, room_id: str, p: Participant) -> None:
        if self.redis is None:
            return
        with contextlib.suppress(*_ERRORS):
            await asyncio.wait_for(
                self.redis.hset(self.presence_key(room_id), str(p.pid), self._presence_value(p)), 2.0
            )
        await self.publish_event(
            room_id,
            {
                "event": "avatar_ready",
                "participant": p.pid,
                "avatar_id": p.avatar_id,
                "avatar_url": p.avatar_url,
            },
        )

    # ------------------------------------------------------------------ receiving
    async def _subscriber_loop(self) -> None:
        backoff = 0.1
        while not self._closed:
            assert self.redis is not None
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(f"{self.prefix}:hubctl:{self.hub_id}")
                if self.watched:
                    await pubsub.subscribe(*(self.channel(r) for r in self.watched))
                self.pubsub = pubsub
                if not self.connected:
                    log.info("redis bus: subscribed (%d rooms)", len(self.watched))
                self.connected = True
                backoff = 0.1
                # rooms watched while we were (re)connecting
                missing = {self.channel(r) for r in self.watched} - {c.decode() for c in pubsub.channels}
                if missing:
                    await pubsub.subscribe(*missing)
                while not self._closed:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        try:
                            self._handle(msg["channel"], msg["data"])
                        except Exception:
                            log.exception("redis bus: bad message on %s", msg.get("channel"))
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                if self.connected:
                    log.warning("redis bus: connection lost (%s); reconnecting", exc)
                    self.reconnects += 1
                self.connected = False
                self.pubsub = None
                with contextlib.suppress(*_ERRORS):
                    await pubsub.aclose()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _handle(self, channel: bytes, data: bytes) -> None:
        hub = self.hub
        if hub is None:
            return
        room_id = channel.decode()[len(self.prefix) + 6 :]  # strip "{prefix}:room:"
        room = hub.rooms.get(room_id)
        if room is None:
            return
        kind = data[:1]
        if kind == b"F":
            n = data[1]
            sender = data[2 : 2 + n].decode()
            if sender == self.hub_id:
                return
            self._last_alive[sender] = time.monotonic()
            off = 2 + n
            sent, _tick = _FRAMES_HEAD.unpack_from(data, off)
            lag = time.time() - sent
            self.lag = lag
            if lag > self.lag_max:
                self.lag_max = lag
            self.received += 1
            room.push_remote(data[off + _FRAMES_HEAD.size :])
        elif kind == b"E":
            event = json.loads(data[1:])
            if event.get("hub") == self.hub_id:
                return
            self._last_alive[str(event.get("hub"))] = time.monotonic()
            self._handle_event(room, event)

    def _handle_event(self, room: Room, event: dict[str, Any]) -> None:
        assert self.hub is not None
        kind = event.get("event")
        if kind == "joined":
            self._add_remote(room, event, str(event["hub"]))
        elif kind == "moved":
            p = room.participants.get(int(event["participant"]))
            if p is None:  # we had already dropped it (its old hub died): it is back
                self._add_remote(room, event, str(event["hub"]))
            elif p.local:
                self.hub.moved_away(room, p, str(event["hub"]))
            else:
                p.hub = str(event["hub"])
        elif kind == "left":
            p = room.participants.get(int(event["participant"]))
            if p is not None and p.hub == event["hub"]:
                room.remove(p.pid, str(event.get("reason", "left")))
        elif kind == "avatar_ready":
            pid = event.get("participant")
            if pid is None:
                self.hub.deliver_avatar_ready(room.room_id, str(event["avatar_id"]), str(event["avatar_url"]))
            else:
                p = room.participants.get(int(pid))
                if p is not None and not p.local:
                    p.avatar_id = event.get("avatar_id")
                    p.avatar_url = event.get("avatar_url")
                room.broadcast_json(
                    encode_control(
                        "avatar_ready",
                        participant=pid,
                        avatar_id=event.get("avatar_id"),
                        avatar_url=event.get("avatar_url"),
                    )
                )

    def _add_remote(self, room: Room, info: dict[str, Any], hub_id: str) -> None:
        pid = int(info["participant"])
        existing = room.participants.get(pid)
        if existing is not None:
            if not existing.local:
                existing.avatar_id = info.get("avatar_id")
                existing.avatar_url = info.get("avatar_url")
            return
        p = Participant(
            pid,
            str(info.get("name", "")),
            info.get("avatar_id"),
            info.get("avatar_url"),
            str(info.get("role", "participant")),
            hub_id,
        )
        room.add(p)

    # ------------------------------------------------------------------ presence
    async def sync_room(self, room: Room) -> None:
        """Reconcile one room with the presence hash: add live remote participants, drop those whose
        hub is gone, re-write our own (after a Redis restart the hash is empty)."""
        assert self.redis is not None
        key = self.presence_key(room.room_id)
        local = [p for p in room.participants.values() if p.local]
        pipe = self.redis.pipeline(transaction=False)
        if local:
            pipe.hset(key, mapping={str(p.pid): self._presence_value(p) for p in local})
        pipe.pexpire(key, int(max(self.ttl * 10, 60) * 1000))
        pipe.hgetall(key)
        entries = (await pipe.execute())[-1]
        remote: dict[int, dict[str, Any]] = {}
        for field, value in entries.items():
            info = json.loads(value)
            if info.get("hub") != self.hub_id:
                remote[int(field)] = info
        hubs = sorted(
            {str(i["hub"]) for i in remote.values()}
            | {p.hub for p in room.participants.values() if not p.local}
        )
        now = time.monotonic()
        if hubs:
            exists = await self.redis.mget([self.hub_key(h) for h in hubs])
            for h, v in zip(hubs, exists, strict=True):
                if v is not None:
                    self._last_alive[h] = now

        def alive(h: str) -> bool:
            return now - self._last_alive.get(h, -1e18) <= self.ttl

        dead_fields = [str(pid) for pid, info in remote.items() if not alive(str(info["hub"]))]
        if dead_fields:
            await self.redis.hdel(key, *dead_fields)
        for info in remote.values():
            if alive(str(info["hub"])):
                self._add_remote(room, info, str(info["hub"]))
        for pid, p in list(room.participants.items()):
            if p.local:
                continue
            absent_key = (room.room_id, pid)
            if not alive(p.hub):
                self._absent_since.pop(absent_key, None)
                room.remove(pid, "hub_lost")
                if self.hub is not None:
                    self.hub.lost_with_hub(room.room_id, p)
            elif pid not in remote:  # e.g. a missed "left" event; or Redis lost the hash (wait a TTL)
                since = self._absent_since.setdefault(absent_key, now)
                if now - since > self.ttl:
                    del self._absent_since[absent_key]
                    room.remove(pid, "left")
            else:
                self._absent_since.pop(absent_key, None)

    async def _presence_loop(self) -> None:
        while not self._closed:
            try:
                assert self.redis is not None
                await asyncio.wait_for(
                    self.redis.set(self.hub_key(self.hub_id), "1", px=int(self.ttl * 1000)), 2.0
                )
                for _room_id, room in self._local_rooms():
                    await asyncio.wait_for(self.sync_room(room), 2.0)
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                log.debug("redis bus: presence refresh failed (%s)", exc)
            await asyncio.sleep(self.interval)
