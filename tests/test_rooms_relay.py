"""Room membership and relay over a real hub and real SDK clients."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from rooms_testing import running_hub

from vrhub.client import join
from vrhub.pipeline.types import ARKIT_BLENDSHAPES
from vrhub.rooms.protocol import RoomFrame, decode_room_frame, encode_expression_frame


async def test_join_leave_sends_welcome_joined_left(tmp_path):
    async with running_hub(tmp_path) as h:
        a = await join(h.url, "r-join", "Ada", avatar_id="av1")
        assert a.peers == {}
        b = await join(h.url, "r-join", "Bo")
        assert list(b.peers) == [a.participant]
        assert b.peers[a.participant]["name"] == "Ada"
        assert b.peers[a.participant]["avatar_url"] == "/api/avatars/av1.glb"
        joined = await a.next_event("joined")
        assert joined["participant"] == b.participant and joined["name"] == "Bo"
        await b.leave()
        left = await a.next_event("left")
        assert left == {"type": "left", "participant": b.participant, "reason": "left"}
        assert h.hub.snapshot("r-join")["participants"][0]["name"] == "Ada"
        await a.leave()
        await asyncio.sleep(0.05)
        assert "r-join" not in h.hub.rooms


async def test_relay_delivers_exact_frame_to_peers(tmp_path):
    async with running_hub(tmp_path) as h:
        a = await join(h.url, "r-relay", "A")
        b = await join(h.url, "r-relay", "B")
        weights = {"jawOpen": 0.5, "eyeBlinkLeft": 1.0, "tongueOut": 0.25}
        await a.send_frame(
            weights, rotation=(0.0, 0.7071, 0.0, 0.7071), position_mm=(12, -40, 600), capture_ms=777
        )
        frame = await b.next_frame()
        assert set(frame.frames) == {a.participant}
        got = frame.frames[a.participant]
        assert got.seq == 1 and got.capture_ms == 777 and got.position_mm == (12, -40, 600)
        np.testing.assert_allclose(got.rotation, (0.0, 0.7071, 0.0, 0.7071), atol=1e-4)
        expected = np.zeros(52, np.uint8)
        for name, value in weights.items():
            expected[ARKIT_BLENDSHAPES.index(name)] = round(value * 255)
        np.testing.assert_array_equal(got.weights, expected)
        await a.leave()
        await b.leave()


async def test_latest_frame_wins_and_superseded_are_counted(tmp_path):
    async with running_hub(tmp_path, room_tick_hz=2.0) as h:
        a = await join(h.url, "r-latest", "A")
        b = await join(h.url, "r-latest", "B", decode=False)
        # Wait for a tick boundary, then send 5 frames well inside one 500 ms tick.
        room = h.hub.rooms["r-latest"]
        start = room.tick
        while room.tick == start:
            await asyncio.sleep(0.005)
        for seq in range(1, 6):
            await a.send_raw(encode_expression_frame(seq, seq, np.full(52, seq / 10)))
        raw = await asyncio.wait_for(_next_binary(b), 2)
        decoded = decode_room_frame(raw)
        assert isinstance(decoded, RoomFrame)
        assert decoded.frames[a.participant].seq == 5
        assert h.hub.stats.superseded == 4
        await a.leave()
        await b.leave()


async def _next_binary(client):
    while True:
        item = await client.recv()
        if isinstance(item, bytes):
            return item


async def test_one_batched_frame_per_tick_carries_every_changed_participant(tmp_path):
    async with running_hub(tmp_path, room_tick_hz=5.0) as h:
        clients = [await join(h.url, "r-batch", f"p{i}") for i in range(4)]
        viewer = await join(h.url, "r-batch", "viewer", decode=False)
        room = h.hub.rooms["r-batch"]
        start = room.tick
        while room.tick == start:
            await asyncio.sleep(0.005)
        for c in clients:
            await c.send_frame({"jawOpen": 0.1 * c.participant})
        raw = await asyncio.wait_for(_next_binary(viewer), 2)
        frame = decode_room_frame(raw)
        assert sorted(frame.frames) == sorted(c.participant for c in clients)
        # everyone got the same shared buffer (the senders see their own entry too)
        assert h.hub.stats.messages_out >= 5
        for c in clients:
            await c.leave()
        await viewer.leave()


async def test_tick_zero_relays_immediately(tmp_path):
    async with running_hub(tmp_path, room_tick_hz=0.0) as h:
        a = await join(h.url, "r-now", "A")
        b = await join(h.url, "r-now", "B")
        assert b.tick_hz == 0.0
        loop = asyncio.get_running_loop()
        for seq in range(3):
            t0 = loop.time()
            await a.send_frame({"jawOpen": 0.3})
            frame = await b.next_frame(timeout=1)
            assert frame.frames[a.participant].seq == seq + 1
            assert loop.time() - t0 < 0.2
        assert not h.hub.rooms["r-now"]._task  # no tick task: purely event driven
        await a.leave()
        await b.leave()


async def test_late_joiner_gets_a_snapshot_of_latest_frames(tmp_path):
    async with running_hub(tmp_path) as h:
        a = await join(h.url, "r-snap", "A")
        await a.send_frame({"mouthSmileLeft": 0.8})
        await asyncio.sleep(0.1)
        b = await join(h.url, "r-snap", "B")
        frame = await b.next_frame(timeout=1)
        assert frame.frames[a.participant].weights[ARKIT_BLENDSHAPES.index("mouthSmileLeft")] == 204
        await a.leave()
        await b.leave()


async def test_resume_within_window_keeps_participant_id(tmp_path):
    async with running_hub(tmp_path, extra={"room_resume_window": 15.0}) as h:
        a = await join(h.url, "r-resume", "A")
        b = await join(h.url, "r-resume", "B")
        await b.drop()  # TCP cut, no leave
        await asyncio.sleep(0.2)
        assert b.participant in h.hub.rooms["r-resume"].participants  # held, not left
        b2 = await b.resume()
        assert b2.participant == b.participant and b2.welcome["resumed"] is True
        await a.send_frame({"jawOpen": 1.0})
        frame = await b2.next_frame(timeout=2)
        assert a.participant in frame.frames
        with pytest.raises(asyncio.TimeoutError):
            await a.next_event("left", timeout=0.3)
        await b2.leave()
        assert (await a.next_event("left"))["participant"] == b.participant
        await a.leave()


async def test_dropped_participant_leaves_after_resume_window(tmp_path):
    async with running_hub(tmp_path, extra={"room_resume_window": 0.5}) as h:
        a = await join(h.url, "r-expire", "A")
        b = await join(h.url, "r-expire", "B")
        await b.drop()
        left = await a.next_event("left", timeout=3)
        assert left["participant"] == b.participant and left["reason"] == "timeout"
        late = await b.resume()  # too late: a new participant
        assert late.participant != b.participant and late.welcome["resumed"] is False
        await late.leave()
        await a.leave()


async def test_avatar_ready_reaches_the_room(tmp_path):
    async with running_hub(tmp_path) as h:
        a = await join(h.url, "r-avatar", "A", avatar_id="job-42")
        b = await join(h.url, "r-avatar", "B")
        await h.hub.avatar_ready("r-avatar", "job-42", "/api/avatars/job-42.glb")
        event = await b.next_event("avatar_ready")
        assert event["avatar_id"] == "job-42" and event["avatar_url"] == "/api/avatars/job-42.glb"
        assert event["participant"] == a.participant
        assert (await a.next_event("avatar_ready"))["avatar_id"] == "job-42"
        await b.set_avatar("new-7")
        event = await a.next_event("avatar_ready")
        assert event == {
            "type": "avatar_ready",
            "participant": b.participant,
            "avatar_id": "new-7",
            "avatar_url": "/api/avatars/new-7.glb",
        }
        assert b.participant in a.peers and a.peers[b.participant]["avatar_id"] == "new-7"
        await a.leave()
        await b.leave()


async def test_room_full_closes_4409(tmp_path):
    from vrhub.client import JoinError

    async with running_hub(tmp_path, room_max_participants=2) as h:
        a = await join(h.url, "r-full", "A")
        b = await join(h.url, "r-full", "B")
        with pytest.raises(JoinError) as err:
            await join(h.url, "r-full", "C")
        assert err.value.code == 4409 and "full" in err.value.reason
        await a.leave()
        await b.leave()


async def test_participants_and_metrics_endpoints(tmp_path):
    import aiohttp

    async with running_hub(tmp_path) as h:
        a = await join(h.url, "r-info", "A")
        await a.send_frame({"jawOpen": 0.2})
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{h.url}/api/rooms/r-info") as r:
                info = await r.json()
            assert [p["name"] for p in info["participants"]] == ["A"]
            await asyncio.sleep(0.1)
            async with s.get(f"{h.url}/metrics") as r:
                text = await r.text()
        assert 'vrhub_room_participants{where="local_connected"} 1.0' in text
        assert "vrhub_room_frames_in_total 1.0" in text
        assert "vrhub_room_tick_lag_seconds_max" in text
        await a.leave()


async def test_shutdown_closes_sockets_going_away(tmp_path):
    async with running_hub(tmp_path) as h:
        a = await join(h.url, "r-bye", "A")
    await a.ws.wait_closed()
    assert a.close_code == 1001
