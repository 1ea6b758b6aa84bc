"""Relay benchmark: rooms of 30, every participant sends a 74-byte expression frame at 30 Hz.

    python -m bench.relay            # default sweep, ~10 s per point
    python -m bench.relay --quick    # short points, fewer sizes
    python -m bench.relay --servers vrhub,node --sizes 900,1500 --duration 8

For each server and N (300 upward until p99 > --max-p99 ms) it starts the load generator
(bench/loadgen.py) in --generators separate processes on uvloop, and measures over the window:
capture -> delivery latency p50/p99 (every entry received by one probe client per room per
generator), delivered % (entries received / seq span at the probes), superseded % (frames replaced
in the server by a newer frame of the same participant before its tick; not a loss), lost %
(the rest), server CPU and generator CPU (% of one core), and the server's CPU µs per
(frame in + message out). Servers, measured side by side in the same run:

  naive   bench/naive_relay.py: aiohttp, per-frame broadcast (the baseline)
  vrhub   python -m vrhub.rooms.standalone, one hub process
  vrhub2  two hub processes + Redis (127.0.0.1:6379), every room split across both hubs
  node    bench/node_relay.mjs: Node.js `ws` relay with the same tick design

Ablations (not in the default list): vrhub-slowpath (every frame through aiohttp's reader queue),
vrhub-asyncio (the stock asyncio loop instead of uvloop).

The frame is 74 bytes (ARCHITECTURE.md); issue 5's text says 76.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """user+system CPU seconds of a process (and its threads)."""
    user, system = proc_cpu_split(pid)
    return user + system


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (and its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK


def redis_pid() -> int | None:
    try:
        out = subprocess.run(
            ["redis-cli", "info", "server"], capture_output=True, text=True, timeout=2
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":")[1])
    return None


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


@dataclass
class Server:
    name: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    stats_kind: str = "json"  # json (/stats) or prometheus (/metrics)
    redis_prefix: str = ""

    def counters(self) -> dict[str, float]:
        total = {"frames_in": 0.0, "messages_out": 0.0, "superseded": 0.0, "superseded_remote": 0.0}
        for url in self.urls:
            if self.stats_kind == "json":
                with urllib.request.urlopen(f"{url}/stats", timeout=30) as r:
                    data = json.loads(r.read())
                for k in total:
                    total[k] += float(data.get(k, 0))
            else:
                with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
                    text = r.read().decode()
                for line in text.splitlines():
                    for k in total:
                        if line.startswith(f"vrhub_room_{k}_total "):
                            total[k] += float(line.split()[1])
        return total

    def cpu(self) -> float:
        return sum(proc_cpu(p.pid) for p in self.procs)

    def cpu_system(self) -> float:
        return sum(proc_cpu_split(p.pid)[1] for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.redis_prefix:
            with contextlib.suppress(Exception):
                import redis

                r = redis.Redis()
                keys = list(r.scan_iter(f"{self.redis_prefix}:*"))
                if keys:
                    r.delete(*keys)


def start_server(name: str) -> Server:
    env = {**os.environ, "VRHUB_VAR_DIR": "/tmp/vrhub-bench", "PYTHONPATH": str(ROOT)}
    quiet = {"stdout": subprocess.DEVNULL, "cwd": ROOT, "env": env}
    hub_args = ["--max-participants", "200", "--max-fps", "120", "--secret", "bench"]
    if name.startswith("external="):  # an already running vrhub (e.g. under a profiler)
        s = Server("external", stats_kind="prometheus", urls=name.split("=", 1)[1].split("+"))
        return s
    if name == "naive":
        port = free_port()
        s = Server(name, [subprocess.Popen([PY, "-m", "bench.naive_relay", "--port", str(port)], **quiet)])
        s.urls = [f"http://127.0.0.1:{port}"]
    elif name == "node":
        port = free_port()
        node = shutil.which("node") or "node"
        s = Server(
            name,
            [subprocess.Popen([node, str(ROOT / "bench" / "node_relay.mjs"), "--port", str(port)], **quiet)],
        )
        s.urls = [f"http://127.0.0.1:{port}"]
    elif name == "vrhub":
        port = free_port()
        s = Server(
            name,
            [subprocess.Popen([PY, "-m", "vrhub.rooms.standalone", "--port", str(port), *hub_args], **quiet)],
        )
        s.urls = [f"http://127.0.0.1:{port}"]
        s.stats_kind = "prometheus"
    elif name == "vrhub2":
        prefix = f"vrhubbench-{uuid.uuid4().hex[:8]}"
        s = Server(name, stats_kind="prometheus", redis_prefix=prefix)
        for _ in range(2):
            port = free_port()
            cmd = [
                PY,
                "-m",
                "vrhub.rooms.standalone",
                "--port",
                str(port),
                "--redis",
                "redis://127.0.0.1:6379/0",
            ]
            s.procs.append(subprocess.Popen([*cmd, "--prefix", prefix, *hub_args], **quiet))
            s.urls.append(f"http://127.0.0.1:{port}")
    else:
        raise SystemExit(f"unknown server {name!r}")
    for url in s.urls:
        wait_port(int(url.rsplit(":", 1)[1]))
    return s


@dataclass
class Point:
    server: str
    n: int
    p50: float = float("nan")
    p99: float = float("nan")
    delivered: float = float("nan")
    superseded: float = float("nan")
    lost: float = float("nan")
    server_cpu: float = float("nan")
    gen_cpu: float = float("nan")
    redis_cpu: float = float("nan")
    us_per_op: float = float("nan")
    kernel_share: float = float("nan")
    error: str = ""


def run_point(server: Server, n: int, args: argparse.Namespace, tag: str) -> Point:
    rooms = [f"{tag}-{n}-r{i}" for i in range((n + args.room_size - 1) // args.room_size)]
    conns = []
    for i in range(n):
        room = rooms[i // args.room_size]
        url = server.urls[i % len(server.urls)]  # two hubs: every room split across both
        conns.append([url, room])
    gens = []
    for g in range(args.generators):
        spec = {
            "conns": conns[g :: args.generators],
            "probe_rooms": rooms,
            "warmup": args.warmup,
            "duration": args.duration,
            "hz": 30.0,
        }
        spec_path = Path(f"/tmp/vrhub-bench-spec-{os.getpid()}-{g}.json")
        spec_path.write_text(json.dumps(spec))
        gens.append(
            subprocess.Popen(
                [PY, "-m", "bench.loadgen", "--spec", f"@{spec_path}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        )
    point = Point(server.name, n)
    try:
        for g in gens:
            line = g.stdout.readline()  # type: ignore[union-attr]
            if not line or "ready" not in line:
                point.error = f"generator failed to connect: {line.strip()[:200]}"
                return point
        # Late spec field: all generators start together (they read start_at from the spec file
        # only after connecting, so we hand it over on stdin).
        start_at = time.time() + 0.3
        for g in gens:
            g.stdin.write(json.dumps({"start_at": start_at}) + "\n")  # type: ignore[union-attr]
            g.stdin.flush()  # type: ignore[union-attr]
        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        rpid = redis_pid() if server.redis_prefix else None
        cpu0, r0, sys0 = server.cpu(), (proc_cpu(rpid) if rpid else 0.0), server.cpu_system()
        t = time.monotonic()
        c0 = server.counters()
        slow_stats = time.monotonic() - t > 1.0
        time.sleep(max(0.0, start_at + args.warmup + args.duration - time.time()))
        cpu1, r1, sys1 = server.cpu(), (proc_cpu(rpid) if rpid else 0.0), server.cpu_system()
        t = time.monotonic()
        c1 = server.counters()
        slow_stats = slow_stats or time.monotonic() - t > 1.0
        results = []
        for g in gens:
            out, _ = g.communicate(timeout=60)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            results.append(json.loads(lines[-1]))
    finally:
        for g in gens:
            if g.poll() is None:
                g.kill()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        point.error = errors[0]
        return point
    hist = np.zeros(60_001, np.int64)
    for r in results:
        h = np.asarray(r["latency_hist_ms"], np.int64)
        hist[: h.size] += h
    if hist.sum():
        cdf = np.cumsum(hist) / hist.sum()
        point.p50 = float(np.searchsorted(cdf, 0.50))
        point.p99 = float(np.searchsorted(cdf, 0.99))
    span = sum(r["probe_span"] for r in results)
    got = sum(r["probe_received"] for r in results)
    d_in = c1["frames_in"] - c0["frames_in"]
    d_out = c1["messages_out"] - c0["messages_out"]
    # Frames of another hub's participant replaced before this hub's tick miss only at this hub's
    # clients: with H hubs and rooms split evenly, (H - 1) / H of what a probe sees is remote.
    hubs = len(server.urls)
    d_sup = c1["superseded"] - c0["superseded"]
    d_sup += (c1["superseded_remote"] - c0["superseded_remote"]) * (hubs - 1) / hubs
    point.delivered = 100.0 * got / span if span else 0.0
    point.superseded = 100.0 * d_sup / d_in if d_in else 0.0
    point.lost = max(0.0, 100.0 - point.delivered - point.superseded)
    point.server_cpu = 100.0 * (cpu1 - cpu0) / args.duration
    point.kernel_share = 100.0 * (sys1 - sys0) / (cpu1 - cpu0) if cpu1 > cpu0 else float("nan")
    point.gen_cpu = 100.0 * sum(r["cpu_s"] for r in results) / args.duration
    point.redis_cpu = 100.0 * (r1 - r0) / args.duration if rpid else float("nan")
    # An overloaded server answers its stats late: then the counters do not match the window.
    point.us_per_op = (
        1e6 * (cpu1 - cpu0) / (d_in + d_out) if d_in + d_out and not slow_stats else float("nan")
    )
    closed = sum(r["closed"] for r in results)
    if closed:
        point.error = f"{closed} clients were disconnected"
    return point


def fmt(v: float, digits: int = 0) -> str:
    return "—" if v != v else f"{v:.{digits}f}"


def table(points: list[Point]) -> str:
    rows = [
        "| server | N | p50 ms | p99 ms | delivered % | superseded % | lost % | server CPU % | generators CPU % "
        "| Redis CPU % | server µs per (frame in + msg out) | server CPU in kernel % | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        rows.append(
            f"| {p.server} | {p.n} | {fmt(p.p50)} | {fmt(p.p99)} | {fmt(p.delivered, 2)} | {fmt(p.superseded, 2)} "
            f"| {fmt(p.lost, 2)} | {fmt(p.server_cpu)} | {fmt(p.gen_cpu)} | {fmt(p.redis_cpu)} | {fmt(p.us_per_op, 1)} | {fmt(p.kernel_share)} | {p.error} |"
        )
    return "\n".join(rows)


def summary(points: list[Point], servers: list[str], ok_p99: float) -> str:
    def best(name: str) -> Point | None:
        good = [p for p in points if p.server == name and not p.error and p.p99 <= ok_p99 and p.lost <= 0.1]
        return max(good, key=lambda p: p.n) if good else None

    head = "| | " + " | ".join(servers) + " |"
    rows = [head, "|---|" + "---:|" * len(servers)]
    bests = {s: best(s) for s in servers}
    rows.append(
        f"| most participants at p99 ≤ {ok_p99:g} ms, lost ≤ 0.1 % | "
        + " | ".join(
            str(b.n) if b else "<" + str(min((p.n for p in points if p.server == s), default=0))
            for s, b in bests.items()
        )
        + " |"
    )
    rows.append(
        "| server µs per (frame in + msg out) at that N | "
        + " | ".join(fmt(b.us_per_op, 1) if b else "—" for b in bests.values())
        + " |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s points, sizes 300,900,1500")
    ap.add_argument("--servers", default="naive,vrhub,vrhub2,node")
    ap.add_argument("--sizes", default=None, help="comma-separated N (default 300,600,...,2400)")
    ap.add_argument(
        "--naive-sizes",
        default="10,20,30,60,120,180,240",
        help="N for the naive baseline (stops past its limit)",
    )
    ap.add_argument("--duration", type=float, default=None, help="measured seconds per point (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--generators", type=int, default=2)
    ap.add_argument("--room-size", type=int, default=30)
    ap.add_argument("--max-p99", type=float, default=200.0, help="stop a server's sweep above this p99 (ms)")
    ap.add_argument("--ok-p99", type=float, default=50.0, help="p99 goal for the summary (ms)")
    args = ap.parse_args(argv)
    if args.duration is None:
        args.duration = 5.0 if args.quick else 10.0
    sizes = [
        int(s)
        for s in (
            args.sizes or ("300,900,1500" if args.quick else "300,600,900,1200,1500,1800,2100,2400")
        ).split(",")
    ]
    naive_sizes = [int(s) for s in args.naive_sizes.split(",")]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    points: list[Point] = []
    print(
        f"relay benchmark: rooms of {args.room_size}, 74-byte frames at 30 Hz, {args.generators} generator processes, "
        f"{args.duration:g} s per point, {os.cpu_count()} CPUs",
        flush=True,
    )
    for name in servers:
        if name == "vrhub2" and redis_pid() is None:
            print("vrhub2: skipped (no Redis at 127.0.0.1:6379)", flush=True)
            continue
        server = start_server(name)
        try:
            for n in naive_sizes if name == "naive" else sizes:
                try:
                    p = run_point(server, n, args, uuid.uuid4().hex[:6])
                except Exception as exc:  # an overloaded server may not even answer its stats
                    p = Point(name, n, error=f"{type(exc).__name__}: {exc}"[:120])
                points.append(p)
                print(table([p]).splitlines()[-1], flush=True)
                if p.error or not (p.p99 <= args.max_p99):
                    break
        finally:
            server.stop()
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.1f} (other work on the machine competes for the cores)"
    )
    print()
    print(table(points))
    print()
    print(summary(points, servers, args.ok_p99))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
