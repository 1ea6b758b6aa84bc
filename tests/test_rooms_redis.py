"""Scale-out over the real Redis at 127.0.0.1:6379: hubs in separate processes share a room."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from rooms_testing import free_port

from vrhub.client import _connect, join

pytestmark = [pytest.mark.redis]
REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[1]


def _redis_available() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


if not _redis_available():
    pytest.skip("Redis is not running at 127.0.0.1:6379", allow_module_level=True)


class HubProcess:
    def __init__(
        self, prefix: str, ttl: float = 1.5, interval: float = 0.25, redis_url: str = REDIS_URL
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vrhub.rooms.standalone",
                "--port",
                str(self.port),
                "--redis",
                redis_url,
                "--prefix",
                prefix,
                "--presence-ttl",
                str(ttl),
                "--presence-interval",
                str(interval),
                "--secret",
                "shared-secret",
            ],
            cwd=ROOT,
            env={**os.environ, "VRHUB_VAR_DIR": "/tmp/vrhub-rooms-test"},
        )

    async def ready(self) -> HubProcess:
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as s:
            while True:
                try:
                    async with s.get(f"{self.url}/metrics") as r:
                        if r.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("hub did not start")
                await asyncio.sleep(0.1)

    async def metric(self, name: str) -> float:
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/metrics") as r:
            for line in (await r.text()).splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise KeyError(name)

    async def hub_id(self, room: str, name: str) -> str:
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/api/rooms/{room}") as r:
            info = await r.json()
        return next(p["hub"] for p in info["participants"] if p["name"] == name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
async def two_hubs():
    import redis.asyncio as aioredis

    prefix = f"vrhubtest-{uuid.uuid4().hex[:10]}"
    hubs = [HubProcess(prefix), HubProcess(prefix)]
    try:
        await asyncio.gather(*(h.ready() for h in hubs))
        yield hubs
    finally:
        for h in hubs:
            h.stop()
        r = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


async def _relays(sender, receiver, timeout: float = 3.0) -> bool:
    """True when a frame from ``sender`` reaches ``receiver`` within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await sender.send_frame({"jawOpen": 0.7})
        try:
            frame = await receiver.next_frame(timeout=0.2)
        except TimeoutError:
            continue
        if sender.participant in frame.frames:
            return True
    return False


async def _a_and_b(h1: HubProcess, h2: HubProcess, room: str, **a_kwargs):
    """A joins ``room`` on h1 and B on h2; returns once A has seen B join (across the hubs)."""
    a = await join(h1.url, room, "A", **a_kwargs)
    b = await join(h2.url, room, "B")
    await a.next_event("joined")
    return a, b


async def test_two_hubs_share_a_room(two_hubs):
    h1, h2 = two_hubs
    a = await join(h1.url, "shared", "A")
    b = await join(h2.url, "shared", "B")
    assert a.participant != b.participant
    assert [p["name"] for p in b.peers.values()] == ["A"]  # welcome lists the other hub's participant
    joined = await a.next_event("joined")
    assert joined["participant"] == b.participant and joined["name"] == "B"
    assert await _relays(a, b) and await _relays(b, a)
    # relay content and latency across hubs
    await b.set_avatar("av-b")
    event = await a.next_event("avatar_ready")
    assert event["participant"] == b.participant and event["avatar_url"] == "/api/avatars/av-b.glb"
    # one Redis publish per hub per room per tick, however many local participants send
    more = [await join(h1.url, "shared", f"A{i}") for i in range(3)]
    before = await h1.metric("vrhub_redis_publishes_total")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = 0
    while loop.time() - t0 < 1.0:
        for c in (a, *more):
            await c.send_frame({"jawOpen": 0.1})
            sent += 1
        await asyncio.sleep(1 / 30)
    await asyncio.sleep(0.1)
    published = await h1.metric("vrhub_redis_publishes_total") - before
    assert published <= 1.2 * 30 * (loop.time() - t0) and published < sent / 3
    assert await h2.metric("vrhub_redis_lag_seconds_max") < 0.5
    await b.leave()
    left = await a.next_event("left")
    assert left["participant"] == b.participant and left["reason"] == "left"
    for c in (a, *more):
        await c.leave()


async def test_killed_hub_participants_vanish_within_ttl(two_hubs):
    h1, h2 = two_hubs
    a, b = await _a_and_b(h1, h2, "crash")
    assert await _relays(b, a)
    t0 = time.monotonic()
    h2.proc.send_signal(signal.SIGKILL)
    left = await a.next_event("left", timeout=6)
    waited = time.monotonic() - t0
    assert left == {"type": "left", "participant": b.participant, "reason": "hub_lost"}
    assert waited < 1.5 + 0.25 + 2.0  # ttl + presence interval + slack for a loaded 2-core box
    async with aiohttp.ClientSession() as s, s.get(f"{h1.url}/api/rooms/crash") as r:
        assert [p["name"] for p in (await r.json())["participants"]] == ["A"]
    with contextlib.suppress(Exception):
        await b.drop()
    await a.leave()


async def test_redis_connection_killed_hubs_reconnect_and_room_recovers(two_hubs):
    import redis.asyncio as aioredis

    h1, h2 = two_hubs
    a, b = await _a_and_b(h1, h2, "recover")
    assert await _relays(a, b)
    hub_ids = {await h1.hub_id("recover", "A"), await h2.hub_id("recover", "B")}
    assert len(hub_ids) == 2
    r = aioredis.Redis.from_url(REDIS_URL)
    killed = set()
    for client in await r.client_list():
        if client.get("name", "").removeprefix("vrhub-hub-") in hub_ids:
            await r.client_kill_filter(_id=client["id"])
            killed.add(client["id"])
    assert len(killed) >= 4  # each hub: the subscriber and at least one command connection
    # the room recovers without restarting either hub, in both directions
    assert await _relays(a, b, timeout=6) and await _relays(b, a, timeout=6)
    # both hubs are on new connections (redis-py's retry or our subscriber loop reconnected)
    fresh = {
        c.get("name", "").removeprefix("vrhub-hub-") for c in await r.client_list() if c["id"] not in killed
    }
    assert hub_ids <= fresh
    await r.aclose()
    assert await h1.metric("vrhub_redis_connected") == 1
    # nobody was dropped from the room during the outage
    async with aiohttp.ClientSession() as s, s.get(f"{h1.url}/api/rooms/recover") as resp:
        assert sorted(p["name"] for p in (await resp.json())["participants"]) == ["A", "B"]
    c = await join(h2.url, "recover", "C")  # and new joins work across hubs again
    assert (await a.next_event("joined"))["name"] == "C"
    for x in (a, b, c):
        await x.leave()


def _on(ws_url: str, hub: HubProcess) -> str:
    """The same room websocket URL on another hub."""
    return urlunsplit(urlsplit(ws_url)._replace(netloc=f"127.0.0.1:{hub.port}"))


async def test_resume_through_another_hub_keeps_participant_id(two_hubs):
    """A client that lost its hub connection reconnects through the other hub (as behind a load
    balancer): same participant id, no left/joined for the peers, frames flow both ways."""
    h1, h2 = two_hubs
    a = await join(h1.url, "move", "A")
    b = await join(h2.url, "move", "B")
    c = await join(h1.url, "move", "C")
    assert (await b.next_event("joined"))["name"] == "C"
    await a.drop()  # TCP cut: h1 holds A for resume
    a2 = await a.resume(h2.url)
    assert a2.participant == a.participant and a2.welcome["resumed"] is True
    assert sorted(p["name"] for p in a2.peers.values()) == ["B", "C"]
    for peer in (b, c):
        with pytest.raises(TimeoutError):
            await peer.next_event(timeout=0.5)
    assert await _relays(a2, b) and await _relays(a2, c) and await _relays(c, a2)
    # both hubs now route A through h2
    assert await h1.hub_id("move", "A") == await h2.hub_id("move", "B") == await h2.hub_id("move", "A")
    await a2.leave()
    for peer in (b, c):
        left = await peer.next_event("left")
        assert left["participant"] == a.participant and left["reason"] == "left"
    await b.leave()
    await c.leave()


async def test_resume_on_another_hub_closes_a_socket_still_open_on_the_old_one(two_hubs):
    from websockets.exceptions import ConnectionClosed

    h1, h2 = two_hubs
    a, b = await _a_and_b(h1, h2, "steal")
    # a second connection with A's resume token through h2 while A's first socket is still open
    a2 = await _connect(_on(a.url, h2), {"type": "hello", "name": "A", "resume": a.resume_token}, True)
    assert a2.participant == a.participant and a2.welcome["resumed"] is True
    with pytest.raises(ConnectionClosed):
        while True:
            await a.recv(timeout=3)
    assert a.close_code == 4000 and "another hub" in (a.close_reason or "")
    assert await _relays(a2, b)
    await a2.leave()
    await b.leave()


async def test_resume_after_the_hub_died_keeps_the_id_on_a_live_hub(two_hubs):
    h1, h2 = two_hubs
    a, b = await _a_and_b(h1, h2, "phoenix", avatar_id="av-a")
    h1.proc.send_signal(signal.SIGKILL)
    left = await b.next_event("left", timeout=6)
    assert left == {"type": "left", "participant": a.participant, "reason": "hub_lost"}
    a2 = await a.resume(h2.url)
    assert a2.participant == a.participant and a2.welcome["resumed"] is True
    back = await b.next_event("joined")
    assert back["participant"] == a.participant and back["name"] == "A" and back["avatar_id"] == "av-a"
    assert await _relays(a2, b) and await _relays(b, a2)
    await a2.leave()
    await b.leave()


async def test_resume_tokens_that_do_not_fit_join_afresh(two_hubs):
    """Bad input: a resume token of another room, a forged one, or a stale one on another hub gives
    a new participant id, never someone else's."""
    h1, h2 = two_hubs
    a = await join(h1.url, "tok-a", "A")
    b = await join(h1.url, "tok-b", "B")
    await a.drop()
    for token in (b.resume_token, a.resume_token[:-4] + "AAAA", "not-a-token"):
        other = await _connect(_on(a.url, h2), {"type": "hello", "name": "X", "resume": token}, True)
        assert other.welcome["resumed"] is False and other.participant != a.participant
        await other.leave()
    await b.leave()


class PrivateRedis:
    """A redis-server of the test's own on a free port (no persistence), so the test may restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
async def test_redis_server_restart_hubs_recover_without_restarting(tmp_path):
    """Restart the Redis server itself (its data is gone: presence hash, pid counter): both hubs
    reconnect, re-write presence, and the room works across hubs again."""
    server = PrivateRedis()
    await server.start()
    prefix = f"vrhubtest-{uuid.uuid4().hex[:10]}"
    hubs = [HubProcess(prefix, redis_url=server.url), HubProcess(prefix, redis_url=server.url)]
    try:
        await asyncio.gather(*(h.ready() for h in hubs))
        h1, h2 = hubs
        a, b = await _a_and_b(h1, h2, "restart")
        assert await _relays(a, b)
        server.kill()
        await asyncio.sleep(1.0)  # hubs notice; local relay keeps going meanwhile
        assert await h1.metric("vrhub_redis_connected") == 0
        await server.start()
        assert await _relays(a, b, timeout=8) and await _relays(b, a, timeout=8)
        assert await h1.metric("vrhub_redis_connected") == 1 and await h2.metric("vrhub_redis_connected") == 1
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(server.url)
        deadline = time.monotonic() + 5
        while len(await r.hgetall(f"{prefix}:presence:restart")) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert len(await r.hgetall(f"{prefix}:presence:restart")) == 2  # presence re-written
        await r.aclose()
        for h in hubs:  # nobody was dropped from the room
            async with aiohttp.ClientSession() as s, s.get(f"{h.url}/api/rooms/restart") as resp:
                assert sorted(p["name"] for p in (await resp.json())["participants"]) == ["A", "B"]
        c = await join(h2.url, "restart", "C")  # new ids stay unique although the counter was lost
        assert c.participant not in (a.participant, b.participant)
        assert (await a.next_event("joined"))["name"] == "C"
        for x in (a, b, c):
            await x.leave()
    finally:
        for h in hubs:
            h.stop()
        server.kill()
