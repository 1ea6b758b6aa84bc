"""Builtin ``reconstruct`` stage "landmark_head": the photo's face landmarks in vrhub's head template.

1. **Pose and scale.** The 478 landmarks (pixels, mediapipe's relative depth) are brought into the
   head frame with the detect stage's weighted Procrustes pose (``R^T (p - t) / s``), which also
   scales them to the life-size canonical face; the size is then the geometric mean of that and
   the size that puts the iris centres :data:`INTERPUPILLARY_CM` apart (the adult mean, 6.3 cm:
   one photo has no absolute scale). Measured on GRID video frames of one speaker, the mean is
   steadier than either cue alone.
2. **Symmetry.** A frontal face keeps its own shape, asymmetries included (they are part of a
   likeness: over the 14 shared portraits, blending half-way with the mirror image gave a median
   NME of 1.84 %, keeping the face 1.70 %). As the head turns the face is blended with its mirror
   image (mirrored landmark pairs of the canonical mesh), up to 0.8 at 45 degrees, because
   mediapipe's depth of the far side is a guess.
3. **Expression.** The photo's expression is estimated and removed: with the rig's own landmark
   blendshapes (:func:`vrhub.geometry.blendshapes.landmark_blendshape_basis`) when that module is
   present — a bounded least-squares fit of the mouth and eye shapes to the difference between
   the face and the canonical face (similarity-aligned), keeping only weights above a dead zone
   (identity, e.g. naturally full lips, is not an expression) — and the removed weights are
   reported in ``HeadModel.expression_removed`` (ARKit order). Crossed inner lips are moved apart
   (:func:`keep_lips_apart`) and any fold of the face's skin is relaxed (:func:`untangle_face`).
4. **Template.** :func:`vrhub.geometry.head_template.fit_head_template` places the face as
   vertices[0:468] and bends the skull, ears, neck, eye sockets, mouth cavity, teeth and tongue
   around it; eyeballs go behind the iris landmarks.
5. **Texture.** :func:`vrhub.geometry.texture.bake_head_texture` (warp, de-light, symmetric
   fill, skin tone, eyes, mouth), 1024 px unless ``texture_size`` says otherwise.

Output: metres, +Y up, +Z toward the viewer, origin between the ears at the height of the eyes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from vrhub import hookimpl
from vrhub.geometry.canonical_face import load_canonical_face
from vrhub.geometry.head_template import fit_head_template, get_head_template
from vrhub.geometry.intersections import self_intersections
from vrhub.geometry.texture import bake_head_texture
from vrhub.geometry.topology import mesh_adjacency
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, FaceObservation, HeadModel, Photo, Segmentation
from vrhub.stages.mediapipe_detect import IRIS_LEFT, IRIS_RIGHT, head_pose

INTERPUPILLARY_CM = 6.3
TEXTURE_SIZE = 1024
#: Mirror blend: none for a frontal face (its asymmetry is the person's), rising to 0.8 at 45
#: degrees of yaw (the far side's depth is mediapipe's guess). 0.5 (a fully symmetric face) cost
#: 0.14 % of median NME on the shared portraits; it made video frames' geometry steadier by 0.09 %.
SYMMETRY_FRONTAL, SYMMETRY_TURNED = 0.0, 0.8
#: Expression shapes that are fitted and removed, and the dead zone below which a weight is
#: taken to be identity rather than expression.
#: (mouthStretch is left out: against the canonical face it comes out near 0.8 on every shared
#: photo, smiling or not, i.e. it measures mouth width = identity.)
#: The talking mouth (jaw, lips closed, rolled, lower lip down) is the main difference between
#: frames of one speaker: with these shapes and their smaller dead zone the
#: neutral face of 7 frames of each of the 5 shared GRID videos differs from the first frame's by
#: 0.70 % of the face width on average (worst 1.32 %), against 0.81 % (worst 1.7 %) with the jaw,
#: smile, funnel and pucker alone and a 0.12 dead zone. (Frown, press, shrug and jawForward
#: steadied the frames further, to 0.62 %, but only by fitting identity: they saturate on
#: ordinary portraits, so they are left out.) mouthUpperUp adds nothing on the videos but is the
#: broad smile's raised upper lip: without it the neutral lips of 23 shared portraits stayed
#: 1.42x the canonical opening (median; 2.1x at worst, teeth showing at rest), with it and the
#: dead-zone ramp below 0.65x (1.18x at worst).
NEUTRALISED = (
    "jawOpen",
    "mouthClose",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFunnel",
    "mouthPucker",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeWideLeft",
    "eyeWideRight",
    "browInnerUp",
)
DEAD_ZONE = 0.12
#: The talking mouth's shapes use a smaller dead zone: speech moves them a little all the time.
TALKING_SHAPES = (
    "jawOpen",
    "mouthClose",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
)
TALKING_DEAD_ZONE = 0.05
#: Occluded skin fraction above which the quality report warns.
OCCLUSION_WARNING = 0.4
#: Glasses score above which the quality report warns (see :func:`glasses_score`).
GLASSES_WARNING = 2.5


def glasses_score(photo: np.ndarray, landmarks: np.ndarray) -> float:
    """Edge energy where a glasses frame would be, relative to plain skin (a heuristic).

    Horizontal-edge energy on the nose bridge (landmark 168: a frame's bridge crosses it) plus
    that below each eye (a lower rim), both over the gradient energy of forehead and cheek skin.
    On the 23 shared portraits a threshold of 2.5 finds 3 of the 6 with glasses and none of the
    17 without; faint rimless frames and low-resolution video stills are missed or noisy.
    """
    lm = np.asarray(landmarks, np.float64)
    iod = float(np.linalg.norm(lm[468, :2] - lm[473, :2]))
    if iod < 10:
        return 0.0
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = grey.shape
    pad = int(0.25 * iod) + 4
    x0 = int(max(lm[[33, 263, 205, 425, 151], 0].min() - pad, 0))
    x1 = int(min(lm[[33, 263, 205, 425, 151], 0].max() + pad, w))
    y0 = int(max(lm[[151, 33, 263], 1].min() - pad, 0))
    y1 = int(min(lm[[205, 425, 50, 280], 1].max() + pad, h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    crop = cv2.GaussianBlur(grey[y0:y1, x0:x1], (0, 0), max(iod / 60.0, 0.7))
    gx = np.abs(cv2.Sobel(crop, cv2.CV_32F, 1, 0))
    gy = np.abs(cv2.Sobel(crop, cv2.CV_32F, 0, 1))

    def energy(img: np.ndarray, centre: np.ndarray, radius: float) -> float:
        cx, cy = int(centre[0]) - x0, int(centre[1]) - y0
        r = max(int(radius), 2)
        patch = img[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1]
        return float(patch.mean()) if patch.size else 0.0

    ref_points = [(lm[151, :2], 0.12 * iod), (lm[205, :2], 0.08 * iod), (lm[425, :2], 0.08 * iod)]
    ref = np.mean([energy(gx, c, r) + energy(gy, c, r) for c, r in ref_points]) + 1.0
    bridge = energy(gy, lm[168, :2], 0.1 * iod)
    under = np.mean([energy(gy, (lm[a, :2] + lm[b, :2]) / 2, 0.1 * iod) for a, b in ((145, 50), (374, 280))])
    return float((bridge + under) / ref)


def face_in_head_frame(face: FaceObservation) -> np.ndarray:
    """(478, 3) float64 landmarks in the head frame, centimetres (pose removed, scaled as above)."""
    lm = np.asarray(face.landmarks, np.float64)
    rot, scale, t = head_pose(lm)
    p = ((lm * np.array([1.0, -1.0, -1.0]) - t) @ rot) / scale
    ipd = float(np.linalg.norm(p[IRIS_LEFT] - p[IRIS_RIGHT]))
    if ipd > 1e-6:
        # geometric mean of the two size cues: the iris prior and the Procrustes fit to the
        # (life-size) canonical face; the iris centres alone jitter by a pixel or two on small faces
        p *= np.sqrt(INTERPUPILLARY_CM / ipd)
    return p


def symmetrise(points: np.ndarray, amount: float) -> np.ndarray:
    """Blend the 468 face points (k >= 468, 3) with their mirror image by ``amount`` in [0, 1]."""
    face = load_canonical_face()
    out = points.copy()
    mirrored = points[face.mirror] * np.array([-1.0, 1.0, 1.0])
    out[:468] = points[:468] * (1 - amount) + mirrored * amount
    return out


#: Landmarks that an expression hardly moves (forehead, eye corners, nose, temples): mediapipe's
#: Procrustes set without the jaw line and the lower cheeks.
RIGID_LANDMARKS = (
    4, 6, 10, 33, 54, 67, 117, 119, 121, 127, 129, 133, 143, 198, 263, 284, 297, 346, 348, 350,
    356, 358, 362, 372, 420,
)  # fmt: skip


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with ``s * src @ R.T + t ~= dst``; src, dst (k, 3)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float((sv * np.diag(d)).sum() / (a**2).sum())
    return scale, rot, md - scale * ms @ rot.T


@lru_cache(maxsize=1)
def _canonical_basis() -> np.ndarray | None:
    """(k, 468, 3) float64 cm: the rig's landmark blendshapes (``NEUTRALISED`` rows) on the canonical
    face, or None when :mod:`vrhub.geometry.blendshapes` is not installed. The rig scales its offsets
    with the face, so a face ``s`` times the canonical size uses ``s`` times this basis."""
    try:
        from vrhub.geometry.blendshapes import landmark_blendshape_basis
    except ImportError:
        return None
    basis = landmark_blendshape_basis(load_canonical_face().vertices / 100.0).astype(np.float64) * 100.0
    return basis[[ARKIT_BLENDSHAPES.index(n) for n in NEUTRALISED]]


def _bounded_least_squares(a: np.ndarray, b: np.ndarray, ridge: float) -> np.ndarray:
    """min |a x - b|^2 + ridge |x|^2 with 0 <= x <= 1 (a: (m, k), k small).

    Solved exactly by bounded-variable least squares on the k x k Cholesky factor of the
    (ridge-regularised) normal equations. The ridge keeps opposite shapes (eyeBlink, eyeWide)
    from both switching on to cancel each other.
    """
    from scipy.optimize import lsq_linear

    k = a.shape[1]
    ata = a.T @ a + ridge * np.eye(k)
    r = np.linalg.cholesky(ata).T  # ata = r.T @ r
    rhs = np.linalg.solve(r.T, a.T @ b)
    return lsq_linear(r, rhs, bounds=(0.0, 1.0), method="bvls").x


def neutralise_expression(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Remove the photo's expression from the face points (cm, head frame).

    The canonical face is the neutral reference: the points are similarity-aligned to it on
    :data:`RIGID_LANDMARKS`, the :data:`NEUTRALISED` shapes are fitted to the difference by
    bounded least squares (0..1, small ridge), weights under the dead zone z (:data:`DEAD_ZONE`,
    :data:`TALKING_DEAD_ZONE` for the :data:`TALKING_SHAPES`) are taken as identity, and the rest are
    subtracted: in full from 2z up, ramping from 0 at z to 2z at 2z. (Subtracting z from every
    weight instead left z of every clear expression in the neutral face: 0.12 of a broad smile.)
    Returns (points, weights (52,) float32 removed, method). Needs
    :mod:`vrhub.geometry.blendshapes`; without it nothing is removed and the method says so.
    """
    basis = _canonical_basis()
    if basis is None:
        return points, np.zeros(52, np.float32), "none (vrhub.geometry.blendshapes not installed)"
    canonical = load_canonical_face().vertices
    rigid = list(RIGID_LANDMARKS)
    s, rot, t = _similarity(points[rigid], canonical[rigid])
    aligned = s * points[:468] @ rot.T + t
    a = basis.reshape(len(NEUTRALISED), -1).T  # (468*3, k)
    b = (aligned - canonical).reshape(-1)
    # only rows the chosen shapes actually move: identity elsewhere must not pull the fit
    moved = np.abs(a).max(1) > 1e-4
    ridge = 0.02 * float(np.trace(a[moved].T @ a[moved])) / a.shape[1]
    x = _bounded_least_squares(a[moved], b[moved], ridge)
    zone = np.array([TALKING_DEAD_ZONE if n in TALKING_SHAPES else DEAD_ZONE for n in NEUTRALISED])
    w = np.where(x >= 2 * zone, x, np.clip(2 * (x - zone), 0.0, None))
    weights = np.zeros(52, np.float32)
    weights[[ARKIT_BLENDSHAPES.index(n) for n in NEUTRALISED]] = w
    neutral_aligned = aligned - np.tensordot(w, basis, axes=1)
    out = points.copy()
    out[:468] = ((neutral_aligned - t) @ rot) / s
    return out, weights, "rig blendshapes, bounded least squares"


#: Inner-lip landmark pairs (upper, lower) across the mouth opening, centre to corners.
UPPER_LIP = (13, 82, 81, 80, 191, 312, 311, 310, 415)
LOWER_LIP = (14, 87, 178, 88, 95, 317, 402, 318, 324)
#: Smallest neutral lip opening, as a fraction of the canonical face's (which is slightly open).
MIN_LIP_GAP = 0.5


def keep_lips_apart(points: np.ndarray) -> np.ndarray:
    """Undo lip crossings that removing mouthLowerDown from a pressed mouth can leave: where an
    inner-lip pair is closer (in y) than :data:`MIN_LIP_GAP` of the canonical gap, both lips move
    apart symmetrically to it. points (k >= 468, 3) cm, head frame -> same."""
    canonical = load_canonical_face().vertices
    up, lo = list(UPPER_LIP), list(LOWER_LIP)
    wanted = MIN_LIP_GAP * (canonical[up, 1] - canonical[lo, 1])
    deficit = np.maximum(wanted - (points[up, 1] - points[lo, 1]), 0.0)
    out = points.copy()
    out[up, 1] += deficit / 2
    out[lo, 1] -= deficit / 2
    return out


#: Rounds of :func:`untangle_face` and how far each moves a crossing vertex toward its neighbours.
UNTANGLE_ROUNDS, UNTANGLE_STEP = 30, 0.5


def untangle_face(points: np.ndarray) -> np.ndarray:
    """Unfold the face where its skin passes through itself.

    Removing a broad smile through the rig's smile shapes can fold the mouth corners: over the
    14 shared portraits, the upper lip's corner triangles crossed the lower lip's on 11 faces
    (1-19 crossing pairs each). While any face triangles cross, the corners of the crossing
    triangles move half-way toward the mean of their neighbours (a local Laplacian step), at most
    :data:`UNTANGLE_ROUNDS` times. points (k >= 468, 3) cm, head frame -> same; a face without
    crossings is returned unchanged."""
    tris = get_head_template().face_triangles
    adj, deg = mesh_adjacency(tris, 468)
    out = np.array(points, np.float64, copy=True)
    for _ in range(UNTANGLE_ROUNDS):
        pairs = self_intersections(out[:468], tris)
        if not len(pairs):
            break
        moving = np.unique(tris[pairs.ravel()])
        mean = (adj @ out[:468]) / deg[:, None]
        out[moving] += UNTANGLE_STEP * (mean[moving] - out[moving])
    return out


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
    pts = untangle_face(keep_lips_apart(pts))
    iris = pts[[IRIS_LEFT, IRIS_RIGHT]]
    fitted = fit_head_template(template, pts[:468], iris=iris)
    v = fitted.vertices
    ears = np.concatenate([template.regions["ear_L"], template.regions["ear_R"]])
    origin = np.array([0.0, float(iris[:, 1].mean()), float(v[ears, 2].mean())])
    vertices_m = ((v - origin) / 100.0).astype(np.float32)
    skin = segmentation.skin if segmentation is not None else None
    background = segmentation.background if segmentation is not None else None
    baked = bake_head_texture(
        photo.pixels,
        face.landmarks,
        v[:468],
        face.rotation,
        skin,
        size=texture_size,
        background_mask=background,
        hair_mask=segmentation.hair if segmentation is not None else None,
    )
    warnings: list[str] = []
    glasses = glasses_score(photo.pixels, face.landmarks)
    if glasses > GLASSES_WARNING:
        warnings.append(
            "glasses: the photo seems to show glasses; their frame is baked into the face texture."
        )
    if baked.occluded > OCCLUSION_WARNING:
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
        "glasses_score": round(glasses, 2),
        "symmetry": round(amount, 3),
        "expression_method": method,
        "expression_removed": {
            name: round(float(removed[i]), 3) for i, name in enumerate(ARKIT_BLENDSHAPES) if removed[i] > 0
        },
        "warnings": list(dict.fromkeys([*face.warnings, *warnings])),
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


def warm_up(texture_size: int = TEXTURE_SIZE) -> None:
    """Build the per-process caches (canonical face, head template, texture rasters, blendshape
    basis) now rather than in the first job; worker processes may call it at start-up."""
    from vrhub.geometry.texture import _face_raster

    get_head_template()
    _face_raster(texture_size)
    _face_raster(max(texture_size // 2, 256))
    _canonical_basis()


@hookimpl
def register_stages(register: Any) -> None:
    register(
        "reconstruct",
        "landmark_head",
        reconstruct_head,
        description="face landmarks fitted into vrhub's closed head template; warped, de-lit, symmetric texture",
    )
