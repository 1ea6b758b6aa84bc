"""Camera or video file -> mediapipe face mesh -> 52 ARKit weights + head pose -> a room on a hub.

Usage::

    python -m vrhub.tracking.tracker --video clip.mp4 --hub http://127.0.0.1:8080 --room class1 --name Ada
    python -m vrhub.tracking.tracker --camera 0 --hub http://127.0.0.1:8080 --room class1 --name Ada
    python -m vrhub.tracking.tracker --video clip.mp4 --max-frames 50      # no hub: prints JSON lines

Frames are read with OpenCV, landmarks come from mediapipe FaceMesh in video mode with iris
refinement (478 landmarks), :class:`vrhub.tracking.solver.FaceSolver` turns them into weights, and
each result is sent as a 74-byte expression frame (``vrhub.rooms.protocol``), at most ``--fps`` per
second. A video file is paced at its own frame rate unless ``--fast``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vrhub.tracking.solver import FaceSolver, TrackingResult, default_solver_matrices


class TrackerError(Exception):
    """A problem the user can fix (no such video, camera not available, hub unreachable)."""


@dataclass(frozen=True)
class LandmarkFrame:
    """One video frame's face.

    landmarks : (478, 3) float64 — mediapipe's normalised coordinates (x, y in [0, 1], z relative).
    image_size : (width, height) pixels. time_ms : position in the video (or since the camera opened).
    """

    index: int
    time_ms: float
    landmarks: np.ndarray
    image_size: tuple[int, int]


@dataclass(frozen=True)
class TrackedFrame:
    frame: LandmarkFrame
    result: TrackingResult


def _open_capture(source: str | int):
    import cv2  # noqa: PLC0415

    if isinstance(source, str) and not Path(source).is_file():
        raise TrackerError(f"video file {source!r} does not exist")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        what = f"camera {source}" if isinstance(source, int) else f"video {source!r}"
        raise TrackerError(f"could not open {what} with OpenCV")
    return cap


def iter_landmarks(
    source: str | int, max_frames: int | None = None, loop: bool = False
) -> Iterator[LandmarkFrame | None]:
    """Yield a :class:`LandmarkFrame` per video frame, or ``None`` for a frame with no face.

    source : a video file path or a camera index. loop : restart a file at its end.
    """
    import cv2  # noqa: PLC0415
    import mediapipe as mp  # noqa: PLC0415

    cap = _open_capture(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    started = time.monotonic()
    count = 0
    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=1,
        refine_landmarks=True,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )
    try:
        index = 0
        while max_frames is None or count < max_frames:
            ok, bgr = cap.read()
            if not ok:
                if loop and isinstance(source, str):
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, bgr = cap.read()
                if not ok:
                    break
            count += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            result = mesh.process(rgb)
            t_ms = index * 1000.0 / fps if isinstance(source, str) else (time.monotonic() - started) * 1e3
            index += 1
            if not result.multi_face_landmarks:
                yield None
                continue
            lm = result.multi_face_landmarks[0].landmark
            arr = np.array([(p.x, p.y, p.z) for p in lm], np.float64)
            yield LandmarkFrame(index - 1, t_ms, arr, (rgb.shape[1], rgb.shape[0]))
    finally:
        mesh.close()
        cap.release()


def track(
    source: str | int,
    solver: FaceSolver | None = None,
    max_frames: int | None = None,
    loop: bool = False,
    calibrate_frames: int = 0,
) -> Iterator[TrackedFrame | None]:
    """Landmarks -> weights for every frame (``None`` where no face was found).

    calibrate_frames : when > 0, the first N frames with a face (assumed relaxed) set the neutral.
    """
    solver = solver or FaceSolver(default_solver_matrices())
    pending: list[LandmarkFrame] = []
    for frame in iter_landmarks(source, max_frames, loop):
        if frame is None:
            yield None
            continue
        if calibrate_frames and len(pending) < calibrate_frames:
            pending.append(frame)
            if len(pending) == calibrate_frames:
                solver.calibrate_neutral([f.landmarks for f in pending], frame.image_size, normalised=True)
        yield TrackedFrame(frame, solver.solve(frame.landmarks, frame.image_size, normalised=True))


def room_url(hub: str, room: str, token: str | None = None) -> str:
    """http(s)://host:port -> ws(s)://host:port/api/rooms/{room}/ws[?token=...]."""
    from urllib.parse import quote  # noqa: PLC0415

    base = hub.rstrip("/")
    if base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif not base.startswith(("ws://", "wss://")):
        base = "ws://" + base
    url = f"{base}/api/rooms/{quote(room, safe='')}/ws"
    return url + (f"?token={quote(token, safe='')}" if token else "")


def encode_result(seq: int, capture_ms: int, result: TrackingResult) -> bytes:
    """One 74-byte expression frame for a tracking result."""
    from vrhub.rooms.protocol import ProtocolError, encode_expression_frame  # noqa: PLC0415

    position = np.clip(result.pose.position_mm, -32767, 32767)
    frame = encode_expression_frame(seq, capture_ms, result.weights, result.pose.quaternion, position)
    if isinstance(frame, ProtocolError):
        raise TrackerError(f"could not encode a frame: {frame.message}")
    return frame


async def send_to_room(
    frames: Iterator[TrackedFrame | None],
    url: str,
    name: str,
    avatar_id: str | None = None,
    max_fps: float = 30.0,
    pace_ms: float | None = None,
) -> dict[str, Any]:
    """Join the room at ``url`` and send one expression frame per tracked frame (at most ``max_fps``).

    pace_ms : when set (video files), frame i is sent no earlier than i * pace_ms after the start,
    so a file plays at its own speed. Returns counters {"sent", "no_face", "welcome"}.
    """
    import websockets  # noqa: PLC0415

    sent = no_face = 0
    min_gap = 1.0 / max_fps if max_fps > 0 else 0.0
    try:
        ws = await websockets.connect(url, max_size=2**20)
    except (OSError, websockets.exceptions.WebSocketException) as exc:
        raise TrackerError(f"could not connect to {url}: {exc}") from exc
    async with ws:
        await ws.send(json.dumps({"type": "hello", "name": name, "avatar_id": avatar_id}))
        welcome: dict[str, Any] = {}
        while not welcome:
            msg = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(msg, str):
                data = json.loads(msg)
                if data.get("type") == "error":
                    raise TrackerError(f"the hub refused to join: {data.get('message')}")
                if data.get("type") == "welcome":
                    welcome = data

        async def drain() -> None:  # keep reading so the hub's frames do not pile up
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())
        start = time.monotonic()
        last = 0.0
        seq = 0
        try:
            loop = asyncio.get_running_loop()
            iterator = iter(frames)
            while True:
                item = await loop.run_in_executor(None, next, iterator, StopIteration)
                if item is StopIteration:
                    break
                if item is None:
                    no_face += 1
                    continue
                if pace_ms is not None:
                    due = start + item.frame.time_ms / 1000.0
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                now = time.monotonic()
                if now - last < min_gap:
                    continue
                last = now
                capture = int(time.time() * 1000) & 0xFFFFFFFF
                await ws.send(encode_result(seq, capture, item.result))
                seq = (seq + 1) & 0xFFFF
                sent += 1
        finally:
            reader.cancel()
    return {"sent": sent, "no_face": no_face, "welcome": welcome}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="vrhub track", description="Track a face from a video file or camera and send it to a room."
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="video file to read")
    src.add_argument("--camera", type=int, help="camera index (0 = first camera)")
    p.add_argument(
        "--hub", help="hub URL, e.g. http://127.0.0.1:8080 (without it: print weights as JSON lines)"
    )
    p.add_argument("--room", default="lobby")
    p.add_argument("--name", default="tracker")
    p.add_argument("--avatar-id", default=None, help="avatar to show to the room")
    p.add_argument("--token", default=None, help="room token, when the room is not open")
    p.add_argument("--fps", type=float, default=30.0, help="most frames per second to send (default 30)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many video frames")
    p.add_argument("--loop", action="store_true", help="play a video file again and again")
    p.add_argument("--fast", action="store_true", help="do not pace a video file at its own frame rate")
    p.add_argument("--calibrate-frames", type=int, default=0, help="first N frames show the relaxed face")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    source: str | int = args.video if args.video is not None else args.camera
    try:
        frames = track(
            source, max_frames=args.max_frames, loop=args.loop, calibrate_frames=args.calibrate_frames
        )
        if not args.hub:
            for item in frames:
                if item is None:
                    print(json.dumps({"face": False}))
                    continue
                r = item.result
                print(
                    json.dumps(
                        {
                            "frame": item.frame.index,
                            "time_ms": round(item.frame.time_ms, 1),
                            "weights": {k: round(v, 4) for k, v in r.as_dict().items()},
                            "quaternion": [round(float(v), 5) for v in r.pose.quaternion],
                            "position_mm": [round(float(v), 1) for v in r.pose.position_mm],
                        }
                    )
                )
            return 0
        cap_fps = 25.0
        if args.video is not None:
            import cv2  # noqa: PLC0415

            cap = _open_capture(args.video)
            cap_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            cap.release()
        pace = None if (args.fast or args.video is None) else 1000.0 / cap_fps
        stats = asyncio.run(
            send_to_room(
                frames,
                room_url(args.hub, args.room, args.token),
                args.name,
                args.avatar_id,
                max_fps=args.fps,
                pace_ms=pace,
            )
        )
        participant = stats["welcome"].get("participant")
        print(
            f"sent {stats['sent']} frames to room {args.room!r} as participant {participant}; "
            f"{stats['no_face']} frames without a face"
        )
        return 0
    except TrackerError as exc:
        print(f"vrhub track: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
