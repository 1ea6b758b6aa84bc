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

#: measured 0.683 mean IoU over the 18 annotated photos with hair (see the hair report); the floor
#: sits a little under it so a regression fails
MEAN_IOU_FLOOR = 0.65
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


@pytest.mark.slow
def test_hair_mask_matches_the_hand_drawn_polygons(polygons):
    ious = {}
    for rel, polys in polygons.items():
        if not polys:
            continue
        photo, _, seg = observed(rel)
        truth = annotate_hair.rasterise(polys, (photo.width, photo.height))
        ious[rel] = annotate_hair.iou(seg.hair > 0.5, truth)
    assert len(ious) >= 18
    assert min(ious.values()) >= PHOTO_IOU_FLOOR, ious
    assert np.mean(list(ious.values())) >= MEAN_IOU_FLOOR, ious


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
