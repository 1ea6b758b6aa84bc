"""The learned hair-attribute stage on real portraits, its model file, and robustness to lighting."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hair_testing import observed, relit_variants

from vrhub.hair.attributes_model import ATTRIBUTE_CLASSES, MODEL_PATH, HairAttributeModel, onnx_providers
from vrhub.hair.features import (
    ABSOLUTE_COLOUR_FEATURES,
    FEATURE_NAMES,
    FEATURES_VERSION,
    hair_colour,
    measure_hair,
)
from vrhub.hair.offline_face import observe_face
from vrhub.pipeline.types import HairAttributes, Photo
from vrhub.stages.landmark_segment import landmark_segment
from vrhub.stages.no_hair import no_hair_attributes, no_hair_model
from vrhub.stages.onnx_hair_attributes import onnx_hair_attributes


def test_model_file_is_small_and_carries_its_provenance():
    assert MODEL_PATH.stat().st_size <= 5 * 1024 * 1024
    meta = json.loads(MODEL_PATH.with_suffix(".json").read_text())
    assert meta["features_version"] == FEATURES_VERSION
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert re.fullmatch(r"[0-9a-f]{64}", meta["data"]["sha256"])
    for attr in ("length", "texture"):
        m = meta["metrics"][attr]
        assert 0 <= m["heldout_balanced_accuracy"] <= 1 and m["heldout_n"] > 50
        assert len(m["heldout_confusion"]["matrix"]) == len(ATTRIBUTE_CLASSES[attr])


def test_model_runs_on_the_best_onnxruntime_provider():
    import onnxruntime as ort

    providers = onnx_providers()
    assert providers[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert providers[0] == "CUDAExecutionProvider"
    model = HairAttributeModel()
    probs = model.predict(np.zeros(len(FEATURE_NAMES), np.float32))
    for attr, classes in ATTRIBUTE_CLASSES.items():
        assert set(probs[attr]) == set(classes)
        assert abs(sum(probs[attr].values()) - 1.0) < 1e-3


def test_colour_free_attributes_do_not_read_the_hair_colour():
    """Length, texture, fringe and baldness are learned without the hair's absolute colour
    statistics (which relighting moves): changing only those features moves no probability of
    theirs, while the colour name does move."""
    meta = json.loads(MODEL_PATH.with_suffix(".json").read_text())
    assert set(meta["colour_free"]) == {"length", "texture", "fringe", "baldness"}
    model = HairAttributeModel()
    x = measure_hair(*observed("hair/congress_C001066.jpg")).vector  # auburn
    y = x.copy()
    for name in ABSOLUTE_COLOUR_FEATURES:
        y[FEATURE_NAMES.index(name)] *= 0.5  # darker and greyer
    px, py = model.predict(x), model.predict(y)
    for attr in meta["colour_free"]:
        assert px[attr] == pytest.approx(py[attr], abs=1e-6), attr
    assert max(abs(px["colour"][c] - py["colour"][c]) for c in px["colour"]) > 0.01


def test_merged_graph_picks_each_attributes_columns():
    """merge_classifier_models(columns=...) feeds each classifier its own feature columns."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from vrhub.hair.attributes_model import merge_classifier_models

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (200, 6)).astype(np.float32)
    a = LogisticRegression().fit(X[:, [4, 1]], X[:, 4] > 0)
    b = LogisticRegression().fit(X, X[:, 0] + X[:, 5] > 0)
    onnx_opts = {"zipmap": False}
    merged = merge_classifier_models(
        {
            "a": to_onnx(a, X[:1, [4, 1]], options=onnx_opts, target_opset={"": 17, "ai.onnx.ml": 3}),
            "b": to_onnx(b, X[:1], options=onnx_opts, target_opset={"": 17, "ai.onnx.ml": 3}),
        },
        6,
        columns={"a": [4, 1]},
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    pa, pb = sess.run(["a_probabilities", "b_probabilities"], {"features": X[:20]})
    assert np.allclose(pa, a.predict_proba(X[:20, [4, 1]]), atol=1e-5)
    assert np.allclose(pb, b.predict_proba(X[:20]), atol=1e-5)


def _attrs(rel: str) -> HairAttributes:
    return onnx_hair_attributes(*observed(rel))


def test_attributes_are_complete_with_confidences():
    a = _attrs("faces/skimage_astronaut_eileen_collins.png")
    assert a.source.startswith("onnx")
    assert a.length in ATTRIBUTE_CLASSES["length"]
    assert a.texture in ATTRIBUTE_CLASSES["texture"]
    assert a.spikiness in ("flat", "tousled", "spiky")
    assert a.fringe in ("none", "partial", "full")
    assert a.parting in ("none", "left", "centre", "right")
    assert a.baldness in ATTRIBUTE_CLASSES["baldness"]
    assert a.headwear in ("none", "hat", "scarf")
    assert len(a.colour_rgb) == 3 and all(0 <= c <= 255 for c in a.colour_rgb)
    for key in ("length", "texture", "spikiness", "fringe", "parting", "baldness", "colour", "headwear"):
        assert 0.0 <= a.confidence[key] <= 1.0, key


def test_bald_head_is_not_given_hair():
    a = _attrs("hair/congress_C000984.jpg")  # labelled bald
    assert a.length in ("bald", "buzz")
    assert a.baldness != "none"


def test_long_hair_is_not_called_short():
    a = _attrs("hair/congress_A000368.jpg")  # labelled long, straight
    assert a.length in ("medium", "long")
    assert a.texture == "straight"


def test_shoulder_length_hair_is_medium():
    for rel in ("hair/congress_C001066.jpg", "hair/congress_R000435.jpg"):  # both labelled medium
        assert _attrs(rel).length == "medium", rel


def test_dark_hair_colour_is_dark_and_grey_is_light():
    dark = _attrs("hair/congress_A000368.jpg")
    grey = _attrs("faces/congress_C000537.jpg")  # short grey hair
    assert sum(dark.colour_rgb) < sum(grey.colour_rgb)


def test_hair_colour_leaves_out_skin_coloured_pixels():
    """Scalp and forehead inside a hair mask do not pull the hair colour towards the skin."""
    import cv2

    def lab(rgb):
        return cv2.cvtColor(np.asarray(rgb, np.uint8)[None], cv2.COLOR_RGB2LAB)[0].astype(np.float32)

    rng = np.random.default_rng(1)
    skin = np.clip(rng.normal((190, 140, 110), 6, (200, 3)), 0, 255).astype(np.uint8)
    grey = np.clip(rng.normal((70, 68, 66), 6, (120, 3)), 0, 255).astype(np.uint8)
    mixed = np.concatenate([skin[:160], grey])  # 57 % of the "hair" is forehead
    colour = np.array(hair_colour(mixed, lab(mixed), lab(skin)))
    assert np.abs(colour - (70, 68, 66)).max() <= 8
    # hair close to the skin's own tone (blonde over light skin) keeps its own colour, not the skin's
    blonde = np.clip(rng.normal((200, 160, 120), 14, (300, 3)), 0, 255).astype(np.uint8)
    colour = np.array(hair_colour(blonde, lab(blonde), lab(skin)))
    assert np.abs(colour - np.median(blonde, axis=0)).max() <= 8
    assert np.abs(colour - np.median(skin, axis=0)).max() > 10
    # plain dark hair: its own median
    colour = np.array(hair_colour(grey, lab(grey), lab(skin)))
    assert np.abs(colour - np.median(grey, axis=0)).max() <= 1


def test_auburn_hair_is_not_read_darker_than_it_is():
    """C001066's auburn bob: the face's skin model half-claims its lighter strands. Leaving out
    every pixel it claimed at all (likelihood 0.3) read the hair as (59, 30, 20), L* 15, near black,
    against L* 29 for the hair in the photo; only clearly claimed pixels are left out now."""
    from vrhub.evaluation.robustness import rgb_to_lab

    a = _attrs("hair/congress_C001066.jpg")
    assert rgb_to_lab(np.array(a.colour_rgb, np.uint8))[0] >= 20.0, a.colour_rgb


def test_close_cropped_grey_hair_is_not_read_as_skin_beige():
    import cv2

    a = _attrs("faces/face_recognition_obama.jpg")  # close-cropped dark grey; the mask takes forehead
    lab = cv2.cvtColor(np.array([[a.colour_rgb]], np.uint8), cv2.COLOR_RGB2LAB)[0, 0].astype(float)
    chroma = float(np.hypot(lab[1] - 128, lab[2] - 128))
    assert chroma < 6 and a.colour_name in ("grey", "black", "dark brown"), (a.colour_rgb, a.colour_name)


def test_a_hat_is_never_guessed_as_bald():
    a = _attrs("faces/congress_W000808.jpg")  # a hat hides the hair
    assert a.length != "bald" and a.baldness != "full"


def test_a_hat_is_reported_as_headwear():
    """The only hat photo (black crown, white brim) is reported as headwear, with a confident score."""
    a = _attrs("faces/congress_W000808.jpg")
    assert a.headwear == "hat"
    assert a.confidence["headwear"] >= 0.8


def test_a_hat_brim_is_not_read_as_spiky_hair():
    """Under a hat the outline is the hat's: its brim and crown gave W000808 'spiky' hair."""
    a = _attrs("faces/congress_W000808.jpg")
    assert a.spikiness == "flat" and a.confidence["spikiness"] <= 0.3


@pytest.mark.slow
def test_the_hat_is_found_under_every_lighting_variant():
    photo, _, _ = observed("faces/congress_W000808.jpg")
    for name, pixels in relit_variants(photo.pixels).items():
        p = Photo(pixels=pixels, name=photo.name)
        f = observe_face(p)
        assert onnx_hair_attributes(p, f, landmark_segment(p, f)).headwear == "hat", name


def _bare_headed_shared_portraits() -> list[str]:
    import csv

    from hair_testing import SHARED_DATA, shared_photo_path

    shared_photo_path("hair/hair_labels.csv")
    with open(SHARED_DATA / "hair" / "hair_labels.csv", newline="") as fh:
        return [r["file"] for r in csv.DictReader(fh) if not r["hair_class"].startswith("occluded")]


@pytest.mark.slow
def test_no_hat_is_reported_on_bare_heads():
    """Bald scalps, white hair, voluminous curls and long dark hair are not headwear (22 portraits)."""
    files = _bare_headed_shared_portraits()
    assert len(files) >= 20
    hats = [rel for rel in files if measure_hair(*observed(rel)).hat_score >= 0.5]
    assert hats == []


ROBUST_PHOTOS = (
    "faces/congress_C001080.jpg",
    "faces/congress_G000571.jpg",
    "hair/congress_A000368.jpg",
    "hair/congress_C001066.jpg",
    "hair/congress_B001231.jpg",
    "faces/congress_C000537.jpg",
)


@pytest.mark.slow
def test_same_attributes_for_relit_variants():
    """Directional light, gamma 0.6 / 1.6 and a warm colour cast keep length, headwear and (for
    hair that has one) texture in at least 80 % of the (photo, variant) pairs (measured: 21 of 24,
    the model before features v2 20; the misses: C000537's grey crop under the light gradient,
    whose mask the gradient shrinks, reads bald, not buzz; G000571 medium -> long under the colour
    cast; A000368 straight -> curly under gamma 1.6). Colour names are not compared: they read
    absolute colour, which gamma changes."""
    agree, total = 0, 0
    for rel in ROBUST_PHOTOS:
        photo, face, seg = observed(rel)
        base = onnx_hair_attributes(photo, face, seg)
        for pixels in relit_variants(photo.pixels).values():
            p = Photo(pixels=pixels, name=photo.name)
            f = observe_face(p)
            a = onnx_hair_attributes(p, f, landmark_segment(p, f))
            same = a.length == base.length and a.headwear == base.headwear
            if base.length not in ("bald", "buzz"):
                same = same and a.texture == base.texture
            agree += same
            total += 1
    assert agree / total >= 0.8, f"{agree}/{total}"


def test_features_are_finite_and_resolution_independent():
    """Features are measured on a face-normalised crop: a 2/3-size copy gives the same hair area.
    (congress_C001066 is a known exception: its GrabCut result flips between two solutions.)"""
    import cv2

    i = FEATURE_NAMES.index("area")
    for rel in ("hair/congress_R000435.jpg", "faces/congress_C000537.jpg"):
        photo, face, seg = observed(rel)
        v = measure_hair(photo, face, seg).vector
        assert v.shape == (len(FEATURE_NAMES),) and np.isfinite(v).all()
        size = (photo.width * 2 // 3, photo.height * 2 // 3)
        small = Photo(pixels=cv2.resize(photo.pixels, size, interpolation=cv2.INTER_AREA))
        f2 = observe_face(small)
        v2 = measure_hair(small, f2, landmark_segment(small, f2)).vector
        assert abs(v2[i] - v[i]) / v[i] < 0.1, rel


def test_no_hair_stages_say_so():
    photo, face, seg = observed("faces/skimage_astronaut_eileen_collins.png")
    a = no_hair_attributes(photo, face, seg)
    assert a.source == "none" and a.confidence == {}
    assert no_hair_model(a, None).is_empty  # type: ignore[arg-type]


@pytest.mark.parametrize("attr", ["length", "texture"])
def test_heldout_metrics_are_recorded_beside_plain_accuracy(attr):
    meta = json.loads(MODEL_PATH.with_suffix(".json").read_text())
    m = meta["metrics"][attr]
    assert "heldout_accuracy" in m and "heldout_balanced_accuracy" in m
    assert attr in meta["shared_portraits"]


def test_colour_name_agrees_with_the_measured_lightness():
    """The name is the most probable one whose lightness range (from the training portraits) holds
    the hair's measured L*: dark hair is not called blonde however the model leans."""
    from vrhub.stages.onnx_hair_attributes import colour_name_from

    meta = json.loads(MODEL_PATH.with_suffix(".json").read_text())
    ranges = meta["colour_lightness"]
    assert ranges["blonde"][0] > ranges["black"][0] and ranges["white"][1] > ranges["black"][1]
    probs = {"blonde": 0.6, "dark_brown": 0.3, "black": 0.1}
    assert colour_name_from(probs, 10.0, ranges) == ("dark_brown", 0.3)
    assert colour_name_from(probs, 45.0, ranges) == ("blonde", 0.6)
    # no name fits: the model's choice stands
    assert colour_name_from(probs, 500.0, ranges) == ("blonde", 0.6)
    assert colour_name_from(probs, 10.0, {}) == ("blonde", 0.6)


def test_only_straight_short_hair_is_spiky():
    """A wavy or curly outline is irregular without spikes; straight short hair with the same
    score is spiky."""
    from vrhub.stages.onnx_hair_attributes import spikiness_from

    thresholds = {"irregularity_scale": 0.01, "upward_scale": 0.1, "tousled": 2.0, "spiky": 3.0}
    assert spikiness_from(0.05, 0.0, thresholds, "short", "straight")[0] == "spiky"
    for texture in ("wavy", "curly", "coily"):
        assert spikiness_from(0.05, 0.0, thresholds, "short", texture)[0] == "tousled"
    assert spikiness_from(0.05, 0.0, thresholds, "medium", "straight")[0] == "tousled"
