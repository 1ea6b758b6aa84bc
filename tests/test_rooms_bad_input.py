"""Misbehaving clients get an error message or a 4xxx close with a reason; the hub and the other
participants carry on."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from rooms_testing import running_hub

from vrhub.client import join
from vrhub.rooms.protocol import encode_expression_frame


async def _raw(url: str, room: str, session: aiohttp.ClientSession, hello: bool = True):
    ws = await session.ws_connect(f"{url}/api/rooms/{room}/ws")
    if hello:
        await ws.send_json({"type": "hello", "name": "raw"})
        welcome = await ws.receive_json()
        assert welcome["type"] == "welcome"
    return ws


async def _next_text(ws) -> dict:
    while True:
        msg = await ws.receive(timeout=3)
        if msg.type == aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"socket closed: {msg}")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x00garbage", "bad_frame"),
        (bytes([9]) + encode_expression_frame(1, 1, [0.0] * 52)[1:], "bad_version"),
        (bytes([1, 7]) + encode_expression_frame(1, 1, [0.0] * 52)[2:], "bad_kind"),
        ("[1, 2, 3]", "bad_message"),
        ('"just a string"', "bad_message"),
        ("{not json", "bad_json"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "set_avatar", "avatar_id": 5}', "bad_message"),
        ('{"type": "hello", "name": "again"}', "bad_message"),
    ],
)
async def test_bad_message_gets_error_and_socket_stays_open(tmp_path, payload, code):
    async with running_hub(tmp_path) as h, aiohttp.ClientSession() as s:
        ws = await _raw(h.url, "r-bad", s)
        await (ws.send_bytes(payload) if isinstance(payload, bytes) else ws.send_str(payload))
        err = await _next_text(ws)
        assert err["type"] == "error" and err["code"] == code and err["message"]
        await ws.send_str('{"type": "ping", "t": 1}')
        assert (await _next_text(ws))["type"] == "pong"
        assert h.hub.stats.bad_messages == 1
        await ws.close()


async def test_oversized_message_closes_4413(tmp_path):
    async with running_hub(tmp_path) as h, aiohttp.ClientSession() as s:
        ws = await _raw(h.url, "r-big", s)
        await ws.send_bytes(b"\x01" * 10_000)
        msg = await ws.receive(timeout=3)
        while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            msg = await ws.receive(timeout=3)
        assert ws.close_code == 4413 and "over 4096" in str(msg.extra)


async def test_too_many_protocol_errors_close_4400(tmp_path):
    async with running_hub(tmp_path) as h, aiohttp.ClientSession() as s:
        ws = await _raw(h.url, "r-errs", s)
        for _ in range(40):
            await ws.send_bytes(b"junk")
        async for _ in ws:
            pass
        assert ws.close_code == 4400


async def test_first_message_not_hello_closes_4400(tmp_path):
    async with running_hub(tmp_path) as h, aiohttp.ClientSession() as s:
        ws = await _raw(h.url, "r-nohello", s, hello=False)
        await ws.send_bytes(encode_expression_frame(1, 1, [0.0] * 52))
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4400 and "hello" in msg.extra


async def test_handshake_never_finished_closes_4408(tmp_path):
    async with running_hub(tmp_path, extra={"room_hello_timeout": 0.3}) as h, aiohttp.ClientSession() as s:
        ws = await _raw(h.url, "r-silent", s, hello=False)
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4408 and "hello" in msg.extra
        assert "r-silent" not in h.hub.rooms


async def test_idle_participant_closed_4408(tmp_path):
    async with running_hub(tmp_path, room_idle_timeout=0.6) as h, aiohttp.ClientSession() as s:
        watcher = await join(h.url, "r-idle", "W")  # SDK client: keeps itself alive with pings
        ws = await _raw(h.url, "r-idle", s)  # raw client: sends nothing after hello
        msg = await ws.receive(timeout=5)
        while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            msg = await ws.receive(timeout=5)
        assert ws.close_code == 4408 and "idle" in str(msg.extra)
        left = await watcher.next_event("left")
        assert left["reason"] == "idle" and watcher.close_code is None
        await watcher.leave()


async def test_sdk_client_keeps_itself_alive_past_idle_timeout(tmp_path):
    async with running_hub(tmp_path, room_idle_timeout=0.6) as h:
        a = await join(h.url, "r-alive", "A")
        await asyncio.sleep(1.5)
        assert a.close_code is None
        await a.leave()


async def test_flood_is_rate_limited_then_closed_4429(tmp_path):
    async with running_hub(tmp_path, room_max_frames_per_second=20) as h, aiohttp.ClientSession() as s:
        ws = await _raw(h.url, "r-flood", s)
        frame = encode_expression_frame(1, 1, [0.0] * 52)
        for _ in range(25):
            await ws.send_bytes(frame)
        err = await _next_text(ws)
        assert err["code"] == "rate_limited"
        assert h.hub.stats.frames_in == 20 and h.hub.stats.rate_limited == 5
        for _ in range(100):
            await ws.send_bytes(frame)
        async for _ in ws:
            pass
        assert ws.close_code == 4429


async def test_half_open_http_handshake_does_not_block_the_room(tmp_path):
    async with running_hub(tmp_path) as h:
        reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
        writer.write(b"GET /api/rooms/r-half/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")  # never ends
        await writer.drain()
        a = await join(h.url, "r-half", "A")
        b = await join(h.url, "r-half", "B")
        await a.send_frame({"jawOpen": 0.5})
        assert a.participant in (await b.next_frame(timeout=2)).frames
        writer.close()
        await a.leave()
        await b.leave()


async def test_misbehaving_client_does_not_disturb_others_tick_lag(tmp_path):
    async with running_hub(tmp_path) as h, aiohttp.ClientSession() as s:
        good = [await join(h.url, "r-mixed", f"g{i}") for i in range(3)]
        bad = await _raw(h.url, "r-mixed", s)
        loop = asyncio.get_running_loop()
        received = 0
        stop = loop.time() + 1.5

        async def misbehave():
            i = 0
            while loop.time() < stop and not bad.closed:
                i += 1
                try:
                    await bad.send_bytes(b"\xff" * (i % 90))
                    await bad.send_str("[]" if i % 2 else '{"type":"nope"}')
                except aiohttp.ClientConnectionResetError:
                    break
                await asyncio.sleep(0)

        async def send_good():
            while loop.time() < stop:
                for g in good:
                    await g.send_frame({"jawOpen": 0.5})
                await asyncio.sleep(1 / 30)

        async def receive():
            nonlocal received
            while loop.time() < stop:
                try:
                    await good[0].next_frame(timeout=0.5)
                    received += 1
                except TimeoutError:
                    pass

        await asyncio.gather(misbehave(), send_good(), receive())
        async for _ in bad:
            pass
        assert bad.closed and bad.close_code == 4400
        assert received >= 20, received  # ~45 ticks in 1.5 s; floor for a loaded 2-core box (one process)
        stats = h.hub.stats
        assert stats.tick_lag_sum / stats.ticks < 0.05, (stats.tick_lag_sum / stats.ticks, stats.tick_lag_max)
        for g in good:
            await g.leave()
