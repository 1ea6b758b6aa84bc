"""The tracker on a real talking-face video (GRID corpus clip, ../shared/data/video): jawOpen follows
the speaker's lips, the blink in the clip is seen, and frames reach a real hub's room."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vrhub.pipeline.types import ARKIT_BLENDSHAPES
from vrhub.tracking.solver import rotation_to_euler_degrees
from vrhub.tracking.tracker import main, send_to_room, track

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDEO = SHARED / "data" / "video" / "grid_webcam_loop.mp4"
JAW = ARKIT_BLENDSHAPES.index("jawOpen")
BLINKS = [ARKIT_BLENDSHAPES.index("eyeBlinkLeft"), ARKIT_BLENDSHAPES.index("eyeBlinkRight")]


@pytest.fixture(scope="module")
def video() -> str:
    if not VIDEO.is_file():
        pytest.skip("../shared/data/video is not present")
    return str(VIDEO)


@pytest.fixture(scope="module")
def two_seconds(video: str) -> list[Any]:
    """The first 50 frames (2 s at 25 fps) of the first speaker, tracked with a 10-frame calibration."""
    return list(track(video, max_frames=50, calibrate_frames=10))


def test_every_frame_of_the_clip_has_a_face(two_seconds) -> None:
    assert len(two_seconds) == 50
    assert all(item is not None for item in two_seconds)
    assert [item.frame.index for item in two_seconds] == list(range(50))


def test_jaw_open_follows_the_lips_as_the_speaker_talks(two_seconds) -> None:
    weights = np.array([item.result.weights for item in two_seconds])
    jaw = weights[:, JAW]
    size = np.array(two_seconds[0].frame.image_size)
    px = np.array([item.frame.landmarks[:, :2] for item in two_seconds]) * size
    # inner lip gap (landmarks 13 / 14) relative to the outer eye-corner distance (33 / 263)
    gap = np.linalg.norm(px[:, 13] - px[:, 14], axis=1) / np.linalg.norm(px[:, 33] - px[:, 263], axis=1)
    assert jaw[:8].max() < 0.05  # the clip starts with the mouth closed (the calibration frames)
    assert jaw.max() - jaw.min() > 0.15
    assert np.corrcoef(jaw, gap)[0, 1] > 0.6


def test_blinks_are_in_range_and_the_blink_in_the_clip_is_seen(two_seconds) -> None:
    weights = np.array([item.result.weights for item in two_seconds])
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    blinks = weights[:, BLINKS]
    assert np.median(blinks) < 0.2  # eyes open most of the time
    # the speaker blinks around frame 43 (looked at: eyes closed in frame 43, open in frame 30)
    assert blinks[40:46].max(axis=0).min() > 0.6
    assert blinks[30].max() < 0.3


def test_head_pose_is_near_frontal_for_a_frontal_speaker(two_seconds) -> None:
    for item in two_seconds:
        yaw, pitch, roll = rotation_to_euler_degrees(item.result.pose.rotation)
        assert abs(yaw) < 20 and abs(pitch) < 20 and abs(roll) < 15
        assert -2000 < item.result.pose.position_mm[2] < -200  # in front of the camera, 0.2-2 m


def test_cli_without_a_hub_prints_one_json_line_per_frame(video: str, capsys) -> None:
    assert main(["--video", video, "--max-frames", "12", "--calibrate-frames", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 12
    assert set(lines[0]["weights"]) == set(ARKIT_BLENDSHAPES)
    assert len(lines[0]["quaternion"]) == 4


def test_cli_reports_a_missing_video_in_words(capsys) -> None:
    assert main(["--video", "/nonexistent/clip.mp4"]) == 2
    assert "does not exist" in capsys.readouterr().err


async def test_tracked_frames_reach_a_real_hub_room(make_client, video: str) -> None:
    from vrhub.client import RoomFrame, join

    client = await make_client()
    base = str(client.make_url("/")).rstrip("/")
    listener = await join(base, "tracking-test", "listener")
    try:
        frames = track(video, max_frames=20, calibrate_frames=5)
        stats = await send_to_room(frames, base, "tracking-test", "tracker", max_fps=0)
        assert stats["sent"] == 20 and stats["no_face"] == 0
        tracker_id = stats["participant"]
        received = []
        with pytest.raises(asyncio.TimeoutError):  # read until the room goes quiet
            while True:
                item = await listener.recv(timeout=1.0)
                if isinstance(item, RoomFrame) and tracker_id in item.frames:
                    received.append(item.frames[tracker_id])
        assert received, "no frame of the tracker reached the other participant"
        jaw = [f.weights_float[JAW] for f in received]
        assert max(jaw) > 0.05
        assert all(abs(sum(q * q for q in f.rotation) - 1) < 1e-3 for f in received)
    finally:
        await listener.leave()


def test_vrhub_track_subcommand_runs_the_tracker(video: str, capsys) -> None:
    from vrhub.cli import main as vrhub_main

    assert vrhub_main(["track", "--video", video, "--max-frames", "5", "--calibrate-frames", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3, 4]
