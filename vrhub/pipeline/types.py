"""Frozen dataclasses that cross stage boundaries.

Every stage is a pure function from some of these to one of these. Arrays carry their shape
and dtype in the field docs; coordinates of a HeadModel are metres, +Y up, +Z toward the
viewer (glTF conventions); image coordinates are pixels, x right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Order of the slots in a pipeline run.
SLOTS: tuple[str, ...] = (
    "detect",
    "segment",
    "reconstruct",
    "hair_attributes",
    "hair_model",
    "rig",
    "export",
)

#: The 52 ARKit blendshapes, in Apple's order. Used everywhere: wire frames, GLB targetNames, solver.
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
    "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)  # fmt: skip

#: Oculus visemes, exported after the 52 ARKit shapes in GLB files.
VISEMES: tuple[str, ...] = (
    "viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH",
    "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O",
    "viseme_U",
)  # fmt: skip

#: Joint names of every rig, parents first.
JOINT_NAMES: tuple[str, ...] = ("root", "neck", "head", "jaw", "eye_L", "eye_R")


@dataclass(frozen=True)
class Photo:
    """A decoded, EXIF-rotated, size-checked photo.

    pixels : (h, w, 3) uint8, RGB.
    """

    pixels: np.ndarray
    name: str = "photo"

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class FaceObservation:
    """One face found in a photo.

    landmarks : (478, 3) float64 — mediapipe face mesh with iris refinement; x, y in pixels,
        z relative depth in pixels (mediapipe's z times image width; smaller is nearer the camera).
    bbox : (x0, y0, x1, y1) pixels around the landmarks.
    rotation : (3, 3) float64 — head rotation, camera from head (head axes: +X the head's left... see
        ``yaw_pitch_roll`` for degrees).
    yaw_pitch_roll : degrees; yaw > 0 when the head turns to its own left.
    iris_centres : (2, 2) float64 pixels — rows (left eye of the subject, right eye of the subject).
    faces_found : how many faces the detector saw (the largest is this one).
    warnings : human-readable notes (several faces, low resolution, strong yaw ...).
    """

    landmarks: np.ndarray
    bbox: tuple[float, float, float, float]
    image_size: tuple[int, int]
    rotation: np.ndarray
    yaw_pitch_roll: tuple[float, float, float]
    iris_centres: np.ndarray
    faces_found: int = 1
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Segmentation:
    """Soft masks over the photo, each (h, w) float32 in [0, 1]."""

    hair: np.ndarray
    skin: np.ndarray
    body: np.ndarray
    background: np.ndarray


@dataclass(frozen=True)
class HeadModel:
    """A neutral-expression head mesh with its texture.

    vertices : (n, 3) float32, metres, +Y up, +Z toward the viewer, origin between the ears
        at the height of the eyes.
    triangles : (m, 3) uint32, counter-clockwise seen from outside.
    uvs : (n, 2) float32, glTF convention (origin at the texture's top-left, v grows downward).
    albedo : (t, t, 3) uint8 RGB texture (de-lit).
    landmark_vertices : (468,) int64 — the vertex index of each canonical face-mesh landmark.
    regions : name -> (k,) int64 vertex indices: "face" at least; the builtin template also has
        "scalp", "neck", "ear_L", "ear_R", "eyeball_L", "eyeball_R", "eye_socket_L", "eye_socket_R",
        "teeth_upper", "teeth_lower", "tongue", "mouth_cavity". Stages must tolerate missing ones.
    expression_removed : (52,) float32 ARKit weights estimated in the photo and removed.
    quality : JSON-able report (nme, yaw, pitch, warnings ...).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    albedo: np.ndarray
    landmark_vertices: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    eye_colour: tuple[int, int, int] = (90, 70, 50)
    skin_tone: tuple[int, int, int] = (200, 160, 130)
    expression_removed: np.ndarray = field(default_factory=lambda: np.zeros(52, np.float32))
    quality: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HairAttributes:
    """What the hair in the photo looks like. ``confidence`` maps each attribute name to [0, 1]."""

    length: str = "short"  # bald | buzz | short | medium | long
    texture: str = "straight"  # straight | wavy | curly | coily
    spikiness: str = "flat"  # flat | tousled | spiky
    fringe: str = "none"  # none | partial | full
    parting: str = "none"  # none | left | centre | right
    baldness: str = "none"  # none | receding | crown_or_top | full
    colour_rgb: tuple[int, int, int] = (60, 45, 35)
    colour_name: str = "brown"
    headwear: str = "none"  # none | hat | scarf
    #: measured height of the forehead hairline above the top forehead landmark (10), in units of
    #: the forehead-to-chin (10 -> 152) distance; None = not measured (the style's default)
    hairline: float | None = None
    confidence: dict[str, float] = field(default_factory=dict)
    source: str = ""  # which implementation produced this, e.g. "none" or "onnx-v1"


@dataclass(frozen=True)
class HairModel:
    """Hair cards fitted to a head. An empty mesh (zero vertices) means no hair.

    vertices : (n, 3) float32 metres in the head's frame.
    triangles : (m, 3) uint32.
    uvs : (n, 2) float32 glTF convention.
    texture : (h, w, 4) uint8 RGBA strand texture (alpha = coverage).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    texture: np.ndarray
    style: str = "none"
    alpha_mode: str = "MASK"  # glTF alphaMode: MASK or BLEND
    alpha_cutoff: float = 0.5

    @staticmethod
    def empty(style: str = "none") -> "HairModel":
        return HairModel(
            vertices=np.zeros((0, 3), np.float32),
            triangles=np.zeros((0, 3), np.uint32),
            uvs=np.zeros((0, 2), np.float32),
            texture=np.zeros((1, 1, 4), np.uint8),
            style=style,
        )

    @property
    def is_empty(self) -> bool:
        return len(self.vertices) == 0


@dataclass(frozen=True)
class Joint:
    """A joint of the head skeleton. ``position`` is its rest position (metres, head frame)."""

    name: str
    parent: int  # index into RiggedAvatar.joints, -1 for the root
    position: tuple[float, float, float]


@dataclass(frozen=True)
class RiggedAvatar:
    """A head with hair, skeleton, skin weights and blendshapes, ready to export.

    skin_joints : (n, 4) uint16 joint indices per head vertex; skin_weights : (n, 4) float32 summing to 1.
    blendshape_names : names of the morph targets in order (the 52 ARKit names first, then visemes).
    blendshape_deltas : (k, n, 3) float32 vertex offsets per target, metres.
    Hair is bound rigidly to the ``head`` joint.
    """

    head: HeadModel
    hair: HairModel
    joints: tuple[Joint, ...]
    skin_joints: np.ndarray
    skin_weights: np.ndarray
    blendshape_names: tuple[str, ...]
    blendshape_deltas: np.ndarray
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportOptions:
    """What the export slot should write. ``formats`` picks files; ``lod`` is high | medium | low."""

    formats: tuple[str, ...] = ("glb",)
    lod: str = "high"
    texture_size: int = 1024
    visemes: bool = True


@dataclass(frozen=True)
class ExportedFiles:
    """Bytes per format, e.g. ``{"glb": b"glTF..."}``."""

    files: dict[str, bytes]


#: Which dataclass each slot must return; run.py checks it and fails the job otherwise.
SLOT_OUTPUT: dict[str, type] = {
    "detect": FaceObservation,
    "segment": Segmentation,
    "reconstruct": HeadModel,
    "hair_attributes": HairAttributes,
    "hair_model": HairModel,
    "rig": RiggedAvatar,
    "export": ExportedFiles,
}


@dataclass
class AvatarAsset:
    """What the hub stores for a built avatar; ``avatar_built`` hooks may add files (extra formats, LODs)."""

    avatar_id: str
    files: dict[str, bytes]
    timings: dict[str, float] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
