"""The mediapipe detect stage finds faces in real photos, picks the largest, and refuses empty photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vrhub.pipeline.run import PipelineError
from vrhub.pipeline.types import FaceObservation, Photo
from vrhub.stages.mediapipe_detect import detect_face

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "data" / "faces"
PHOTOS = sorted(p for p in FACES.glob("*") if p.suffix.lower() in {".jpg", ".png"}) if FACES.is_dir() else []

needs_photos = pytest.mark.skipif(not PHOTOS, reason="../shared/data/faces is not present")


def _photo(path: Path) -> Photo:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return Photo(np.ascontiguousarray(bgr[:, :, ::-1]), name=path.name)


@needs_photos
@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_every_shared_photo_gives_one_face_with_478_landmarks_inside_the_photo(path: Path):
    photo = _photo(path)
    face = detect_face(photo)
    assert isinstance(face, FaceObservation)
    assert face.landmarks.shape == (478, 3)
    x0, y0, x1, y1 = face.bbox
    assert 0 <= x0 < x1 <= photo.width + 5 and 0 <= y0 < y1 <= photo.height + 5
    assert face.faces_found == 1
    r = face.rotation
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-6) and np.linalg.det(r) > 0
    # iris centres: the subject's left eye is on the image's right for a face toward the camera
    assert face.iris_centres[0, 0] > face.iris_centres[1, 0]
    assert all(abs(a) < 60 for a in face.yaw_pitch_roll)


@needs_photos
def test_turned_head_reports_yaw_toward_its_own_left():
    face = detect_face(_photo(FACES / "congress_L000397.jpg"))  # turned to her left (labels.csv)
    assert face.yaw_pitch_roll[0] > 15


@needs_photos
def test_small_face_in_a_large_frame_is_found():
    face = detect_face(_photo(FACES / "face_recognition_obama.jpg"))
    assert face.bbox[2] - face.bbox[0] < 0.5 * face.image_size[0]


@needs_photos
def test_face_too_small_for_the_first_pass_is_found_by_the_full_range_pass():
    from vrhub.stages import mediapipe_detect

    small = cv2.resize(
        _photo(FACES / "congress_C001080.jpg").pixels, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA
    )
    canvas = np.full((1400, 1800, 3), (70, 90, 110), np.uint8)
    canvas[900 : 900 + small.shape[0], 1300 : 1300 + small.shape[1]] = small
    assert mediapipe_detect._run_mesh(canvas) == []  # the plain pass misses it
    face = detect_face(Photo(canvas))
    x0, y0, x1, y1 = face.bbox
    assert 1300 <= x0 < x1 <= 1300 + small.shape[1] and 900 <= y0 < y1 <= 900 + small.shape[0]
    assert any("low resolution" in w for w in face.warnings)


@needs_photos
def test_low_resolution_face_is_upscaled_and_warned_about():
    face = detect_face(_photo(FACES / "grid_sbia1a_frame005.png"))
    assert any("low resolution" in w for w in face.warnings)


@needs_photos
def test_two_faces_side_by_side_pick_the_largest_and_say_so():
    big = _photo(FACES / "congress_C000537.jpg").pixels
    small = cv2.resize(_photo(FACES / "congress_G000571.jpg").pixels, None, fx=0.6, fy=0.6)
    canvas = np.full((big.shape[0], big.shape[1] + small.shape[1], 3), 128, np.uint8)
    canvas[:, : small.shape[1]][: small.shape[0]] = small
    canvas[:, small.shape[1] :] = big
    face = detect_face(Photo(canvas))
    assert face.faces_found == 2
    assert face.bbox[0] > small.shape[1]  # the big face is on the right
    assert any("2 faces" in w for w in face.warnings)


def test_photo_without_a_face_raises_no_face():
    rng = np.random.default_rng(0)
    sky = np.clip(rng.normal(160, 8, (480, 640, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(PipelineError) as info:
        detect_face(Photo(sky))
    assert info.value.code == "no_face"
    assert "No face" in str(info.value)


@needs_photos
def test_ordinary_portraits_get_no_photo_warnings():
    """The photo checks stay quiet on every shared photo (they were calibrated on 619 portraits)."""
    from vrhub.stages.mediapipe_detect import photo_checks

    for path in PHOTOS:
        photo = _photo(path)
        assert photo_checks(photo.pixels, detect_face(photo).landmarks) == [], path.name


@needs_photos
@pytest.mark.parametrize(
    "edit, word",
    [
        (lambda rgb: rgb[int(rgb.shape[0] * 0.28) :], "top of the head is cut off"),
        (lambda rgb: rgb[: int(rgb.shape[0] * 0.62)], "chin is cut off"),
        (lambda rgb: (rgb * 0.15).astype(np.uint8), "dark photo"),
        (lambda rgb: np.clip(rgb.astype(np.int32) * 2.2, 0, 255).astype(np.uint8), "washed-out"),
    ],
    ids=["top cut", "chin cut", "underexposed", "overexposed"],
)
def test_a_badly_framed_or_exposed_photo_is_warned_about(edit, word):
    photo = _photo(FACES / "congress_C001080.jpg")
    bad = Photo(np.ascontiguousarray(edit(photo.pixels)), name="bad")
    warnings = detect_face(bad).warnings
    assert any(word in w for w in warnings), warnings
