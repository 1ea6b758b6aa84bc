"""Face observations for offline hair tools (training, annotation, evaluation scripts and tests).

``observe_face`` uses the pipeline's own detect stage (``vrhub.stages.mediapipe_detect``) when it is
installed, so training features match run time; otherwise it runs mediapipe FaceMesh (static mode,
refine_landmarks) directly and fills only what the hair code reads (landmarks in pixels, bbox).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from vrhub.pipeline.types import FaceObservation, Photo

_lock = threading.Lock()
_mesh = None


def load_photo(path: str | Path) -> Photo:
    """Read an image file as an RGB Photo (EXIF orientation applied)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return Photo(pixels=np.asarray(im, np.uint8).copy(), name=Path(path).name)


def _direct_facemesh(photo: Photo) -> FaceObservation | None:
    global _mesh
    import mediapipe as mp

    with _lock:
        if _mesh is None:
            _mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=1, min_detection_confidence=0.3
            )
        res = _mesh.process(np.ascontiguousarray(photo.pixels))
    if not res.multi_face_landmarks:
        return None
    h, w = photo.height, photo.width
    pts = np.array([(p.x * w, p.y * h, p.z * w) for p in res.multi_face_landmarks[0].landmark], np.float64)
    x0, y0 = pts[:, :2].min(axis=0)
    x1, y1 = pts[:, :2].max(axis=0)
    return FaceObservation(
        landmarks=pts,
        bbox=(float(x0), float(y0), float(x1), float(y1)),
        image_size=(w, h),
        rotation=np.eye(3),
        yaw_pitch_roll=(0.0, 0.0, 0.0),
        iris_centres=pts[[468, 473], :2] if len(pts) >= 478 else np.zeros((2, 2)),
    )


def observe_face(photo: Photo) -> FaceObservation | None:
    """The face in ``photo`` (None when no face is found)."""
    try:
        from vrhub.stages import mediapipe_detect  # owned by the face helper
    except ImportError:
        return _direct_facemesh(photo)
    fn = getattr(mediapipe_detect, "detect_face", None) or getattr(mediapipe_detect, "detect", None)
    if fn is None:
        return _direct_facemesh(photo)
    try:
        return fn(photo)
    except Exception:
        return _direct_facemesh(photo)
