"""A client that stops reading skips ticks: the hub's per-client buffer stays flat (no queue grows),
and the other participants keep their rate."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

from rooms_testing import running_hub

from vrhub.client import join
from vrhub.rooms.protocol import decode_room_frame


class RawSocketClient:
    """A websocket client on a bare non-blocking socket: nothing reads it unless we call recv_frame
    (so "stop reading" really leaves the bytes in the kernel)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def join(cls, port: int, room: str) -> RawSocketClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        self = cls(sock)
        await self.loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await self.loop.sock_sendall(
            sock,
            f"GET /api/rooms/{room}/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode(),
        )
        while b"\r\n\r\n" not in self.buf:
            self.buf += await self.loop.sock_recv(sock, 65536)
        self.buf = self.buf.split(b"\r\n\r\n", 1)[1]
        payload = json.dumps({"type": "hello", "name": "stalled"}).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self.loop.sock_sendall(sock, bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        return self

    async def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = await self.loop.sock_recv(self.sock, 65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    async def recv_frame(self) -> tuple[int, bytes]:
        await self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, head = b1 & 0x7F, 2
        if n == 126:
            await self._need(4)
            n, head = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            await self._need(10)
            n, head = struct.unpack("!Q", self.buf[2:10])[0], 10
        await self._need(head + n)
        data = self.buf[head : head + n]
        self.buf = self.buf[head + n :]
        return b0 & 0x0F, data


async def test_stalled_reader_skips_ticks_buffer_stays_flat_others_keep_rate(tmp_path):
    limit = 8 * 1024
    async with running_hub(
        tmp_path, extra={"room_send_buffer_limit": limit, "room_so_sndbuf": 8 * 1024}
    ) as h:
        room_id = "r-stall"
        senders = [await join(h.url, room_id, f"s{i}", decode=False) for i in range(8)]
        raw = await RawSocketClient.join(h.port, room_id)
        opcode, welcome = await raw.recv_frame()
        stalled_pid = json.loads(welcome)["participant"]
        room = h.hub.rooms[room_id]
        stalled = room.clients[stalled_pid]
        loop = asyncio.get_running_loop()
        received = {s.participant: 0 for s in senders}
        samples: list[int] = []
        stop = loop.time() + 4.0

        async def send(s):
            while loop.time() < stop:
                await s.send_frame({"jawOpen": 0.5, "mouthFunnel": 0.2})
                await asyncio.sleep(1 / 30)

        async def receive(s):
            while loop.time() < stop:
                try:
                    item = await s.recv(timeout=0.5)
                except TimeoutError:
                    continue
                if isinstance(item, bytes):
                    received[s.participant] += 1

        async def sample():
            while loop.time() < stop:
                samples.append(stalled.transport.get_write_buffer_size())
                await asyncio.sleep(0.05)

        await asyncio.gather(*(send(s) for s in senders), *(receive(s) for s in senders), sample())
        # The hub noticed: room frames were skipped for the stalled client, and nothing piled up.
        assert h.hub.stats.skipped_sends >= 15
        frame_bytes = 4 + 7 + 74 * 9
        assert max(samples) <= limit + frame_bytes, max(samples)
        # Roughly 30 Hz for 4 s for everyone else (generous floor for a shared 2-core CI box).
        assert min(received.values()) >= 60, received
        stats = h.hub.stats
        assert stats.tick_lag_sum / stats.ticks < 0.05, (stats.tick_lag_sum / stats.ticks, stats.tick_lag_max)

        # When it reads again it recovers: stale frames drain from the kernel, then one catch-up
        # frame brings the latest frame of every sender.
        last = None
        while True:
            try:
                opcode, data = await asyncio.wait_for(raw.recv_frame(), 1.0)
            except TimeoutError:
                break
            if opcode == 2:
                last = decode_room_frame(data)
        assert last is not None and room.clients[stalled_pid].behind_since is None
        assert {pid: f.seq for pid, f in last.frames.items()} == {s.participant: s.seq for s in senders}
        raw.sock.close()
        for s in senders:
            await s.leave()
