"""Builtin ``detect`` stage "mediapipe": mediapipe FaceMesh (static images, iris refinement).

Finds up to five faces, keeps the largest, and reports 478 landmarks in pixels, the head pose
(weighted Procrustes of the landmarks against mediapipe's canonical face), iris centres and warnings.

Low-confidence rules (the stage never fails on these, it warns; the warnings reach the avatar's
quality report):
- |yaw| > 45 degrees: "low confidence: the head is turned ... (more than 45 degrees)".
- inter-ocular distance < 80 px: the face is cropped, upscaled and detected again for steadier
  landmarks, and a "low resolution" warning is added.
- the top of the head or the chin cut off by the frame ("cropped"), a face too dark ("dark photo")
  or clipped to white ("washed-out photo"): :func:`photo_checks`.
A face rolled more than 45 degrees (a sideways or upside-down photo) is turned upright by
:func:`vrhub.pipeline.run.run_pipeline`, which detects again on the turned photo.
A face too small for the first pass (a small face in a large frame) is searched again in
mediapipe's full-range face detector, whose boxes are cropped, upscaled and meshed, and then in
overlapping upscaled crops. No face at all raises ``PipelineError(code="no_face")``.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from vrhub import hookimpl
from vrhub.geometry.canonical_face import SKIN_SAMPLE_LANDMARKS, load_canonical_face
from vrhub.pipeline.run import PipelineError, quarter_turns
from vrhub.pipeline.types import FaceObservation, Photo

MAX_FACES = 5
MIN_INTEROCULAR_PX = 80.0
MAX_YAW_DEG = 45.0
#: Photo checks (:func:`photo_checks`), measured on 619 shared portraits, none of which they flag:
#: the image must show this much above the forehead landmark (10), in forehead-to-chin lengths
#: (the lowest portrait showed 0.29); the median of the face's skin samples (RGB mean, 0..1) must
#: reach DARK_FACE (the darkest well-exposed face: 0.34); at most CLIPPED_FACE of them may be
#: clipped white (the most: 0.43).
MIN_ABOVE_FOREHEAD = 0.2
DARK_FACE = 0.15
CLIPPED_FACE = 0.6
#: Skin sample landmarks: cheeks and nose, and the forehead.
SKIN_SAMPLES = SKIN_SAMPLE_LANDMARKS + (151, 9, 108, 337)
#: Iris centre landmarks: the subject's left eye (+X, image right when facing the camera), right eye.
IRIS_LEFT, IRIS_RIGHT = 473, 468

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _face_mesh() -> Any:
    import mediapipe as mp

    return mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True,
        refine_landmarks=True,
        max_num_faces=MAX_FACES,
        min_detection_confidence=0.5,
    )


def _run_mesh(rgb: np.ndarray) -> list[np.ndarray]:
    """All faces in ``rgb`` (h, w, 3) uint8 as (478, 3) float64 pixel landmarks (z = mediapipe z * w)."""
    h, w = rgb.shape[:2]
    with _lock:
        result = _face_mesh().process(np.ascontiguousarray(rgb))
    faces = []
    for lms in result.multi_face_landmarks or []:
        arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], np.float64)
        arr *= np.array([w, h, w], np.float64)
        faces.append(arr)
    return faces


def _bbox(lm: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = lm[:, :2].min(0)
    x1, y1 = lm[:, :2].max(0)
    return float(x0), float(y0), float(x1), float(y1)


def _area(lm: np.ndarray) -> float:
    x0, y0, x1, y1 = _bbox(lm)
    return (x1 - x0) * (y1 - y0)


def _interocular(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[IRIS_LEFT, :2] - lm[IRIS_RIGHT, :2]))


def _in_crop(rgb: np.ndarray, box: tuple[int, int, int, int], scale: float) -> list[np.ndarray]:
    """Detect in the crop ``box`` (x0, y0, x1, y1) upscaled by ``scale``; landmarks mapped back."""
    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1]
    if crop.size == 0:
        return []
    if scale != 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    faces = _run_mesh(crop)
    return [f / scale + np.array([x0, y0, 0.0]) for f in faces]


def warm_up() -> None:
    """Load the face mesh graph now (about a second) rather than in the first job."""
    _run_mesh(np.zeros((64, 64, 3), np.uint8))


@lru_cache(maxsize=1)
def _full_range_detector() -> Any:
    import mediapipe as mp

    return mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.4)


def _full_range_search(rgb: np.ndarray) -> list[np.ndarray]:
    """Second pass for small faces: mediapipe's full-range face detector (faces up to ~5 m away)
    finds the boxes; each box, widened 2.2x, is upscaled to ~480 px and given to FaceMesh."""
    h, w = rgb.shape[:2]
    with _lock:
        result = _full_range_detector().process(np.ascontiguousarray(rgb))
    found: list[np.ndarray] = []
    for det in (result.detections or [])[:MAX_FACES]:
        box = det.location_data.relative_bounding_box
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        side = 2.2 * max(box.width * w, box.height * h, 8.0)
        crop = (
            int(max(cx - side / 2, 0)),
            int(max(cy - side / 2, 0)),
            int(min(cx + side / 2, w)),
            int(min(cy + side / 2, h)),
        )
        scale = max(1.0, 480.0 / max(crop[2] - crop[0], crop[3] - crop[1], 1))
        found.extend(_in_crop(rgb, crop, scale))
    return _dedupe(found) if found else []


def _tiled_search(rgb: np.ndarray) -> list[np.ndarray]:
    """Last pass for small faces: 2x2 and 3x3 grids of overlapping crops, each upscaled to ~640 px."""
    h, w = rgb.shape[:2]
    for n in (2, 3):
        tw, th = int(np.ceil(w / n * 1.5)), int(np.ceil(h / n * 1.5))
        found: list[np.ndarray] = []
        for gy in range(n):
            for gx in range(n):
                cx, cy = (gx + 0.5) * w / n, (gy + 0.5) * h / n
                x0 = int(np.clip(cx - tw / 2, 0, max(w - tw, 0)))
                y0 = int(np.clip(cy - th / 2, 0, max(h - th, 0)))
                box = (x0, y0, min(x0 + tw, w), min(y0 + th, h))
                scale = max(1.0, 640.0 / max(box[2] - box[0], box[3] - box[1]))
                found.extend(_in_crop(rgb, box, scale))
        if found:
            return _dedupe(found)
    return []


def _dedupe(faces: list[np.ndarray]) -> list[np.ndarray]:
    """Merge detections of the same face from overlapping crops (keep the larger)."""
    faces = sorted(faces, key=_area, reverse=True)
    kept: list[np.ndarray] = []
    for f in faces:
        c = f[:, :2].mean(0)
        if all(np.linalg.norm(c - k[:, :2].mean(0)) > 0.5 * _interocular(k) for k in kept):
            kept.append(f)
    return kept


def head_pose(landmarks: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Weighted similarity Procrustes of canonical face -> photo landmarks.

    landmarks : (>=468, 3) float64 pixels (x right, y down, z = depth, smaller nearer).
    Returns rotation (3, 3) camera-from-head in a right-handed camera frame (x right, y up,
    z toward the viewer), scale (pixels per canonical cm) and translation (3,) pixels, so that
    ``scale * R @ canonical + t`` ~= (x, -y, -z).
    """
    face = load_canonical_face()
    w = face.procrustes_weights
    src = face.vertices
    dst = landmarks[:468] * np.array([1.0, -1.0, -1.0])
    ws = w / w.sum()
    mu_s = ws @ src
    mu_d = ws @ dst
    a = (src - mu_s) * np.sqrt(ws)[:, None]
    b = (dst - mu_d) * np.sqrt(ws)[:, None]
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = float((s * np.diag(fix)).sum() / (a**2).sum())
    t = mu_d - scale * rot @ mu_s
    return rot, scale, t


def yaw_pitch_roll(rot: np.ndarray) -> tuple[float, float, float]:
    """Degrees from a camera-from-head rotation (camera x right, y up, z toward the viewer).

    yaw > 0: the head turns to its own left (nose toward image right); pitch > 0: looks up;
    roll > 0: the head's left side (+X, image right) rises, i.e. the head tilts toward its own
    right shoulder, counter-clockwise as the viewer sees the image.
    """
    fwd = rot[:, 2]
    yaw = np.arctan2(fwd[0], fwd[2])
    pitch = np.arctan2(fwd[1], np.hypot(fwd[0], fwd[2]))
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(-pitch), np.sin(-pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    resid = (ry @ rx).T @ rot
    roll = np.arctan2(resid[1, 0], resid[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def photo_checks(rgb: np.ndarray, landmarks: np.ndarray) -> list[str]:
    """Warnings about how the photo shows the face: the top of the head or the chin cut off by the
    frame, a face too dark or washed out to read its colours. rgb (h, w, 3) uint8; landmarks
    (>= 468, 2+) pixels of an upright face."""
    h, w = rgb.shape[:2]
    lm = np.asarray(landmarks, np.float64)[:, :2]
    length = float(np.linalg.norm(lm[10] - lm[152]))
    if length < 1.0:
        return []
    out = []
    if lm[10, 1] < MIN_ABOVE_FOREHEAD * length:
        out.append(
            "cropped: the top of the head is cut off by the photo's edge; the hair is guessed from "
            "what is visible."
        )
    if lm[152, 1] > h:
        out.append("cropped: the chin is cut off by the photo's edge; the jaw line is estimated.")
    r = max(1, int(round(0.03 * length)))
    samples = []
    for i in SKIN_SAMPLES:
        x, y = int(round(lm[i, 0])), int(round(lm[i, 1]))
        patch = rgb[max(y - r, 0) : max(y + r + 1, 0), max(x - r, 0) : max(x + r + 1, 0)]
        samples.append(patch.reshape(-1, 3))
    px = np.concatenate(samples).astype(np.float64) / 255.0
    if len(px):
        if float(np.median(px.mean(axis=1))) < DARK_FACE:
            out.append("dark photo: the face is underexposed; skin and hair colours are read less reliably.")
        if float(np.mean(px.max(axis=1) >= 250.0 / 255.0)) > CLIPPED_FACE:
            out.append(
                "washed-out photo: much of the face is overexposed to white; skin colour and detail "
                "are lost there."
            )
    return out


def detect_face(photo: Photo) -> FaceObservation:
    """mediapipe FaceMesh (static, iris-refined); the largest of up to 5 faces, with head pose."""
    rgb = photo.pixels
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise PipelineError("The photo must be an RGB image.", code="bad_photo")
    h, w = rgb.shape[:2]
    warnings: list[str] = []
    faces = _run_mesh(rgb)
    if not faces:
        faces = _full_range_search(rgb)
    if not faces:
        faces = _tiled_search(rgb)
    if not faces:
        raise PipelineError(
            "No face found in the photo. Use a photo where one face is clearly visible, "
            "looking roughly toward the camera, not too small and not cut off.",
            code="no_face",
            detail={"width": w, "height": h},
        )
    faces.sort(key=_area, reverse=True)
    found = len(faces)
    if found > 1:
        warnings.append(f"{found} faces found in the photo; the largest one was used.")
    lm = faces[0]
    iod = _interocular(lm)
    if iod < MIN_INTEROCULAR_PX:
        x0, y0, x1, y1 = _bbox(lm)
        m = 0.6 * max(x1 - x0, y1 - y0)
        box = (int(max(x0 - m, 0)), int(max(y0 - m, 0)), int(min(x1 + m, w)), int(min(y1 + m, h)))
        again = _in_crop(rgb, box, min(4.0, 120.0 / max(iod, 1.0)))
        if again:
            lm = max(again, key=_area)
        warnings.append(
            f"low resolution: the eyes are {iod:.0f} px apart (under {MIN_INTEROCULAR_PX:.0f} px); "
            "the face was upscaled, details and texture will be soft."
        )
    rot, _, _ = head_pose(lm)
    ypr = yaw_pitch_roll(rot)
    if quarter_turns(ypr[2]) == 0:  # a sideways face is turned upright by the pipeline and checked then
        warnings += photo_checks(rgb, lm)
    if abs(ypr[0]) > MAX_YAW_DEG:
        warnings.append(
            f"low confidence: the head is turned {abs(ypr[0]):.0f} degrees (more than "
            f"{MAX_YAW_DEG:.0f}); the hidden side is filled by symmetry."
        )
    iris = np.stack([lm[IRIS_LEFT, :2], lm[IRIS_RIGHT, :2]])
    return FaceObservation(
        landmarks=lm,
        bbox=_bbox(lm),
        image_size=(w, h),
        rotation=rot,
        yaw_pitch_roll=ypr,
        iris_centres=iris,
        faces_found=found,
        warnings=tuple(warnings),
    )


@hookimpl
def register_stages(register: Any) -> None:
    register(
        "detect",
        "mediapipe",
        detect_face,
        description="mediapipe FaceMesh with iris refinement; largest face, head pose by Procrustes",
    )
