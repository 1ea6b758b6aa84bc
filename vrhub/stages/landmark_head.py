"""Builtin ``reconstruct`` stage "landmark_head": the photo's face landmarks in vrhub's head template.

1. **Pose and scale.** The 478 landmarks (pixels, mediapipe's relative depth) are brought into the
   head frame with the detect stage's weighted Procrustes pose (``R^T (p - t) / s``), then scaled so
   the iris centres are :data:`INTERPUPILLARY_CM` apart (the adult mean, 6.3 cm: one photo has
   no absolute scale).
2. **Symmetry.** The face is blended half-way with its mirror image (mirrored landmark pairs of
   the canonical mesh); more when the head is turned, because mediapipe's depth of the far side
   is a guess.
3. **Expression.** The photo's expression is estimated and removed: with the rig's own landmark
   blendshapes (:func:`vrhub.geometry.blendshapes.landmark_blendshape_basis`) when that module is
   present — a bounded least-squares fit of the mouth and eye shapes to the difference between
   the face and the canonical face (similarity-aligned), keeping only weights above a dead zone
   (identity, e.g. naturally full lips, is not an expression) — and the removed weights are
   reported in ``HeadModel.expression_removed`` (ARKit order).
4. **Template.** :func:`vrhub.geometry.head_template.fit_head_template` places the face as
   vertices[0:468] and bends the skull, ears, neck, eye sockets, mouth cavity, teeth and tongue
   around it; eyeballs go behind the iris landmarks.
5. **Texture.** :func:`vrhub.geometry.texture.bake_head_texture` (warp, de-light, symmetric
   fill, skin tone, eyes, mouth), 1024 px unless ``texture_size`` says otherwise.

Output: metres, +Y up, +Z toward the viewer, origin between the ears at the height of the eyes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vrhub import hookimpl
from vrhub.geometry.canonical_face import load_canonical_face
from vrhub.geometry.head_template import fit_head_template, get_head_template
from vrhub.geometry.texture import bake_head_texture
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, FaceObservation, HeadModel, Photo, Segmentation
from vrhub.stages.mediapipe_detect import IRIS_LEFT, IRIS_RIGHT, head_pose

INTERPUPILLARY_CM = 6.3
TEXTURE_SIZE = 1024
#: Mirror blend: 0.5 for a frontal face, rising to 0.8 at 45 degrees of yaw.
SYMMETRY_FRONTAL, SYMMETRY_TURNED = 0.5, 0.8
#: Expression shapes that are fitted and removed, and the dead zone below which a weight is
#: taken to be identity rather than expression.
NEUTRALISED = (
    "jawOpen",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthFunnel",
    "mouthPucker",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeWideLeft",
    "eyeWideRight",
    "browInnerUp",
)
DEAD_ZONE = 0.12


def face_in_head_frame(face: FaceObservation) -> np.ndarray:
    """(478, 3) float64 landmarks in the head frame, centimetres (pose removed, iris-scaled)."""
    lm = np.asarray(face.landmarks, np.float64)
    rot, scale, t = head_pose(lm)
    p = ((lm * np.array([1.0, -1.0, -1.0]) - t) @ rot) / scale
    ipd = float(np.linalg.norm(p[IRIS_LEFT] - p[IRIS_RIGHT]))
    if ipd > 1e-6:
        p *= INTERPUPILLARY_CM / ipd
    return p


def symmetrise(points: np.ndarray, amount: float) -> np.ndarray:
    """Blend the 468 face points (k >= 468, 3) with their mirror image by ``amount`` in [0, 1]."""
    face = load_canonical_face()
    out = points.copy()
    mirrored = points[face.mirror] * np.array([-1.0, 1.0, 1.0])
    out[:468] = points[:468] * (1 - amount) + mirrored * amount
    return out


def _align_canonical(points: np.ndarray) -> np.ndarray:
    """The canonical face similarity-aligned (scale + translation, no rotation) to ``points``."""
    c = load_canonical_face().vertices
    w = load_canonical_face().procrustes_weights
    w = w / w.sum()
    mc, mp = w @ c, w @ points[:468]
    s = np.sqrt((w * ((points[:468] - mp) ** 2).sum(1)).sum() / (w * ((c - mc) ** 2).sum(1)).sum())
    return (c - mc) * s + mp


def neutralise_expression(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Remove the photo's expression from the face points (cm, head frame).

    Returns (points, weights (52,) float32 removed, method). Uses the rig's landmark blendshapes
    when :mod:`vrhub.geometry.blendshapes` is importable; otherwise nothing is removed and the
    method says so.
    """
    try:
        from vrhub.geometry.blendshapes import landmark_blendshape_basis
    except ImportError:
        return points, np.zeros(52, np.float32), "none (vrhub.geometry.blendshapes not installed)"
    from scipy.optimize import lsq_linear

    neutral = _align_canonical(points)
    basis = landmark_blendshape_basis(neutral / 100.0).astype(np.float64) * 100.0  # cm
    idx = [ARKIT_BLENDSHAPES.index(n) for n in NEUTRALISED]
    a = basis[idx].reshape(len(idx), -1).T  # (468*3, k)
    b = (points[:468] - neutral).reshape(-1)
    # only rows the chosen shapes actually move: identity elsewhere must not pull the fit
    moved = np.abs(a).max(1) > 1e-4
    if not moved.any():
        return points, np.zeros(52, np.float32), "blendshapes (no shape moved)"
    sol = lsq_linear(a[moved], b[moved], bounds=(0.0, 1.0), lsmr_tol="auto", max_iter=200)
    w = np.clip(sol.x - DEAD_ZONE, 0.0, 1.0)
    weights = np.zeros(52, np.float32)
    weights[idx] = w
    out = points.copy()
    out[:468] = points[:468] - np.tensordot(w, basis[idx], axes=1)
    return out, weights, "rig blendshapes, bounded least squares"


def reconstruct_head(
    photo: Photo, face: FaceObservation, segmentation: Segmentation, texture_size: int = TEXTURE_SIZE
) -> HeadModel:
    """The photo's face in vrhub's closed head template, pose-free, expression-neutral, textured."""
    template = get_head_template()
    yaw, pitch, roll = face.yaw_pitch_roll
    pts = face_in_head_frame(face)
    amount = SYMMETRY_FRONTAL + (SYMMETRY_TURNED - SYMMETRY_FRONTAL) * min(abs(yaw) / 45.0, 1.0)
    pts = symmetrise(pts, amount)
    pts, removed, method = neutralise_expression(pts)
    iris = pts[[IRIS_LEFT, IRIS_RIGHT]]
    fitted = fit_head_template(template, pts[:468], iris=iris)
    v = fitted.vertices
    ears = np.concatenate([template.regions["ear_L"], template.regions["ear_R"]])
    origin = np.array([0.0, float(iris[:, 1].mean()), float(v[ears, 2].mean())])
    vertices_m = ((v - origin) / 100.0).astype(np.float32)
    skin = segmentation.skin if segmentation is not None else None
    baked = bake_head_texture(photo.pixels, face.landmarks, v[:468], face.rotation, skin, size=texture_size)
    warnings: list[str] = []
    if baked.occluded > 0.25:
        warnings.append(
            f"occlusion: {baked.occluded:.0%} of the face skin is covered (hair, hat, hands or glasses); "
            "the texture uses the skin tone there."
        )
    if abs(yaw) > 30:
        warnings.append(f"the head is turned {abs(yaw):.0f} degrees; the far side is filled by symmetry.")
    quality: dict[str, Any] = {
        "yaw": round(float(yaw), 2),
        "pitch": round(float(pitch), 2),
        "roll": round(float(roll), 2),
        "interocular_px": round(float(np.linalg.norm(face.iris_centres[0] - face.iris_centres[1])), 1),
        "skin_visible": round(baked.skin_visible, 3),
        "occluded": round(baked.occluded, 3),
        "symmetry": round(amount, 3),
        "expression_method": method,
        "expression_removed": {
            name: round(float(removed[i]), 3) for i, name in enumerate(ARKIT_BLENDSHAPES) if removed[i] > 0
        },
        "warnings": warnings,
    }
    return HeadModel(
        vertices=vertices_m,
        triangles=template.triangles.astype(np.uint32),
        uvs=template.uvs.astype(np.float32),
        albedo=baked.albedo,
        landmark_vertices=np.arange(468, dtype=np.int64),
        regions={k: v_.copy() for k, v_ in template.regions.items()},
        eye_colour=baked.eye_colour,
        skin_tone=baked.skin_tone,
        expression_removed=removed,
        quality=quality,
    )


@hookimpl
def register_stages(register: Any) -> None:
    register(
        "reconstruct",
        "landmark_head",
        reconstruct_head,
        description="face landmarks fitted into vrhub's closed head template; warped, de-lit, symmetric texture",
    )
