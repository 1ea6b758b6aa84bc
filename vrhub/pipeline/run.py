"""Runs the slots in order: timings, progress, type checks and errors that name plugin and slot."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vrhub.pipeline.plugins import StageImpl
from vrhub.pipeline.types import (
    SLOT_OUTPUT,
    SLOTS,
    ExportedFiles,
    ExportOptions,
    FaceObservation,
    HairAttributes,
    HairModel,
    HeadModel,
    Photo,
    RiggedAvatar,
    Segmentation,
)

#: progress(slot, fraction_done) — fraction in [0, 1] of the whole pipeline.
ProgressFn = Callable[[str, float], None]


class PipelineError(Exception):
    """The photo cannot become an avatar for a reason the user can act on (no face, ...).

    Stages raise this (or a subclass) for bad input; ``code`` is machine-readable.
    """

    def __init__(self, message: str, code: str = "bad_photo", detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.detail = detail or {}


class StageFailed(Exception):
    """A plugin raised, returned the wrong type or ran out of time. Names plugin and slot."""

    def __init__(self, slot: str, plugin: str, name: str, message: str, code: str = "stage_failed"):
        super().__init__(f"stage {slot}:{name} (plugin {plugin}) failed: {message}")
        self.slot = slot
        self.plugin = plugin
        self.name = name
        self.code = code
        self.reason = message


class StageTimeout(Exception):
    pass


@dataclass
class PipelineResult:
    avatar: RiggedAvatar
    files: dict[str, bytes]
    timings: dict[str, float]  # seconds per slot
    face: FaceObservation
    attributes: HairAttributes
    warnings: list[str] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)  # slot -> implementation name
    #: the photo the stages saw: the input, or the input turned upright (see :func:`upright_turns`);
    #: ``face`` is in its pixels
    photo: Photo | None = None


def _json_safe(value: Any) -> Any:
    """Tuples to lists and numpy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise StageTimeout after ``seconds`` (SIGALRM; only possible in the main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise StageTimeout()

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_stage(impl: StageImpl, *args: Any, time_limit: float | None = None) -> Any:
    """Call one stage and check what it returns."""
    try:
        with _time_limit(time_limit):
            out = impl.fn(*args)
    except PipelineError:
        raise
    except StageTimeout:
        raise StageFailed(
            impl.slot, impl.plugin, impl.name, f"exceeded its time limit of {time_limit:g} s", "stage_timeout"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a plugin's failure must not take down the hub
        raise StageFailed(impl.slot, impl.plugin, impl.name, f"{type(exc).__name__}: {exc}") from exc
    expected = SLOT_OUTPUT[impl.slot]
    if not isinstance(out, expected):
        raise StageFailed(
            impl.slot,
            impl.plugin,
            impl.name,
            f"returned {type(out).__name__}, expected {expected.__name__}",
            "stage_wrong_type",
        )
    return out


def quarter_turns(roll: float) -> int:
    """Quarter turns (``np.rot90``'s k, anticlockwise) that undo a head roll of ``roll`` degrees
    (> 0: the face is turned anticlockwise in the image): 0 unless it is more than 45 degrees."""
    return int(-round(float(roll) / 90.0)) % 4


def upright_turns(face: FaceObservation) -> int:
    """Quarter turns that make the face upright: 0 unless the head is rolled more than 45 degrees
    in the image (a sideways photo; mediapipe fits an upright face to an upside-down one, so only a
    detector that reports a roll near 180 degrees gets it turned)."""
    return quarter_turns(face.yaw_pitch_roll[2])


def run_pipeline(
    photo: Photo,
    stages: Mapping[str, StageImpl],
    options: ExportOptions | None = None,
    progress: ProgressFn | None = None,
    time_limit: float | None = None,
) -> PipelineResult:
    """Run every slot on ``photo`` with the chosen implementations."""
    options = options or ExportOptions()
    timings: dict[str, float] = {}
    done = 0

    def step(slot: str, *args: Any) -> Any:
        nonlocal done
        if progress:
            progress(slot, done / len(SLOTS))
        t0 = time.perf_counter()
        out = call_stage(stages[slot], *args, time_limit=time_limit)
        timings[slot] = time.perf_counter() - t0
        done += 1
        return out

    face: FaceObservation = step("detect", photo)
    turns = upright_turns(face)
    if turns:
        # a sideways or upside-down photo (no EXIF orientation): the later stages read "up" as the
        # image's up (the jaw line, the hair above the face), so they get the photo turned upright
        photo = Photo(np.ascontiguousarray(np.rot90(photo.pixels, k=turns)), photo.name)
        t0 = time.perf_counter()
        face = call_stage(stages["detect"], photo, time_limit=time_limit)
        timings["detect"] += time.perf_counter() - t0  # both detections
        turned = {1: "90 degrees anticlockwise", 2: "upside down", 3: "90 degrees clockwise"}[turns]
        face = dataclasses.replace(
            face,
            warnings=(f"the photo was turned {turned} so that the face is upright",) + tuple(face.warnings),
        )
    seg: Segmentation = step("segment", photo, face)
    head: HeadModel = step("reconstruct", photo, face, seg)
    attrs: HairAttributes = step("hair_attributes", photo, face, seg)
    hair: HairModel = step("hair_model", attrs, head)
    avatar: RiggedAvatar = step("rig", head, hair)
    # The rig never sees the photo's analysis; carry it along so exports can record it.
    avatar = dataclasses.replace(
        avatar,
        attributes={**avatar.attributes, "hair": _json_safe(dataclasses.asdict(attrs))},
    )
    exported: ExportedFiles = step("export", avatar, options)
    if progress:
        progress("done", 1.0)
    warnings = list(face.warnings) + list(head.quality.get("warnings", []))
    if attrs.headwear not in ("", "none"):
        warnings.append(
            f"{attrs.headwear}: the photo shows a {attrs.headwear} on the head; the avatar has no "
            f"{attrs.headwear}, and the hair under it is guessed."
        )
    return PipelineResult(
        avatar=avatar,
        files=exported.files,
        timings=timings,
        face=face,
        attributes=attrs,
        warnings=list(dict.fromkeys(warnings)),
        stages={slot: stages[slot].name for slot in SLOTS},
        photo=photo,
    )
