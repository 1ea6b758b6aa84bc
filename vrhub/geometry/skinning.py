"""The head skeleton (root, neck, head, jaw, eye_L, eye_R) and its skin weights.

Joint rest positions come from the head's own geometry: the jaw joint sits on the jaw hinge that
the jawOpen blendshape uses (:func:`vrhub.geometry.blendshapes.jaw_rig`), the eye joints on the
eyeball centres, the head joint behind the jaw hinge (where the skull meets the spine), the neck
joint low in the neck and the root at its base. Weights: eyeballs follow their eye joint; the
mandible, lower teeth and tongue follow the jaw with the same per-vertex weight as jawOpen (so
rotating the jaw joint by ``JawRig.open_degrees`` about ``JawRig.axis`` reproduces jawOpen exactly
under linear blend skinning); the neck blends smoothly from the neck joint to the head joint;
everything else follows the head. Joints have no rest rotation, so inverse bind matrices are
translations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vrhub.geometry.blendshapes import JawRig
from vrhub.pipeline.types import JOINT_NAMES, Joint

JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
_PARENTS = {"root": -1, "neck": 0, "head": 1, "jaw": 2, "eye_L": 2, "eye_R": 2}


@dataclass(frozen=True)
class Skin:
    """Skeleton and weights of one head.

    joints : the six joints in JOINT_NAMES order (rest positions in metres, head frame).
    skin_joints : (n, 4) uint16 joint indices, distinct per vertex; skin_weights : (n, 4) float32,
        rows summing to 1 (unused slots have weight 0).
    """

    joints: tuple[Joint, ...]
    skin_joints: np.ndarray
    skin_weights: np.ndarray


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def joint_positions(
    vertices: np.ndarray,
    regions: Mapping[str, np.ndarray],
    jaw: JawRig,
    eye_centres: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Rest position (3,) metres of every joint, from the head's geometry."""
    v = np.asarray(vertices, np.float64)
    lm = v[:468]
    cm = float(np.linalg.norm(lm[263] - lm[33])) / 8.8917
    x_mid = 0.5 * (lm[234, 0] + lm[454, 0])
    head = np.array([x_mid, jaw.pivot[1] - 0.8 * cm, jaw.pivot[2] - 2.2 * cm])
    neck_ids = np.asarray(regions.get("neck", np.zeros(0, np.int64)), np.int64)
    chin_y = lm[152, 1]
    if len(neck_ids):
        nv = v[neck_ids]
        bottom = float(nv[:, 1].min())
        neck = np.array([x_mid, bottom + 0.3 * (chin_y - bottom), head[2]])
        root = np.array([x_mid, bottom, head[2]])
    else:
        neck = np.array([x_mid, chin_y - 3.0 * cm, head[2]])
        root = neck - np.array([0.0, 3.0 * cm, 0.0])
    if neck[1] >= head[1]:
        neck[1] = head[1] - 4.0 * cm
        root[1] = min(root[1], neck[1] - 2.0 * cm)
    return {
        "root": root,
        "neck": neck,
        "head": head,
        "jaw": np.asarray(jaw.pivot, np.float64),
        "eye_L": np.asarray(eye_centres["L"], np.float64),
        "eye_R": np.asarray(eye_centres["R"], np.float64),
    }


def build_skin(
    vertices: np.ndarray,
    regions: Mapping[str, np.ndarray],
    jaw: JawRig,
    eye_centres: Mapping[str, np.ndarray],
) -> Skin:
    """Joints and per-vertex weights (see the module docstring).

    vertices : (n, 3) float metres; regions : name -> (k,) int; jaw : the hinge and jaw weights
    (n,) shared with jawOpen; eye_centres : "L"/"R" -> (3,) metres.
    """
    v = np.asarray(vertices, np.float64)
    n = len(v)
    pos = joint_positions(v, regions, jaw, eye_centres)
    joints = tuple(Joint(name, _PARENTS[name], tuple(float(c) for c in pos[name])) for name in JOINT_NAMES)
    w_jaw = np.clip(np.asarray(jaw.weights, np.float64), 0.0, 1.0)
    # head share rises from the neck joint to the head joint, only inside the neck region
    h = np.ones(n)
    neck_ids = np.asarray(regions.get("neck", np.zeros(0, np.int64)), np.int64)
    if len(neck_ids):
        h[neck_ids] = _smoothstep(pos["neck"][1], pos["head"][1], v[neck_ids, 1])
    w_neck = np.minimum(1.0 - h, 1.0 - w_jaw)
    w_head = 1.0 - w_jaw - w_neck
    ji = np.tile(
        np.array([JOINT_INDEX["head"], JOINT_INDEX["jaw"], JOINT_INDEX["neck"], JOINT_INDEX["root"]]), (n, 1)
    )
    ww = np.stack([w_head, w_jaw, w_neck, np.zeros(n)], 1)
    for side in ("L", "R"):
        ball = np.asarray(regions.get(f"eyeball_{side}", np.zeros(0, np.int64)), np.int64)
        if len(ball):
            ji[ball] = [
                JOINT_INDEX[f"eye_{side}"],
                JOINT_INDEX["head"],
                JOINT_INDEX["jaw"],
                JOINT_INDEX["neck"],
            ]
            ww[ball] = [1.0, 0.0, 0.0, 0.0]
    ww = np.clip(ww, 0.0, 1.0)
    ww /= ww.sum(1, keepdims=True)
    order = np.argsort(-ww, axis=1, kind="stable")  # heaviest influence first
    ji = np.take_along_axis(ji, order, 1)
    ww = np.take_along_axis(ww, order, 1)
    return Skin(joints, ji.astype(np.uint16), ww.astype(np.float32))


def inverse_bind_matrices(joints: tuple[Joint, ...]) -> np.ndarray:
    """(j, 4, 4) float32 column-vector convention: the inverse of each joint's rest world transform
    (a pure translation, since joints have no rest rotation)."""
    out = np.tile(np.eye(4, dtype=np.float32), (len(joints), 1, 1))
    for i, j in enumerate(joints):
        out[i, :3, 3] = -np.asarray(j.position, np.float32)
    return out


def local_translations(joints: tuple[Joint, ...]) -> np.ndarray:
    """(j, 3) float64 each joint's rest position relative to its parent."""
    pos = np.array([j.position for j in joints], np.float64)
    parents = np.array([j.parent for j in joints])
    out = pos.copy()
    has = parents >= 0
    out[has] -= pos[parents[has]]
    return out


def skin_vertices(
    vertices: np.ndarray,
    skin_joints: np.ndarray,
    skin_weights: np.ndarray,
    joints: tuple[Joint, ...],
    rotations: Mapping[str, np.ndarray],
) -> np.ndarray:
    """Linear blend skinning with joint rotations about their rest positions (for tests and tools).

    rotations : joint name -> (3, 3) local rotation; others stay at rest. Returns (n, 3) float64.
    """
    pos = np.array([j.position for j in joints], np.float64)
    world = np.tile(np.eye(4), (len(joints), 1, 1))
    for i, j in enumerate(joints):  # parents first
        local = np.eye(4)
        local[:3, :3] = rotations.get(j.name, np.eye(3))
        local[:3, 3] = pos[i] - (pos[j.parent] if j.parent >= 0 else 0.0)
        world[i] = (world[j.parent] @ local) if j.parent >= 0 else local
    ibm = inverse_bind_matrices(joints).astype(np.float64)
    mats = world @ ibm  # (j, 4, 4)
    vh = np.concatenate([np.asarray(vertices, np.float64), np.ones((len(vertices), 1))], 1)
    per = np.einsum("jab,nb->nja", mats, vh)[..., :3]  # (n, j, 3)
    w = np.zeros((len(vertices), len(joints)))
    np.add.at(w, (np.arange(len(vertices))[:, None], skin_joints.astype(np.int64)), skin_weights)
    return np.einsum("nj,nja->na", w, per)
