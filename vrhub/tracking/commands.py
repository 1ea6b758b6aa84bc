"""``vrhub track``: found by vrhub.cli (``add_commands`` of every ``vrhub.<package>.commands``)."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_track(args: argparse.Namespace) -> int:
    from vrhub.tracking.tracker import run  # noqa: PLC0415 - mediapipe/OpenCV load only when tracking

    return run(args)


def add_commands(sub: Any) -> None:
    from vrhub.tracking.tracker import add_tracker_arguments  # noqa: PLC0415

    p = sub.add_parser(
        "track",
        help="track a face from a video file or camera and send it to a room (or print the weights)",
        description="Track a face (mediapipe face mesh) from a video file or a camera, solve the 52 ARKit "
        "weights and head pose, and send them to a room on a hub; without --hub, print JSON lines.",
    )
    add_tracker_arguments(p)
    p.set_defaults(func=cmd_track)
