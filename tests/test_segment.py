"""The landmarks segment stage against hand-drawn hair polygons on the shared portraits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hair_testing import SHARED_DATA, observed

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("annotate_hair", ROOT / "scripts" / "annotate_hair.py")
annotate_hair = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(annotate_hair)

#: measured 0.693 mean IoU over the 18 shared photos with hair, 0.798 against the second annotator's
#: outlines of the same photos and 0.764 over the 25 pool portraits (see the hair report); the floors
#: sit a little under them so a regression fails
MEAN_IOU_FLOOR = 0.67
SECOND_MEAN_IOU_FLOOR = 0.77
POOL_MEAN_IOU_FLOOR = 0.735
PHOTO_IOU_FLOOR = 0.28


@pytest.fixture(scope="module")
def polygons():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return annotate_hair.load_polygons()


def test_masks_are_soft_partitions_of_the_photo():
    photo, face, seg = observed("hair/congress_C001066.jpg")
    masks = [seg.hair, seg.skin, seg.body, seg.background]
    for m in masks:
        assert m.shape == (photo.height, photo.width) and m.dtype == np.float32
        assert m.min() >= 0.0 and m.max() <= 1.0
    total = sum(masks)
    assert np.allclose(total, 1.0, atol=1e-3)
    # the face oval is mostly skin, the corners of the photo are background
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    assert seg.skin[cy - 5 : cy + 5, cx - 5 : cx + 5].mean() > 0.5
    assert seg.background[:10, :10].mean() > 0.9


def _stage_ious(polygons: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """IoU of the segment stage's hair mask with the outlines of every photo that has hair."""
    ious = {}
    for rel, polys in polygons.items():
        if polys:
            photo, _, seg = observed(rel)
            truth = annotate_hair.rasterise(polys, (photo.width, photo.height))
            ious[rel] = annotate_hair.iou(seg.hair > 0.5, truth)
    return ious


@pytest.mark.slow
def test_hair_mask_matches_the_hand_drawn_polygons(polygons):
    ious = _stage_ious(polygons)
    assert len(ious) >= 18
    assert min(ious.values()) >= PHOTO_IOU_FLOOR, ious
    assert np.mean(list(ious.values())) >= MEAN_IOU_FLOOR, ious


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "count", "floor"),
    [("POOL", 25, POOL_MEAN_IOU_FLOOR), ("SECOND", 18, SECOND_MEAN_IOU_FLOOR)],
)
def test_hair_mask_matches_the_other_annotations(polygons, source, count, floor):
    """POOL: 25 training-split hair_pool portraits of every length and texture; SECOND: the shared
    portraits outlined again by another annotator (both on zoomed crops)."""
    ious = _stage_ious(annotate_hair.load_polygons(getattr(annotate_hair, source)))
    assert len(ious) == count
    assert np.mean(list(ious.values())) >= floor, ious


def _below_chin_overlap(sources: tuple[str, ...]) -> tuple[float, float, int]:
    """Recall and precision of the stage's hair below the chin (landmark 152), pooled over the
    photos whose outlines hold at least 3000 hair pixels there (long hair). Returns (recall,
    precision, photos)."""
    inter = truth_px = pred_px = photos = 0
    for source in sources:
        for rel, polys in annotate_hair.load_polygons(getattr(annotate_hair, source)).items():
            if not polys:
                continue
            photo, face, seg = observed(rel)
            below = np.zeros((photo.height, photo.width), bool)
            below[int(face.landmarks[152, 1]) :] = True
            truth = annotate_hair.rasterise(polys, (photo.width, photo.height)) & below
            if truth.sum() < 3000:
                continue
            pred = (seg.hair > 0.5) & below
            inter += int((truth & pred).sum())
            truth_px += int(truth.sum())
            pred_px += int(pred.sum())
            photos += 1
    return inter / truth_px, inter / max(pred_px, 1), photos


@pytest.mark.slow
def test_long_hair_is_followed_below_the_jaw(polygons):
    """Hair that hangs below the chin is found there, not cut at the jaw where it meets a dark top
    (measured over 13 outlines: 0.67 of the outlined hair below the chin is found, precision 0.76;
    GrabCut alone found 0.41 of it, precision 0.74)."""
    recall, precision, photos = _below_chin_overlap(("POLYGONS", "POOL", "SECOND"))
    assert photos >= 10
    assert recall >= 0.6 and precision >= 0.7, (recall, precision)


def test_two_annotators_outlined_the_same_photos(polygons):
    """The second annotation covers exactly the shared photos with hair, and the two people's
    outlines overlap (they agree at 0.741 mean IoU: the reference itself is uncertain)."""
    agree = annotate_hair.agreement()
    assert set(agree) == {rel for rel, polys in polygons.items() if polys}
    assert 0.6 < np.mean(list(agree.values())) < 0.95


def test_bald_heads_get_little_hair(polygons):
    for rel, polys in polygons.items():
        if polys:
            continue
        _, face, seg = observed(rel)
        x0, y0, x1, y1 = face.bbox
        assert (seg.hair > 0.5).sum() / ((x1 - x0) * (y1 - y0)) < 0.25, rel


def test_rasterised_polygon_iou_is_exact_on_a_square():
    a = annotate_hair.rasterise([np.array([[10, 10], [29, 10], [29, 29], [10, 29]], float)], (50, 50))
    b = annotate_hair.rasterise([np.array([[20, 10], [39, 10], [39, 29], [20, 29]], float)], (50, 50))
    assert a.sum() == 400
    assert abs(annotate_hair.iou(a, b) - 200 / 600) < 1e-9


def test_the_same_photo_always_gives_the_same_hair_mask():
    """GrabCut seeds its colour models from OpenCV's global random state; whatever ran before in
    the process must not change the mask. W000207's mask used to be 10.6k or 26.8k hair pixels
    depending on that state (short hair with or without half of the background's blue)."""
    import cv2

    from vrhub.stages.landmark_segment import landmark_segment

    photo, face, _ = observed("hair_pool/W000207.jpg")
    masks = []
    for seed in range(6):
        cv2.setRNGSeed(seed)
        masks.append(landmark_segment(photo, face).hair)
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])
