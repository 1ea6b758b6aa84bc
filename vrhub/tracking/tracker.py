"""Camera or video file -> mediapipe face mesh -> 52 ARKit weights + head pose -> a room on a hub.

Usage::

    python -m vrhub.tracking.tracker --video clip.mp4 --hub http://127.0.0.1:8080 --room class1 --name Ada
    python -m vrhub.tracking.tracker --camera 0 --hub http://127.0.0.1:8080 --room class1 --name Ada
    python -m vrhub.tracking.tracker --video clip.mp4 --max-frames 50      # no hub: prints JSON lines

The first ``--calibrate-frames`` frames (default 10) with a face are taken as the person's relaxed
face: their pose-free landmarks become the neutral that expressions are measured from (without it,
the difference between this face and the template reads as expression: wide eyes, frowns).

Frames are read with OpenCV, landmarks come from mediapipe FaceMesh in video mode with iris
refinement (478 landmarks), :class:`vrhub.tracking.solver.FaceSolver` turns them into weights, and
each result is sent as a 74-byte expression frame (``vrhub.rooms.protocol``), at most ``--fps`` per
second. A video file is paced at its own frame rate unless ``--fast``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vrhub.tracking.solver import FaceSolver, TrackingResult, default_solver_matrices


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Per-frame solves are tiny (52x52): a multi-threaded BLAS only adds thread wake-ups (measured
    here: 2-4x slower per frame on a busy 2-core machine). Limit BLAS to one thread while tracking."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn/scipy stacks
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


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

    calibrate_frames : when > 0, the first N frames with a face (assumed relaxed) set the neutral;
        they are yielded (solved with it) once the N-th arrives. A video that ends sooner yields
        them uncalibrated at the end.
    """
    solver = solver or FaceSolver(default_solver_matrices())
    pending: list[LandmarkFrame] = []
    with _one_blas_thread():
        yield from _solve_frames(solver, iter_landmarks(source, max_frames, loop), calibrate_frames, pending)
        if calibrate_frames and 0 < len(pending) < calibrate_frames:
            for held in pending:
                yield TrackedFrame(held, solver.solve(held.landmarks, held.image_size, normalised=True))


def _solve_frames(
    solver: FaceSolver,
    frames: Iterator[LandmarkFrame | None],
    calibrate_frames: int,
    pending: list[LandmarkFrame],
) -> Iterator[TrackedFrame | None]:
    for frame in frames:
        if frame is None:
            yield None
            continue
        if calibrate_frames and len(pending) < calibrate_frames:
            # hold the first frames back until the neutral is known, then solve them with it
            pending.append(frame)
            if len(pending) < calibrate_frames:
                continue
            solver.calibrate_neutral([f.landmarks for f in pending], frame.image_size, normalised=True)
            for held in pending:
                yield TrackedFrame(held, solver.solve(held.landmarks, held.image_size, normalised=True))
            continue
        yield TrackedFrame(frame, solver.solve(frame.landmarks, frame.image_size, normalised=True))


async def send_to_room(
    frames: Iterator[TrackedFrame | None],
    hub: str,
    room: str,
    name: str,
    avatar_id: str | None = None,
    token: str | None = None,
    max_fps: float = 30.0,
    realtime: bool = False,
) -> dict[str, Any]:
    """Join ``room`` on ``hub`` (vrhub.client) and send one expression frame per tracked frame.

    max_fps : at most this many frames per second are sent (extra results are dropped).
    realtime : frame i is sent no earlier than its video time after the start, so a file plays at
        its own speed. Returns counters {"sent", "no_face", "participant"}.
    """
    from vrhub.client import JoinError, join  # noqa: PLC0415

    sent = no_face = 0
    min_gap = 1.0 / max_fps if max_fps > 0 else 0.0
    try:
        client = await join(hub, room, name, token=token, avatar_id=avatar_id)
    except JoinError as exc:
        raise TrackerError(
            f"the hub refused to let us join room {room!r}: {exc.reason} (code {exc.code})"
        ) from exc
    except (OSError, TimeoutError, ValueError) as exc:
        raise TrackerError(f"could not connect to the hub at {hub}: {exc}") from exc

    async def drain() -> None:  # keep reading so the hub's room frames do not pile up
        with contextlib.suppress(Exception):
            async for _ in client:
                pass

    reader = asyncio.create_task(drain())
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    last = -1e9
    try:
        iterator = iter(frames)
        while True:
            item = await loop.run_in_executor(None, next, iterator, _END)
            if item is _END:
                break
            if item is None:
                no_face += 1
                continue
            if realtime:
                due = start + item.frame.time_ms / 1000.0
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            now = time.monotonic()
            if now - last < min_gap:
                continue
            last = now
            pose = item.result.pose
            await client.send_frame(
                item.result.weights,
                rotation=pose.quaternion,
                position_mm=np.clip(pose.position_mm, -32767, 32767),
            )
            sent += 1
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await client.leave()
    return {"sent": sent, "no_face": no_face, "participant": client.participant}


_END = object()


def add_tracker_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``vrhub track`` (and ``python -m vrhub.tracking.tracker``)."""
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
    p.add_argument(
        "--calibrate-frames",
        type=int,
        default=10,
        help="the first N frames with a face show the relaxed face and become its neutral (0 = off; default 10)",
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="vrhub track", description="Track a face from a video file or camera and send it to a room."
    )
    add_tracker_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(_parse(argv))


def run(args: argparse.Namespace) -> int:
    """Run the tracker with parsed options; 0 on success, 2 with a message on stderr otherwise."""
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
        stats = asyncio.run(
            send_to_room(
                frames,
                args.hub,
                args.room,
                args.name,
                avatar_id=args.avatar_id,
                token=args.token,
                max_fps=args.fps,
                realtime=args.video is not None and not args.fast,
            )
        )
        participant = stats["participant"]
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
