"""RoomHub: the rooms hosted by this process, joins/leaves/resume, and the optional Redis bus."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vrhub.config import Settings
from vrhub.rooms.protocol import CloseCode, encode_control
from vrhub.rooms.room import Participant, Room, RoomConfig, RoomStats, Transport
from vrhub.rooms.tokens import TokenClaims, issue_token, verify_token

if TYPE_CHECKING:
    from vrhub.rooms.redis_bus import RedisBus

log = logging.getLogger(__name__)

RESUME_TOKEN_TTL_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class JoinRefused:
    close_code: int
    reason: str


@dataclass(slots=True)
class Joined:
    room: Room
    participant: Participant
    resumed: bool
    resume_token: str


def avatar_url_for(avatar_id: str | None) -> str | None:
    """Where a client fetches a participant's avatar (the hub's avatar API)."""
    return None if avatar_id is None else f"/api/avatars/{avatar_id}.glb"


def room_config_from(settings: Settings) -> RoomConfig:
    extra = settings.extra or {}
    return RoomConfig(
        tick_hz=float(settings.room_tick_hz),
        max_participants=int(settings.room_max_participants),
        max_frames_per_second=float(settings.room_max_frames_per_second),
        idle_timeout=float(settings.room_idle_timeout),
        send_buffer_limit=int(extra.get("room_send_buffer_limit", settings.room_send_buffer_limit)),
        send_buffer_hard_limit=int(extra.get("room_send_buffer_hard_limit", 512 * 1024)),
        resume_window=float(extra.get("room_resume_window", settings.room_resume_window)),
    )


class RoomHub:
    """Local rooms of this hub process. ``bus`` (a :class:`RedisBus`) shares rooms with other hubs."""

    def __init__(self, settings: Settings, *, hub_id: str | None = None, bus: RedisBus | None = None) -> None:
        self.settings = settings
        self.config = room_config_from(settings)
        self.stats = RoomStats()
        self.hub_id = hub_id or secrets.token_hex(6)
        self.rooms: dict[str, Room] = {}
        self.bus = bus
        self._sweeper: asyncio.Task[None] | None = None
        self._next_local_pid: dict[str, int] = {}
        #: (room, participant id) -> (monotonic deadline, the participant): members whose hub died,
        #: claimable by their resume token until the deadline
        self._lost: dict[tuple[str, int], tuple[float, Participant]] = {}
        self.closing = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="rooms-sweeper")
        if self.bus is not None:
            await self.bus.start(self)

    async def close(self) -> None:
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.bus is not None:
            await self.bus.close()
        for room in list(self.rooms.values()):
            await room.stop()

    # ------------------------------------------------------------------ rooms
    def get_room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            publish = self.bus.publish_frames if self.bus is not None else None
            room = Room(room_id, self.config, self.stats, hub_id=self.hub_id, publish=publish)
            self.rooms[room_id] = room
            room.start()
            if self.bus is not None:
                self.bus.watch(room_id)
        return room

    async def _drop_room_if_empty(self, room: Room) -> None:
        if room.empty and self.rooms.get(room.room_id) is room:
            del self.rooms[room.room_id]
            await room.stop()
            if self.bus is not None:
                self.bus.unwatch(room.room_id)

    async def _allocate_pid(self, room: Room) -> int:
        if self.bus is not None:
            pid = await self.bus.allocate_pid(room.room_id)
            if pid is not None and pid not in room.participants:
                return pid
        n = self._next_local_pid.get(room.room_id, secrets.randbelow(60000) if self.bus else 0)
        for _ in range(65536):
            n = n % 65535 + 1
            if n not in room.participants:
                break
        self._next_local_pid[room.room_id] = n
        return n

    # ------------------------------------------------------------------ join / leave
    async def join(
        self,
        room_id: str,
        *,
        transport: Transport,
        ws: Any,
        name: str,
        avatar_id: str | None,
        role: str,
        resume: str | None = None,
    ) -> Joined | JoinRefused:
        """Add a connected client (after hello) and return its participant; nothing is sent yet
        except to peers (``joined``). The caller sends ``welcome`` before the first tick."""
        fresh = room_id not in self.rooms
        room = self.get_room(room_id)
        if fresh and self.bus is not None and self.bus.redis is not None:
            try:  # learn the participants on other hubs before the welcome lists the peers
                await asyncio.wait_for(self.bus.sync_room(room), 1.0)
            except Exception as exc:  # Redis down: join locally, the presence loop catches up
                log.debug("rooms: presence sync on join failed: %s", exc)
        if resume:
            resumed = self._resume(room, resume, transport, ws, avatar_id)
            if resumed is not None:
                return resumed
        live = sum(1 for p in room.participants.values())
        if live >= self.config.max_participants:
            await self._drop_room_if_empty(room)
            return JoinRefused(
                CloseCode.ROOM_FULL, f"room is full ({self.config.max_participants} participants)"
            )
        pid = await self._allocate_pid(room)
        if self.closing:
            return JoinRefused(CloseCode.GOING_AWAY, "hub is shutting down")
        p = Participant(pid, name, avatar_id, avatar_url_for(avatar_id), role, self.hub_id, transport, ws)
        room.add(p)
        if self.bus is not None:
            self.bus.announce_join(room_id, p)
        token, _ = issue_token(
            self.settings.secret, room_id, name, role, RESUME_TOKEN_TTL_S, kind="resume", participant=pid
        )
        return Joined(room, p, False, token)

    def _resume(
        self, room: Room, token: str, transport: Transport, ws: Any, avatar_id: str | None
    ) -> Joined | None:
        """Give the participant named by a valid resume token its new socket, or None (join afresh).

        Three cases: the participant is held (or still connected) on this hub; it lives on another
        hub that shares the room over Redis (this hub takes it over and tells the old hub, which
        closes its socket with 4000: the client reconnected through another hub); or its hub died
        within the resume window (it comes back with its old id; peers, who saw ``left``/
        ``hub_lost``, get ``joined``)."""
        claims = verify_token(self.settings.secret, token, room.room_id, kind="resume")
        if not isinstance(claims, TokenClaims) or claims.participant is None:
            return None
        pid = claims.participant
        p = room.participants.get(pid)
        if p is not None and p.local:
            old_ws = p.ws
            if old_ws is not None:  # the old socket is still open: the new one replaces it
                room.detach(p)
                asyncio.ensure_future(old_ws.close(code=4000, message=b"replaced by a resumed connection"))
            room.attach(p, transport, ws)
        elif p is not None and self.bus is not None:
            old_hub = p.hub
            p.hub = self.hub_id
            room.attach(p, transport, ws)
            self.bus.announce_move(room.room_id, p, old_hub)
        elif p is None and (lost := self._lost.pop((room.room_id, pid), None)) and lost[0] > time.monotonic():
            old = lost[1]
            p = Participant(
                pid, old.name, old.avatar_id, old.avatar_url, old.role, self.hub_id, transport, ws
            )
            room.add(p)
            if self.bus is not None:
                self.bus.announce_join(room.room_id, p)
        else:
            return None
        if avatar_id and avatar_id != p.avatar_id:
            self.set_avatar(room, p, avatar_id)
        return Joined(room, p, True, token)

    def lost_with_hub(self, room_id: str, p: Participant) -> None:
        """A remote participant's hub died: keep its id (and name, avatar) claimable by its resume
        token for the resume window (its client is expected to reconnect through a live hub)."""
        self._lost[(room_id, p.pid)] = (time.monotonic() + self.config.resume_window, p)

    def moved_away(self, room: Room, p: Participant, new_hub: str) -> None:
        """Another hub took over local participant ``p`` (its client resumed there): forget the
        socket here without a ``left`` and close it if it is still open."""
        old_ws = p.ws
        room.hand_over(p, new_hub)
        if old_ws is not None:
            asyncio.ensure_future(old_ws.close(code=4000, message=b"resumed on another hub"))
        if room.empty:
            asyncio.ensure_future(self._drop_room_if_empty(room))

    def disconnected(self, room: Room, p: Participant, clean: bool, reason: str = "left") -> None:
        """The socket of ``p`` closed. Clean leaves and hub-closed sockets go at once; others are
        held for ``resume_window`` seconds."""
        if p.ws is None and p.held_until is not None:
            return  # already replaced/held
        if clean or p.violations < 0 or self.closing:
            self._remove(room, p.pid, p.closed_reason or reason)
        else:
            room.detach(p)

    def _remove(self, room: Room, pid: int, reason: str) -> None:
        p = room.remove(pid, reason)
        if p is not None and self.bus is not None and p.hub == self.hub_id:
            self.bus.announce_leave(room.room_id, pid, reason)
        if room.empty:
            asyncio.ensure_future(self._drop_room_if_empty(room))

    def set_avatar(self, room: Room, p: Participant, avatar_id: str) -> None:
        p.avatar_id = avatar_id
        p.avatar_url = avatar_url_for(avatar_id)
        text = encode_control("avatar_ready", participant=p.pid, avatar_id=avatar_id, avatar_url=p.avatar_url)
        room.broadcast_json(text)
        if self.bus is not None:
            self.bus.announce_avatar(room.room_id, p)

    async def avatar_ready(self, room_id: str, avatar_id: str, glb_url: str) -> None:
        """An avatar build finished for ``room_id``: tell the room (all hubs) where its GLB is."""
        self.deliver_avatar_ready(room_id, avatar_id, glb_url)
        if self.bus is not None:
            await self.bus.publish_event(
                room_id, {"event": "avatar_ready", "avatar_id": avatar_id, "avatar_url": glb_url}
            )

    def deliver_avatar_ready(self, room_id: str, avatar_id: str, glb_url: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        owners = [p for p in room.participants.values() if p.avatar_id == avatar_id]
        for p in owners:
            p.avatar_url = glb_url
        pid = owners[0].pid if owners else None
        room.broadcast_json(
            encode_control("avatar_ready", participant=pid, avatar_id=avatar_id, avatar_url=glb_url)
        )

    # ------------------------------------------------------------------ housekeeping
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                self.sweep()
            except Exception:
                log.exception("rooms sweeper failed")

    def sweep(self, now: float | None = None) -> None:
        """Drop held participants whose resume window passed; close idle sockets (4408)."""
        now = time.monotonic() if now is None else now
        idle = self.config.idle_timeout
        for key in [k for k, (deadline, _) in self._lost.items() if deadline < now]:
            del self._lost[key]
        for room in list(self.rooms.values()):
            for p in list(room.participants.values()):
                if p.held_until is not None and p.ws is None and now > p.held_until:
                    self._remove(room, p.pid, "timeout")
                elif p.ws is not None and idle > 0 and now - p.last_seen > idle:
                    p.violations = -1
                    p.closed_reason = "idle"
                    asyncio.ensure_future(
                        p.ws.close(code=CloseCode.TIMEOUT, message=f"idle for more than {idle:g} s".encode())
                    )
                    p.last_seen = now  # do not close twice

    def snapshot(self, room_id: str) -> dict[str, Any]:
        room = self.rooms.get(room_id)
        participants = []
        if room is not None:
            for p in room.participants.values():
                info = p.info()
                info["connected"] = p.ws is not None or not p.local
                info["hub"] = p.hub
                participants.append(info)
        return {
            "room": room_id,
            "tick_hz": self.config.tick_hz,
            "participants": sorted(participants, key=lambda i: i["participant"]),
        }
