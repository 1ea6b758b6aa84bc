"""Fixture stage plugins for testing the hub's machinery (jobs, progress, failures, downloads).

These are NOT a pipeline: they make tiny, valid dataclasses from the photo so that tests of the
job runner, the API and the CLI do not depend on (or wait for) the real stages. Each function is
honest about what it does. Extra implementations misbehave on purpose: ``detect:raises``,
``reconstruct:wrong_type``, ``reconstruct:slow`` (sleeps ``SLOW_SECONDS``; for time limits).
Registered only by tests, via ``make_app(settings, plugin_modules=("hub_test_stages",))``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from vrhub import hookimpl
from vrhub.pipeline.run import PipelineError
from vrhub.pipeline.types import (
    ARKIT_BLENDSHAPES,
    ExportedFiles,
    ExportOptions,
    FaceObservation,
    HairAttributes,
    HairModel,
    HeadModel,
    Joint,
    Photo,
    RiggedAvatar,
    Segmentation,
)

#: What a test passes to make_app(plugin_modules=...) and Settings(stages=...) to use these stages.
FIXTURE_PLUGINS = ("hub_test_stages",)
FIXTURE_STAGE_TEXT = ",".join(
    f"{slot}=fixture"
    for slot in ("detect", "segment", "reconstruct", "hair_attributes", "hair_model", "rig", "export")
)
SLOW_SECONDS = 30.0
STEP_SECONDS = 0.05  # each fixture stage sleeps this long, so progress is observable


def detect(photo: Photo) -> FaceObservation:
    """'Finds' a face covering the middle of any photo that is not flat; flat photos have none."""
    time.sleep(STEP_SECONDS)
    if float(photo.pixels.std()) < 1.0:
        raise PipelineError("No face was found in the photo.", code="no_face")
    h, w = photo.pixels.shape[:2]
    landmarks = np.zeros((478, 3))
    landmarks[:, 0] = w / 2
    landmarks[:, 1] = h / 2
    return FaceObservation(
        landmarks=landmarks,
        bbox=(w * 0.25, h * 0.25, w * 0.75, h * 0.75),
        image_size=(w, h),
        rotation=np.eye(3),
        yaw_pitch_roll=(0.0, 0.0, 0.0),
        iris_centres=np.zeros((2, 2)),
        faces_found=1,
        warnings=(),
    )


def segment(photo: Photo, face: FaceObservation) -> Segmentation:
    time.sleep(STEP_SECONDS)
    zeros = np.zeros(photo.pixels.shape[:2], np.float32)
    return Segmentation(hair=zeros, skin=zeros, body=zeros, background=zeros + 1)


def reconstruct(photo: Photo, face: FaceObservation, seg: Segmentation) -> HeadModel:
    """A tetrahedron coloured with the photo's mean colour."""
    time.sleep(STEP_SECONDS)
    vertices = np.array([[0, 0, 0.1], [0.1, 0, 0], [-0.1, 0, 0], [0, 0.1, 0]], np.float32)
    colour = photo.pixels.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    return HeadModel(
        vertices=vertices,
        triangles=np.array([[0, 1, 3], [0, 3, 2], [0, 2, 1], [1, 2, 3]], np.uint32),
        uvs=np.zeros((4, 2), np.float32),
        albedo=np.broadcast_to(colour, (2, 2, 3)).copy(),
        landmark_vertices=np.zeros(468, np.int64),
        regions={"face": np.arange(4)},
        quality={"fixture": True, "warnings": []},
    )


def hair_attributes(photo: Photo, face: FaceObservation, seg: Segmentation) -> HairAttributes:
    return HairAttributes(length="bald", source="fixture")


def hair_model(attributes: HairAttributes, head: HeadModel) -> HairModel:
    return HairModel.empty()


def rig(head: HeadModel, hair: HairModel) -> RiggedAvatar:
    time.sleep(STEP_SECONDS)
    n = len(head.vertices)
    return RiggedAvatar(
        head=head,
        hair=hair,
        joints=(Joint("root", -1, (0.0, 0.0, 0.0)), Joint("head", 0, (0.0, 0.05, 0.0))),
        skin_joints=np.ones((n, 4), np.uint16),
        skin_weights=np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        blendshape_names=ARKIT_BLENDSHAPES,
        blendshape_deltas=np.zeros((len(ARKIT_BLENDSHAPES), n, 3), np.float32),
    )


def export(avatar: RiggedAvatar, options: ExportOptions) -> ExportedFiles:
    """Not glTF: a labelled JSON description of the avatar and the options (for hub tests only)."""
    description = {
        "fixture": "hub_test_stages",
        "vertices": len(avatar.head.vertices),
        "albedo": avatar.head.albedo[0, 0].tolist(),
        "lod": options.lod,
        "texture": options.texture_size,
        "visemes": options.visemes,
    }
    files = {"glb": b"FIXTURE" + json.dumps(description, sort_keys=True).encode()}
    if "vrm" in options.formats:
        files["vrm"] = b"FIXTURE-VRM" + json.dumps(description, sort_keys=True).encode()
    return ExportedFiles(files)


def detect_raises(photo: Photo) -> FaceObservation:
    raise RuntimeError("fixture detector exploded")


def reconstruct_wrong_type(photo: Photo, face: FaceObservation, seg: Segmentation) -> HeadModel:
    return {"not": "a HeadModel"}  # type: ignore[return-value]


def reconstruct_sleepy(photo: Photo, face: FaceObservation, seg: Segmentation) -> HeadModel:
    """Sleeps HUB_TEST_SLEEP_SECONDS (env, default 0): a long build in one hub's life, a short one in
    the next (tests/test_restart_resume.py)."""
    time.sleep(float(os.environ.get("HUB_TEST_SLEEP_SECONDS", "0")))
    return reconstruct(photo, face, seg)


def reconstruct_slow(photo: Photo, face: FaceObservation, seg: Segmentation) -> HeadModel:
    time.sleep(SLOW_SECONDS)
    return reconstruct(photo, face, seg)


@hookimpl
def register_stages(register):  # type: ignore[no-untyped-def]
    for slot, fn in [
        ("detect", detect),
        ("segment", segment),
        ("reconstruct", reconstruct),
        ("hair_attributes", hair_attributes),
        ("hair_model", hair_model),
        ("rig", rig),
        ("export", export),
    ]:
        register(slot, "fixture", fn, version="0.0-test")
    register("detect", "raises", detect_raises, version="0.0-test")
    register("reconstruct", "wrong_type", reconstruct_wrong_type, version="0.0-test")
    register("reconstruct", "slow", reconstruct_slow, version="0.0-test")
    register("reconstruct", "sleepy", reconstruct_sleepy, version="0.0-test")


@hookimpl
def avatar_built(avatar, asset):  # type: ignore[no-untyped-def]
    """Adds a small extra file, as a post-processing plugin would."""
    asset.files["fixture.json"] = json.dumps({"avatar_id": asset.avatar_id, "stages": asset.stages}).encode()
