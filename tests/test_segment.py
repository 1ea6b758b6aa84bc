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

#: measured 0.723 mean IoU over the 18 shared photos with hair, 0.841 against the second annotator's
#: outlines of the same photos and 0.805 over the 25 pool portraits (worst photo 0.53) (see the hair report); the floors
#: sit a little under them so a regression fails
MEAN_IOU_FLOOR = 0.68
SECOND_MEAN_IOU_FLOOR = 0.79
POOL_MEAN_IOU_FLOOR = 0.79
PHOTO_IOU_FLOOR = 0.45


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


def _overlap_in(region, sources: tuple[str, ...], min_truth: int) -> tuple[float, float, int]:
    """Recall and precision of the stage's hair inside ``region(photo, face)`` ((h, w) bool), pooled
    over the outlines (of the named sets) that hold at least ``min_truth`` hair pixels there.
    Returns (recall, precision, outlines)."""
    inter = truth_px = pred_px = outlines = 0
    for source in sources:
        for rel, polys in annotate_hair.load_polygons(getattr(annotate_hair, source)).items():
            if not polys:
                continue
            photo, face, seg = observed(rel)
            inside = region(photo, face)
            truth = annotate_hair.rasterise(polys, (photo.width, photo.height)) & inside
            if truth.sum() < min_truth:
                continue
            pred = (seg.hair > 0.5) & inside
            inter += int((truth & pred).sum())
            truth_px += int(truth.sum())
            pred_px += int(pred.sum())
            outlines += 1
    return inter / truth_px, inter / max(pred_px, 1), outlines


def _below_chin(photo, face) -> np.ndarray:
    below = np.zeros((photo.height, photo.width), bool)
    below[int(face.landmarks[152, 1]) :] = True
    return below


def _temples(photo, face) -> np.ndarray:
    """Beside the face oval (within 0.9 face widths of its middle), from its top down to the eyes."""
    from vrhub.stages.landmark_segment import face_oval_order

    oval = face.landmarks[face_oval_order(), :2]
    width = float(np.ptp(oval[:, 0]))
    ys, xs = np.mgrid[0 : photo.height, 0 : photo.width]
    eye_y = float(face.landmarks[[33, 263], 1].mean())
    band = (np.abs(xs - oval[:, 0].mean()) < 0.9 * width) & (ys > oval[:, 1].min()) & (ys < eye_y)
    return band & ~annotate_hair.rasterise([oval], (photo.width, photo.height))


@pytest.mark.slow
def test_long_hair_is_followed_below_the_jaw(polygons):
    """Hair that hangs below the chin is found there, not cut at the jaw where it meets a dark top
    (measured over 13 outlines: 0.65 of the outlined hair below the chin is found, precision 0.76;
    GrabCut alone found 0.41 of it, precision 0.74)."""
    recall, precision, outlines = _overlap_in(_below_chin, ("POLYGONS", "POOL", "SECOND"), 3000)
    assert outlines >= 10
    assert recall >= 0.6 and precision >= 0.7, (recall, precision)


@pytest.mark.slow
def test_short_hair_at_the_temples_is_found(polygons):
    """The strip of hair beside the face between the forehead and the eyes (grey hair against the
    backdrop, short dark hair beside dark skin) is hair (measured over the 61 outlines with hair
    there: 0.90 of it is found, precision 0.89; GrabCut alone found 0.83, precision 0.92)."""
    recall, precision, outlines = _overlap_in(_temples, ("POLYGONS", "POOL", "SECOND"), 200)
    assert outlines >= 40
    assert recall >= 0.88 and precision >= 0.85, (recall, precision)


#: short-haired pool portraits whose suit shoulder GrabCut took for hair (0.21-0.56 of a face box
#: below the chin before pieces that reach no higher than the lower cheeks were dropped)
SUIT_SHOULDERS = ("L000043", "R000599", "M001168", "D000429", "S001188")


@pytest.mark.parametrize("stem", SUIT_SHOULDERS)
def test_a_suit_shoulder_is_not_hair(stem):
    photo, face, seg = observed(f"hair_pool/{stem}.jpg")
    box = float(np.ptp(face.landmarks[:, 0]) * np.ptp(face.landmarks[:, 1]))
    below_chin = (seg.hair[int(face.landmarks[152, 1]) :] > 0.5).sum() / box
    assert below_chin < 0.02, below_chin


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


def _synthetic_long_hair() -> dict:
    """A 200 x 200 scene for ``hanging_hair``: a face oval in the middle, dark-brown hair found
    beside the cheeks (rows 60-100), the same brown hanging below the jaw (rows 100-170) at the
    sides, and a grey jacket under the neck and out at the shoulders."""
    h = w = 200
    ys, xs = np.mgrid[0:h, 0:w]
    lab = np.zeros((h, w, 3), np.float32)
    lab[..., 0] = 55.0  # grey jacket
    rng = np.random.default_rng(0)
    strand = (np.abs(xs - 100) >= 35) & (np.abs(xs - 100) < 60)
    lab[strand] = (25.0, 8.0, 12.0)  # brown hair
    lab += rng.normal(0.0, 1.5, lab.shape).astype(np.float32)
    oval = ((xs - 100) / 30.0) ** 2 + ((ys - 70) / 40.0) ** 2 <= 1.0
    hair = strand & (ys >= 40) & (ys < 100)
    return {
        "lab": lab,
        "hair": hair,
        "person": np.ones((h, w), np.float32),
        "skin_like": np.where(oval, 0.9, 0.0).astype(np.float32),
        "oval_mask": oval,
        "below_jaw": ys >= 100,
        "envelope": (np.abs(xs - 100) < 95) & (ys < 190),
        "chin": np.array([100.0, 110.0]),
        "eye_y": 60.0,
        "face_w": 60.0,
        "face_h": 80.0,
    }


def test_hanging_hair_follows_hair_down_and_leaves_the_jacket():
    from vrhub.stages.landmark_segment import hanging_hair

    scene = _synthetic_long_hair()
    added = hanging_hair(**scene)
    ys, xs = np.mgrid[0:200, 0:200]
    below = (ys >= 100) & (ys < 170)
    strand = (np.abs(xs - 100) >= 38) & (np.abs(xs - 100) < 57) & below
    jacket = (np.abs(xs - 100) >= 65) & below
    assert added[strand].mean() > 0.9
    assert added[jacket].mean() < 0.05


def test_hanging_hair_adds_nothing_without_hair_beside_the_cheeks():
    from vrhub.stages.landmark_segment import hanging_hair

    scene = _synthetic_long_hair()
    scene["hair"] = scene["hair"] & (np.mgrid[0:200, 0:200][0] < 60)  # only above the eyes
    assert not hanging_hair(**scene).any()


def test_colour_mixture_of_one_flat_colour_stays_finite():
    from vrhub.stages.landmark_segment import _gmm_log_likelihood

    samples = np.full((500, 3), 50.0, np.float32)
    pixels = np.random.default_rng(1).normal(50.0, 5.0, (100, 3))
    loglik = _gmm_log_likelihood(samples, pixels)
    assert loglik.shape == (100,) and np.isfinite(loglik).all()
    assert loglik[np.argmin(np.abs(pixels - 50.0).sum(axis=1))] > loglik.min()


def test_a_gamma_does_not_make_hair_skin_coloured():
    """The skin model's covariance floor scales with the skin's chroma, so a gamma < 1, which
    shrinks every chroma towards grey, does not make blonde or light-brown hair more skin-like
    (with a fixed floor blonde went 0.16 -> 0.25 and a blonde head lost its whole mask)."""
    import cv2

    from vrhub.stages.landmark_segment import skin_likelihood

    rng = np.random.default_rng(0)
    skin = np.clip(rng.normal((222, 178, 152), 5, (300, 3)), 0, 255) / 255.0
    for hair in ((214, 188, 140), (150, 112, 80)):
        like = {}
        for gamma in (1.0, 0.6):
            lab_skin = cv2.cvtColor((skin**gamma).astype(np.float32)[None], cv2.COLOR_RGB2LAB)[0]
            lab_hair = cv2.cvtColor(
                ((np.array([[hair]]) / 255.0) ** gamma).astype(np.float32), cv2.COLOR_RGB2LAB
            )
            like[gamma] = float(skin_likelihood(lab_hair.astype(np.float32), lab_skin)[0, 0])
        assert like[0.6] <= 1.1 * like[1.0], (hair, like)


def test_a_greyscale_photo_segments():
    """No chroma at all (a black-and-white photo): the skin model's floor keeps it finite."""
    photo, face, _ = observed("hair/congress_C001066.jpg")
    from vrhub.pipeline.types import Photo
    from vrhub.stages.landmark_segment import landmark_segment

    grey = np.repeat(photo.pixels.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    seg = landmark_segment(Photo(pixels=grey, name=photo.name), face)
    for m in (seg.hair, seg.skin, seg.body, seg.background):
        assert np.isfinite(m).all()
    assert np.allclose(seg.hair + seg.skin + seg.body + seg.background, 1.0, atol=1e-3)


@pytest.mark.slow
def test_relit_variants_keep_the_hair_mask():
    """A light gradient, gamma 0.6 / 1.6 and a colour cast leave the hair mask where it was: mean IoU
    of a variant's mask with the original's over six portraits (measured 0.94, worst 0.73; 0.88 before
    the skin model followed the skin's lightness-chroma line, 0.81 with a fixed skin-model floor,
    where the blonde A000366 under gamma 0.6 lost all its hair: IoU 0.00)."""
    from hair_testing import relit_variants

    from vrhub.hair.offline_face import observe_face
    from vrhub.pipeline.types import Photo
    from vrhub.stages.landmark_segment import landmark_segment

    ious = []
    for rel in (
        "hair/congress_A000366.jpg",
        "faces/face_recognition_obama.jpg",
        "hair/congress_C001066.jpg",
        "faces/congress_G000571.jpg",
        "faces/congress_L000397.jpg",
        "hair/congress_B001231.jpg",
    ):
        photo, _, seg = observed(rel)
        base = seg.hair > 0.5
        for pixels in relit_variants(photo.pixels).values():
            p = Photo(pixels=pixels, name=photo.name)
            m = landmark_segment(p, observe_face(p)).hair > 0.5
            ious.append((m & base).sum() / max(1, (m | base).sum()))
    assert min(ious) > 0.6, ious
    assert np.mean(ious) >= 0.91, np.mean(ious)


def test_shading_on_the_skin_does_not_make_grey_hair_skin():
    """Skin samples under a light gradient (chroma shrinks with lightness): the model follows that
    line, so hair with less chroma than the skin at its lightness stays unlike skin, while
    darker-lit skin on the line stays skin."""
    import cv2

    from vrhub.stages.landmark_segment import skin_likelihood

    rng = np.random.default_rng(2)
    gain = rng.uniform(0.55, 1.0, (400, 1))
    skin_rgb = np.clip(np.array([[200, 140, 110]]) * gain + rng.normal(0, 2, (400, 3)), 0, 255)
    lab_skin = cv2.cvtColor((skin_rgb / 255.0).astype(np.float32)[None], cv2.COLOR_RGB2LAB)[0]

    def like(rgb):
        lab = cv2.cvtColor((np.array([[rgb]]) / 255.0).astype(np.float32), cv2.COLOR_RGB2LAB)
        return float(skin_likelihood(lab, lab_skin)[0, 0])

    # greyish-brown hair as light as the shaded skin: 0.50 with a chroma model that ignores the
    # line (over the seeds' "not skin" bound of 0.25), 0.06 now
    assert like((160, 128, 108)) < 0.15
    assert like((150, 105, 82)) > 0.5  # the skin itself at three quarters of the light


def test_smooth_like_skin_separates_strands_from_a_forehead():
    """Texture energy: a smooth ramp is skin-smooth, a field of strands is not."""
    from vrhub.stages.landmark_segment import smooth_like_skin, texture_energy

    rng = np.random.default_rng(3)
    h, w = 60, 120
    img = np.tile(np.linspace(150, 190, w)[None, :, None], (h, 1, 3))  # smooth skin-like ramp
    strands = 90 + 40 * (np.sin(np.arange(w // 2) * 2.1)[None, :] > 0) + rng.normal(0, 6, (h, w // 2))
    img[:, w // 2 :] = strands[..., None]
    img = np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8)
    samples = np.zeros((h, w), bool)
    samples[20:40, 10:30] = True
    smooth = smooth_like_skin(texture_energy(img), samples, 2.0)
    assert smooth[:, 5 : w // 2 - 5].mean() > 0.95
    assert smooth[:, w // 2 + 5 : w - 5].mean() < 0.05


def test_hair_hangs_down_from_the_head():
    """Side-hair candidates are kept only where hair above leads down to them."""
    from vrhub.stages.landmark_segment import hanging_down

    hair = np.zeros((20, 20), bool)
    hair[2:6, 4:9] = True
    cand = np.zeros((20, 20), bool)
    cand[6:15, 7:9] = True  # hangs from the hair
    cand[9:14, 14:17] = True  # an ear-like patch with no hair above it
    out = hanging_down(hair, cand, 5)
    assert out[6:15, 7:9].all()
    assert not out[9:14, 14:17].any()
    assert not (out & ~cand).any()


def test_a_lit_forehead_grows_from_the_forehead_and_stops_at_a_hairline():
    """lit_forehead: skin that fades gradually brighter upward out of the forehead joins it; an
    even, smooth band of hair above a step in lightness does not, nor does smooth skin-like area
    the forehead does not reach."""
    from vrhub.stages.landmark_segment import lit_forehead

    rng = np.random.default_rng(5)
    h, w = 90, 80
    lightness = np.empty((h, w), np.float32)
    # the forehead (its lower band is the seed) lit more and more towards the top, no edge
    lightness[30:] = np.linspace(80.0, 56.0, 60)[:, None]
    lightness[:30] = 45.0  # close-cropped hair: smooth, but a step down in lightness
    lightness[:, 70:] = 62.0  # a smooth patch beside, cut off from the forehead by a wall
    lightness[:, 66:70] = 20.0
    lightness += rng.normal(0.0, 0.2, lightness.shape).astype(np.float32)
    lab = np.zeros((h, w, 3), np.float32)
    lab[:, :, 0] = lightness
    lab[:, :, 1:] = 15.0
    smooth = np.ones((h, w), bool)
    smooth[:, 66:70] = False
    seed = np.zeros((h, w), bool)
    seed[62:88, 5:60] = True
    zone = np.ones((h, w), bool)
    grown = lit_forehead(lab, smooth, seed, zone)
    assert grown[seed].all()
    assert grown[33:58, 5:60].mean() > 0.95  # the lit forehead
    assert grown[:27, 5:60].mean() < 0.02  # the hair above the step
    assert not grown[:, 72:].any()  # not through the wall
    # nothing to grow from: nothing
    assert not lit_forehead(lab, smooth, np.zeros((h, w), bool), zone).any()


@pytest.mark.slow
def test_a_lit_high_forehead_and_a_bald_crown_are_not_hair():
    """S000810's lit forehead and B001275's bald crown continue the forehead's skin above the band
    the smoothness test covers; they were taken for hair (IoU with the outlines 0.723 and 0.579).
    C000537's close grey crop, as smooth as skin, stays hair."""
    pool = annotate_hair.load_polygons(annotate_hair.POOL)
    shared = annotate_hair.load_polygons()
    for rel, polys, floor in (
        ("hair_pool/S000810.jpg", pool, 0.75),
        ("hair_pool/B001275.jpg", pool, 0.65),
        ("faces/congress_C000537.jpg", shared, 0.70),
    ):
        photo, _, seg = observed(rel)
        truth = annotate_hair.rasterise(polys[rel], (photo.width, photo.height))
        assert annotate_hair.iou(seg.hair > 0.5, truth) > floor, rel
