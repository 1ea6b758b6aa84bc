"""Load generator for the relay benchmark: one process, many raw websocket clients, on uvloop.

Run by bench/relay.py (several of these in parallel):

    python -m bench.loadgen --spec '{"conns": [["http://127.0.0.1:8081", "room-0"], ...], ...}'

Each client joins (hello -> welcome), then sends one 74-byte expression frame at 30 Hz with the
wall-clock capture time. To stay cheap, clients are hand-rolled asyncio protocols: frames are
written with a zero masking key (legal; the payload goes out as is), and only "probe" clients (one
per room) parse what they receive: capture -> delivery latency of every entry, and per-sender seq
spans (frames missing at a probe are superseded in the hub or lost). The other clients read and
discard. Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import struct
import sys
import time
from urllib.parse import urlsplit

import numpy as np

ENTRY = np.dtype([("participant", "<u2"), ("seq", "<u2"), ("capture_ms", "<u4"), ("rest", "V66")])
HELLO = b'{"type":"hello","name":"load"}'
CLIENT_FRAME_HEAD = bytes([0x82, 0x80 | 74, 0, 0, 0, 0])  # FIN+binary, masked, len 74, zero mask
FRAME_FIELDS = struct.Struct("<BBHI")
REST = struct.pack("<4h3h", 0, 0, 0, 32767, 0, 0, 600) + bytes(range(0, 52 * 4, 4))  # 66 bytes


class Client(asyncio.Protocol):
    __slots__ = (
        "gen",
        "room",
        "path",
        "host",
        "probe",
        "transport",
        "state",
        "buf",
        "pid",
        "seq",
        "sent",
        "bytes_in",
        "welcome",
        "closed",
        "lat",
        "seqs",
    )

    def __init__(self, gen: Generator, host: str, room: str, probe: bool) -> None:
        self.gen = gen
        self.host = host
        self.room = room
        self.path = f"/api/rooms/{room}/ws"
        self.probe = probe
        self.transport: asyncio.Transport | None = None
        self.state = 0  # 0 handshake, 1 waiting welcome, 2 running
        self.buf = b""
        self.pid = -1
        self.seq = 0
        self.sent = 0
        self.bytes_in = 0
        self.welcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.lat: list[np.ndarray] = []
        self.seqs: list[np.ndarray] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"closed before welcome ({exc})"))

    def data_received(self, data: bytes) -> None:
        if self.state == 2 and not self.probe:
            self.bytes_in += len(data)
            return
        self.buf += data
        if self.state == 0:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.welcome.set_exception(ConnectionError(head[:200].decode(errors="replace")))
                return
            self.buf = rest
            self.state = 1
            self.transport.write(bytes([0x81, 0x80 | len(HELLO), 0, 0, 0, 0]) + HELLO)  # type: ignore[union-attr]
        self._parse()

    def _parse(self) -> None:
        buf = self.buf
        pos = 0
        n_buf = len(buf)
        while n_buf - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if n_buf - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if n_buf - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if n_buf - pos < head + n:
                break
            payload = buf[pos + head : pos + head + n]
            pos += head + n
            opcode = b0 & 0x0F
            if opcode == 1 and self.state == 1:
                msg = json.loads(payload)
                if msg.get("type") == "welcome":
                    self.pid = int(msg["participant"])
                    self.state = 2
                    self.welcome.set_result(None)
            elif opcode == 2 and self.probe and self.state == 2:
                self._record(payload)
            elif opcode == 9:  # ping -> pong (masked, zero key)
                self.transport.write(bytes([0x8A, 0x80 | len(payload), 0, 0, 0, 0]) + payload)  # type: ignore[union-attr]
        self.buf = buf[pos:]
        if self.state == 2 and not self.probe:
            self.buf = b""

    def _record(self, payload: bytes) -> None:
        gen = self.gen
        if not gen.measuring:
            return
        count = payload[5] | (payload[6] << 8)
        rec = np.frombuffer(payload, dtype=ENTRY, count=count, offset=7)
        rec = rec[rec["participant"] != self.pid]
        if rec.size == 0:
            return
        now_ms = int(time.time() * 1000) & 0xFFFFFFFF
        lat = (now_ms - rec["capture_ms"].astype(np.int64)) % (1 << 32)
        self.lat.append(lat)
        self.seqs.append(rec["participant"].astype(np.int64) << 16 | rec["seq"])

    def send_frame(self, ms: int) -> None:
        if self.closed or self.state != 2:
            return
        self.seq = (self.seq + 1) & 0xFFFF
        self.transport.write(CLIENT_FRAME_HEAD + FRAME_FIELDS.pack(1, 1, self.seq, ms) + REST)  # type: ignore[union-attr]
        if self.gen.measuring:
            self.sent += 1


class Generator:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.measuring = False
        self.clients: list[Client] = []

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        probes = set(self.spec.get("probe_rooms", []))
        seen: set[str] = set()
        sem = asyncio.Semaphore(64)

        async def one(url: str, room: str) -> Client:
            parts = urlsplit(url)
            probe = room in probes and room not in seen
            seen.add(room)
            async with sem:
                _, client = await loop.create_connection(
                    lambda: Client(self, parts.netloc, room, probe), parts.hostname, parts.port
                )
                await asyncio.wait_for(client.welcome, 30)
            return client

        self.clients = list(await asyncio.gather(*(one(url, room) for url, room in self.spec["conns"])))

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        hz = float(self.spec.get("hz", 30.0))
        slots = 10
        groups = [self.clients[i::slots] for i in range(slots)]
        start_at = float(self.spec["start_at"])  # wall clock, shared by all generators
        warmup = float(self.spec["warmup"])
        duration = float(self.spec["duration"])
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = loop.time()
        measure_from = t0 + warmup
        measure_to = measure_from + duration
        cpu0 = None
        k = 0
        period = 1.0 / hz / slots
        late = 0.0
        while True:
            now = loop.time()
            if not self.measuring and cpu0 is None and now >= measure_from:
                self.measuring = True
                cpu0 = time.process_time()
            if now >= measure_to:
                break
            ms = int(time.time() * 1000) & 0xFFFFFFFF
            for c in groups[k % slots]:
                c.send_frame(ms)
            k += 1
            target = t0 + k * period
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late = max(late, -delay)
        self.measuring = False
        cpu = time.process_time() - (cpu0 or 0.0)
        await asyncio.sleep(0.3)  # let in-flight frames land (not recorded: measuring is off)
        lat = (
            np.concatenate([a for c in self.clients for a in c.lat])
            if any(c.lat for c in self.clients)
            else np.zeros(0)
        )
        hist = np.bincount(np.minimum(lat, 60_000).astype(np.int64), minlength=1).tolist() if lat.size else []
        spans = 0
        got = 0
        for c in self.clients:
            if not c.seqs:
                continue
            keys = np.concatenate(c.seqs)
            senders = keys >> 16
            seqs = keys & 0xFFFF
            for s in np.unique(senders):
                q = seqs[senders == s]
                spans += int(q.max() - q.min() + 1)
                got += int(np.unique(q).size)
        return {
            "clients": len(self.clients),
            "closed": sum(c.closed for c in self.clients),
            "sent": sum(c.sent for c in self.clients),
            "latency_hist_ms": hist,
            "probe_received": got,
            "probe_span": spans,
            "cpu_s": cpu,
            "duration": duration,
            "sender_late_max_s": late,
            "bytes_in": sum(c.bytes_in for c in self.clients),
        }

    def close(self) -> None:
        for c in self.clients:
            if c.transport is not None:
                c.transport.close()


async def amain(spec: dict) -> dict:
    gen = Generator(spec)
    try:
        await gen.connect()
    except Exception as exc:
        gen.close()
        return {"error": f"connect failed: {exc!r}"}
    print(json.dumps({"ready": len(gen.clients)}), flush=True)
    if "start_at" not in spec:  # the orchestrator sends the common start time on stdin
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        spec.update(json.loads(line))
    try:
        return await gen.run()
    finally:
        gen.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True, help="JSON spec (or @file)")
    args = ap.parse_args()
    spec = json.loads(open(args.spec[1:]).read() if args.spec.startswith("@") else args.spec)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        result = uvloop.run(amain(spec))
    except ImportError:
        result = asyncio.run(amain(spec))
    result["pid"] = os.getpid()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
