"""Baseline for bench/relay.py: the naive relay, per-frame broadcast (no tick, no batching).

Same handshake and frame formats as vrhub (hello -> welcome; each incoming 74-byte frame goes out
at once to every other client of the room as a one-entry room frame), written the way a first
aiohttp version usually is: ``await ws.send_bytes(...)`` for every peer for every frame. Runs on
uvloop so the comparison isolates the relay design, not the event loop.

    python -m bench.naive_relay --port 8090
"""

from __future__ import annotations

import argparse
import json
import struct

from aiohttp import WSMsgType, web

STATS = {"frames_in": 0, "messages_out": 0, "superseded": 0}
_NEXT_PID = [0]
HEADER = struct.Struct("<BIH")


async def room_ws(request: web.Request) -> web.WebSocketResponse:
    rooms: dict[str, dict[int, web.WebSocketResponse]] = request.app["rooms"]
    room_id = request.match_info["room"]
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    msg = await ws.receive()
    if msg.type != WSMsgType.TEXT:
        await ws.close()
        return ws
    room = rooms.setdefault(room_id, {})
    _NEXT_PID[0] += 1
    pid = _NEXT_PID[0]
    await ws.send_str(json.dumps({"type": "welcome", "participant": pid, "tick_hz": 0, "peers": []}))
    room[pid] = ws
    counter = 0
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY and len(msg.data) == 74:
                STATS["frames_in"] += 1
                counter += 1
                out = HEADER.pack(2, counter, 1) + pid.to_bytes(2, "little") + msg.data[2:]
                for other_pid, other in list(room.items()):
                    if other_pid != pid and not other.closed:
                        try:
                            await other.send_bytes(out)
                            STATS["messages_out"] += 1
                        except ConnectionError:
                            pass
    finally:
        room.pop(pid, None)
    return ws


async def stats(request: web.Request) -> web.Response:
    return web.json_response(STATS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8090)
    args = ap.parse_args()
    app = web.Application()
    app["rooms"] = {}
    app.router.add_get("/api/rooms/{room}/ws", room_ws)
    app.router.add_get("/stats", stats)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
