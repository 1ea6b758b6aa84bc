"""One room's state and fan-out: latest frame per participant, one shared room frame per tick.

Hot path (per incoming expression frame): validate three bytes, rate-limit, store the 74-byte room
entry (participant id + frame body) in ``pending`` (a newer frame replaces an unsent older one:
"superseded", counted apart from losses). Per tick: one room frame (header + every pending entry) is
wrapped in one websocket frame and the *same bytes* are written to every local client whose send
buffer is under its limit; a client over the limit skips the tick and, once it drains, gets one
catch-up frame with the latest entry of every participant that changed while it was skipping.
No queue grows per client: the only per-client memory is the transport's capped buffer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vrhub.rooms.protocol import (
    KIND_ROOM,
    ROOM_HEADER_SIZE,
    ROOM_HEADER_STRUCT,
    CloseCode,
    encode_control,
    ws_frame,
)

log = logging.getLogger(__name__)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...


@dataclass
class RoomConfig:
    """Per-room limits. ``tick_hz=0`` relays each frame in the same event-loop turn it arrives."""

    tick_hz: float = 30.0
    max_participants: int = 64
    max_frames_per_second: float = 60.0
    idle_timeout: float = 60.0
    #: A client whose transport holds more than this many unsent bytes skips ticks.
    send_buffer_limit: int = 16 * 1024
    #: ...and is disconnected (4503) when it holds more than this (control messages piled up).
    send_buffer_hard_limit: int = 512 * 1024
    #: Seconds a dropped (not cleanly left) participant is kept for resume.
    resume_window: float = 15.0
    #: With Redis: publish local changes this long before the fan-out (covers the Redis round trip).
    publish_lead: float = 0.006


class RoomStats:
    """Plain integer counters (cheap on the hot path); exported by the metrics collector."""

    __slots__ = (
        "frames_in",
        "frames_out",
        "messages_out",
        "superseded",
        "superseded_remote",
        "skipped_sends",
        "rate_limited",
        "bad_messages",
        "catch_up_sends",
        "slow_disconnects",
        "ticks",
        "tick_lag_sum",
        "tick_lag_max",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class Participant:
    """A member of a room: local (has a transport) or remote (lives on another hub, via Redis)."""

    __slots__ = (
        "pid",
        "name",
        "avatar_id",
        "avatar_url",
        "role",
        "hub",
        "transport",
        "ws",
        "pid_bytes",
        "behind_since",
        "win_start",
        "win_count",
        "violations",
        "last_seen",
        "held_until",
        "error_sent_at",
        "closed_reason",
    )

    def __init__(
        self,
        pid: int,
        name: str,
        avatar_id: str | None,
        avatar_url: str | None,
        role: str,
        hub: str,
        transport: Transport | None = None,
        ws: Any = None,
    ) -> None:
        self.pid = pid
        self.name = name
        self.avatar_id = avatar_id
        self.avatar_url = avatar_url
        self.role = role
        self.hub = hub
        self.transport = transport
        self.ws = ws
        self.pid_bytes = pid.to_bytes(2, "little")
        #: First tick whose changes this client has not received (0 = needs the full snapshot).
        self.behind_since: int | None = 0
        self.win_start = 0.0
        self.win_count = 0
        self.violations = 0
        self.last_seen = time.monotonic()
        self.held_until: float | None = None
        self.error_sent_at = -1e9
        #: set when the hub closes the socket for a rule (then the participant is not held for resume)
        self.closed_reason: str | None = None

    @property
    def local(self) -> bool:
        return self.ws is not None or self.held_until is not None

    def info(self) -> dict[str, Any]:
        return {
            "participant": self.pid,
            "name": self.name,
            "avatar_id": self.avatar_id,
            "avatar_url": self.avatar_url,
            "role": self.role,
        }


class Room:
    """State and fan-out of one room on this hub.

    ``participants`` holds local and remote members; ``latest`` every member's newest entry;
    ``pending`` the entries changed since the last tick (shared by the whole room).
    """

    def __init__(
        self,
        room_id: str,
        config: RoomConfig,
        stats: RoomStats,
        hub_id: str = "local",
        publish: Callable[[str, int, list[bytes]], None] | None = None,
    ) -> None:
        self.room_id = room_id
        self.config = config
        self.stats = stats
        self.hub_id = hub_id
        self.publish = publish
        self.participants: dict[int, Participant] = {}
        #: local participants with an open socket (the fan-out list)
        self.clients: dict[int, Participant] = {}
        self.latest: dict[int, bytes] = {}
        self.changed_at: dict[int, int] = {}
        self.pending: dict[int, bytes] = {}
        #: local entries not yet published to other hubs
        self.local_pending: dict[int, bytes] = {}
        self.tick = 0
        self._flush_scheduled = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.config.tick_hz > 0 and self._task is None:
            self._task = asyncio.create_task(self._tick_loop(), name=f"room-tick:{self.room_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def empty(self) -> bool:
        return not any(p.local for p in self.participants.values())

    # ------------------------------------------------------------------ membership
    def add(self, p: Participant, announce: bool = True) -> None:
        self.participants[p.pid] = p
        if p.ws is not None:
            p.behind_since = 0  # send the full snapshot on the next tick
            self.clients[p.pid] = p
        if announce:
            self.broadcast_json(encode_control("joined", **p.info()), exclude=p.pid)

    def attach(self, p: Participant, transport: Transport, ws: Any) -> None:
        """Give a held (resumed) participant its new socket."""
        p.transport = transport
        p.ws = ws
        p.held_until = None
        p.behind_since = 0
        p.last_seen = time.monotonic()
        self.clients[p.pid] = p

    def detach(self, p: Participant) -> None:
        """Socket gone, participant kept for resume until ``held_until``."""
        self.clients.pop(p.pid, None)
        p.transport = None
        p.ws = None
        p.held_until = time.monotonic() + self.config.resume_window

    def hand_over(self, p: Participant, hub: str) -> None:
        """``p`` now lives on ``hub`` (its client resumed there): a remote member from here on, not
        held for resume and with nothing left to publish from this hub."""
        self.clients.pop(p.pid, None)
        self.local_pending.pop(p.pid, None)
        p.transport = None
        p.ws = None
        p.held_until = None
        p.hub = hub

    def remove(self, pid: int, reason: str = "left", announce: bool = True) -> Participant | None:
        p = self.participants.pop(pid, None)
        self.clients.pop(pid, None)
        self.latest.pop(pid, None)
        self.changed_at.pop(pid, None)
        self.pending.pop(pid, None)
        self.local_pending.pop(pid, None)
        if p is not None and announce:
            self.broadcast_json(encode_control("left", participant=pid, reason=reason))
        return p

    def peers(self, exclude: int | None = None) -> list[dict[str, Any]]:
        return [p.info() for pid, p in self.participants.items() if pid != exclude]

    # ------------------------------------------------------------------ frames in
    def push_local(self, p: Participant, frame: bytes | bytearray) -> None:
        """A validated 74-byte expression frame from local participant ``p``."""
        pid = p.pid
        pending = self.pending
        if pid in pending:
            self.stats.superseded += 1
        entry = p.pid_bytes + frame[2:]
        pending[pid] = entry
        if self.publish is not None:
            self.local_pending[pid] = entry
        if self.config.tick_hz <= 0 and not self._flush_scheduled:
            self._flush_scheduled = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._flush_now)

    def push_remote(self, entries: bytes) -> None:
        """Entries (participant u16 + body, 74 bytes each) published by another hub."""
        n = len(entries) // 74
        for i in range(n):
            entry = entries[i * 74 : (i + 1) * 74]
            pid = int.from_bytes(entry[:2], "little")
            p = self.participants.get(pid)
            if p is None or p.local:
                continue  # unknown (presence not seen yet) or an id clash with a local participant
            if pid in self.pending:
                self.stats.superseded_remote += 1
            self.pending[pid] = entry
        if n and self.config.tick_hz <= 0 and not self._flush_scheduled:
            self._flush_scheduled = True
            (self._loop or asyncio.get_running_loop()).call_soon(self._flush_now)

    # ------------------------------------------------------------------ fan-out
    def _flush_now(self) -> None:
        self._flush_scheduled = False
        self.run_tick()

    def tick_phase(self, period: float) -> float:
        """Where in the tick period this room ticks: the same on every hub (a hash of the room id),
        and different rooms spread over the period so one hub's rooms do not all fan out at once."""
        return (zlib.crc32(self.room_id.encode()) / 2**32) * period

    async def _tick_loop(self) -> None:
        """Ticks aligned to the wall clock at this room's phase, so every hub of a room ticks
        together. With Redis, local changes are published ``publish_lead`` seconds *before* the
        fan-out, so the other hubs' frames of the same tick are already merged when it runs: a
        room split over hubs costs that lead in latency, not a whole tick."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self.config.tick_hz
        lead = self.config.publish_lead if self.publish is not None else 0.0
        wall = time.time() - loop.time()
        phase = self.tick_phase(period)
        now_wall = loop.time() + wall
        next_at = (math.floor((now_wall - phase) / period) + 1) * period + phase - wall
        stats = self.stats
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if lead:
                self.publish_local()
                delay = next_at + lead - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            now = loop.time()
            lag = now - next_at - lead
            stats.tick_lag_sum += lag
            if lag > stats.tick_lag_max:
                stats.tick_lag_max = lag
            try:
                self.run_tick(publish=not lead)
            except Exception:  # a bug in fan-out must not stop the room
                log.exception("room %s: tick failed", self.room_id)
            next_at += period
            if now - next_at > period:  # fell more than a tick behind: do not burst to catch up
                next_at += math.ceil((now - next_at) / period) * period

    def publish_local(self) -> None:
        """Send this hub's changed local entries to the other hubs (one message per room)."""
        if self.publish is not None and self.local_pending:
            local = self.local_pending
            self.local_pending = {}
            self.publish(
                self.room_id, self.tick + 1 if self._task is not None else self.tick, list(local.values())
            )

    def run_tick(self, publish: bool = True) -> None:
        """Advance one tick: send the shared room frame (or catch-ups) and, unless the tick loop
        already did at the start of this tick, publish local changes."""
        self.tick += 1
        tick = self.tick
        stats = self.stats
        stats.ticks += 1
        pending = self.pending
        if pending:
            self.pending = {}
            self.latest.update(pending)
            changed = self.changed_at
            for pid in pending:
                changed[pid] = tick
            count = len(pending)
            frame = ws_frame(
                ROOM_HEADER_STRUCT.pack(KIND_ROOM, tick & 0xFFFFFFFF, count) + b"".join(pending.values())
            )
        else:
            count = 0
            frame = b""
        limit = self.config.send_buffer_limit
        sent = 0
        for p in self.clients.values():
            t = p.transport
            if t is None or t.is_closing():
                continue
            buffered = t.get_write_buffer_size()
            if buffered > limit:
                if count:
                    stats.skipped_sends += 1
                    if p.behind_since is None:
                        p.behind_since = tick
                if buffered > self.config.send_buffer_hard_limit:
                    self._too_slow(p)
                continue
            if p.behind_since is None:
                if count:
                    t.write(frame)
                    sent += 1
            else:
                self._catch_up(p, tick)
        stats.messages_out += sent
        stats.frames_out += sent * count
        if publish and self.publish is not None and self.local_pending:
            self.publish_local()

    def _catch_up(self, p: Participant, tick: int) -> None:
        since = p.behind_since or 0
        p.behind_since = None
        changed = self.changed_at
        entries = [e for pid, e in self.latest.items() if changed.get(pid, 0) >= since]
        if not entries:
            return
        payload = ROOM_HEADER_STRUCT.pack(KIND_ROOM, tick & 0xFFFFFFFF, len(entries)) + b"".join(entries)
        assert len(payload) == ROOM_HEADER_SIZE + 74 * len(entries)
        p.transport.write(ws_frame(payload))  # type: ignore[union-attr]
        self.stats.catch_up_sends += 1
        self.stats.messages_out += 1
        self.stats.frames_out += len(entries)

    def _too_slow(self, p: Participant) -> None:
        self.stats.slow_disconnects += 1
        log.info(
            "room %s: participant %d too slow (send buffer over hard limit), closing", self.room_id, p.pid
        )
        t = p.transport
        if t is not None:
            t.abort()
        p.violations = -1  # marks "closed by the hub": not held for resume
        p.closed_reason = "too_slow"
        _ = CloseCode.TOO_SLOW

    def broadcast_json(self, text: str, exclude: int | None = None) -> None:
        """Write one text message to every local client (same prepared bytes for all)."""
        frame = ws_frame(text.encode("utf-8"), opcode=0x1)
        hard = self.config.send_buffer_hard_limit
        for pid, p in list(self.clients.items()):
            if pid == exclude:
                continue
            t = p.transport
            if t is None or t.is_closing():
                continue
            if t.get_write_buffer_size() > hard:
                self._too_slow(p)
                continue
            t.write(frame)

    def send_json(self, p: Participant, text: str) -> None:
        t = p.transport
        if t is not None and not t.is_closing():
            t.write(ws_frame(text.encode("utf-8"), opcode=0x1))
