"""Scale-out over the real Redis at 127.0.0.1:6379: hubs in separate processes share a room."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from rooms_testing import free_port

from vrhub.client import join

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
    def __init__(self, prefix: str, ttl: float = 1.5, interval: float = 0.25) -> None:
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
                REDIS_URL,
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
    a = await join(h1.url, "crash", "A")
    b = await join(h2.url, "crash", "B")
    await a.next_event("joined")
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
    a = await join(h1.url, "recover", "A")
    b = await join(h2.url, "recover", "B")
    await a.next_event("joined")
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
