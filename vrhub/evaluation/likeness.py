"""Likeness of an avatar to its photo: landmarks re-detected on a render, NME and identification.

The avatar is rendered in the photo's pose (:func:`vrhub.evaluation.render.render_in_photo_pose`),
the same mediapipe detector stage finds the 468 face landmarks on the render, and the normalised
mean error (NME) against the photo's landmarks is the mean point distance after a 2-D similarity
(Procrustes) alignment, divided by the inter-ocular distance (outer eye corners 33 and 263) of
the photo's landmarks. Calibration measured with such a harness (issue 7): the photo itself,
re-detected, scores 0.4-1.0 %; a stranger's photo 2.4-3.3 %. Goal: <= 1.5 %.

Identification: each avatar's render landmarks are compared with every photo's landmarks; the
avatar is identified when its own photo is the nearest (rank 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vrhub.evaluation.render import Rendering, render_in_photo_pose, similarity_fit
from vrhub.pipeline.types import FaceObservation, Photo, RiggedAvatar

#: Outer eye corners (subject's right, subject's left) in mediapipe's face mesh.
OUTER_EYE_CORNERS = (33, 263)
#: Landmarks compared: the 468 face-mesh points (iris points follow the gaze, not the identity).
FACE_POINTS = 468


def nme(points: np.ndarray, reference: np.ndarray) -> float:
    """Normalised mean error of ``points`` against ``reference`` after a 2-D similarity alignment.

    points, reference : (k >= 468, >= 2) float64 pixels (only x, y of the first 468 are used).
    Returns a fraction of the reference's inter-ocular distance (0.01 = 1 %).
    """
    p = np.asarray(points, np.float64)[:FACE_POINTS, :2]
    r = np.asarray(reference, np.float64)[:FACE_POINTS, :2]
    s, rot, t = similarity_fit(p, r)
    aligned = s * p @ rot.T + t
    iod = float(np.linalg.norm(r[OUTER_EYE_CORNERS[0]] - r[OUTER_EYE_CORNERS[1]]))
    return float(np.linalg.norm(aligned - r, axis=1).mean() / max(iod, 1e-9))


def detect_landmarks(image: np.ndarray, name: str = "render") -> np.ndarray | None:
    """(478, 3) landmarks found by the builtin detect stage on an RGB uint8 image, or None."""
    from vrhub.pipeline.run import PipelineError
    from vrhub.stages.mediapipe_detect import detect_face

    try:
        return detect_face(Photo(np.ascontiguousarray(image), name=name)).landmarks
    except PipelineError:
        return None


@dataclass(frozen=True)
class Likeness:
    """One avatar against its photo.

    nme : NME (fraction) of the render with the photo's expression re-applied through the rig
        (the identity comparison), nan when no face was found on the render.
    nme_neutral : the same for the neutral (expression-removed) avatar.
    render_landmarks : (478, 3) landmarks on the expression render, or None.
    rendering : the expression render (photo size).
    """

    nme: float
    nme_neutral: float
    render_landmarks: np.ndarray | None
    rendering: Rendering


def measure_likeness(avatar: RiggedAvatar, face: FaceObservation) -> Likeness:
    """Render ``avatar`` in the pose of ``face`` (with and without the removed expression), re-detect,
    and score both renders against the photo's landmarks."""
    expressive = render_in_photo_pose(avatar, face, avatar.head.expression_removed)
    neutral = render_in_photo_pose(avatar, face, None)
    lm = detect_landmarks(expressive.image)
    lm_neutral = detect_landmarks(neutral.image)
    score = nme(lm, face.landmarks) if lm is not None else float("nan")
    score_neutral = nme(lm_neutral, face.landmarks) if lm_neutral is not None else float("nan")
    return Likeness(score, score_neutral, lm, expressive)


@dataclass(frozen=True)
class Identification:
    """matrix : (a, p) float64 NME of avatar i's render against photo j (nan: no render landmarks);
    rank : (a,) int rank of the own photo in row i (1 = nearest; 0 when not measurable);
    rate : fraction of avatars with rank 1."""

    matrix: np.ndarray
    rank: np.ndarray
    rate: float


def identification(
    render_landmarks: list[np.ndarray | None], photo_landmarks: list[np.ndarray]
) -> Identification:
    """Rank matrix: avatar i (render landmarks) against every photo j; avatar i belongs to photo i."""
    a, p = len(render_landmarks), len(photo_landmarks)
    matrix = np.full((a, p), np.nan)
    rank = np.zeros(a, np.int64)
    for i, lm in enumerate(render_landmarks):
        if lm is None:
            continue
        matrix[i] = [nme(lm, ref) for ref in photo_landmarks]
        rank[i] = 1 + int((matrix[i] < matrix[i, i]).sum())
    rate = float((rank == 1).sum() / a) if a else float("nan")
    return Identification(matrix, rank, rate)


def quality_report(avatar: RiggedAvatar, face: FaceObservation) -> dict[str, Any]:
    """The per-avatar quality report of issue 7 as JSON-able values, for the hub to store with the
    avatar: the reconstruct stage's own report (yaw, pitch, expression removed, warnings ...) plus
    ``nme_percent`` measured here (one render in the photo's pose with the removed expression
    re-applied, one detection; about a few hundred ms). ``nme_percent`` is None when no face is
    found on the render, and a warning says so."""
    quality = dict(avatar.head.quality)
    warnings = list(quality.get("warnings", [])) + [
        w for w in face.warnings if w not in quality.get("warnings", [])
    ]
    lm = detect_landmarks(render_in_photo_pose(avatar, face, avatar.head.expression_removed).image)
    score = None if lm is None else round(nme(lm, face.landmarks) * 100, 3)
    if score is None:
        warnings.append("likeness: no face was found on the avatar's render; NME not measured.")
    elif score > 2.4:
        warnings.append(
            f"likeness: NME {score:.2f} % is in the range of a different person's photo (2.4-3.3 %)."
        )
    quality.update(
        {
            "nme_percent": score,
            "nme_basis": "render in the photo's pose vs photo landmarks, inter-ocular, similarity-aligned",
            "warnings": warnings,
        }
    )
    return quality
