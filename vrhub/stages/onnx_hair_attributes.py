"""Hair attributes from a learned ONNX model over image features (slot ``hair_attributes``, name ``onnx``).

- length, texture, fringe, parting, baldness, colour name: class probabilities from
  ``vrhub/models/hair_attributes.onnx`` (trained by ``scripts/train_hair_attributes.py`` on the
  hair_pool portraits; metrics in ``hair_attributes.json``) over ``vrhub.hair.features``.
- colour_rgb: the median colour of the confident hair pixels.
- fringe: the model says whether there is one; the measured forehead coverage says partial or full.
- parting: the labels use the viewer's side; HairAttributes uses the subject's own side (left = +X
  of the avatar), so viewer-left becomes "right". Low-reliability labels: treat with care.
- spikiness (no labels exist): a rule over silhouette irregularity of the hair outline and the share of
  strands pointing up on the scalp, with thresholds at the 80th / 95th percentile of the pool
  (stored in the model's JSON); only hair shorter than medium can be tousled or spiky.
- headwear (no labels exist): a rule (``features._hat_score``: covering much wider than a head and of a
  colour no hair has, or a brim: two sharply separated tone layers on top of the head, one of them a
  smooth band far wider than the skull). When headwear is reported, the head is never called bald: length falls back to
  "short" with a low confidence.
"""

from __future__ import annotations

import numpy as np

from vrhub import hookimpl
from vrhub.hair.attributes_model import default_model
from vrhub.hair.features import FEATURE_NAMES, FEATURES_VERSION, measure_hair
from vrhub.pipeline.types import FaceObservation, HairAttributes, Photo, Segmentation

VIEWER_TO_SUBJECT = {"left": "right", "right": "left", "centre": "centre", "none": "none"}
COLOUR_NAMES = {"dark_brown": "dark brown", "light_brown": "light brown"}


def _best(probs: dict[str, float]) -> tuple[str, float]:
    name = max(probs, key=probs.get)
    return name, float(probs[name])


def colour_name_from(
    probs: dict[str, float], lightness: float, ranges: dict[str, list[float]]
) -> tuple[str, float]:
    """The most probable colour name whose lightness range holds the hair's measured lightness.

    ranges : class -> [low, high] median L* of that class's training portraits (2nd-98th
    percentile, written by the training script); a class without a range always qualifies, and
    when none qualifies the most probable name is kept. The model reads the colour among other
    cues, and without this check named dark brown hair (L* 15) blonde."""
    for name in sorted(probs, key=probs.get, reverse=True):
        low, high = ranges.get(name, (-np.inf, np.inf))
        if low <= lightness <= high:
            return name, float(probs[name])
    return _best(probs)


def spikiness_from(
    irregularity: float, upward: float, thresholds: dict[str, float], length: str, texture: str = "straight"
) -> tuple[str, float]:
    """flat / tousled / spiky from the outline irregularity and upward strands; returns (class, confidence).

    Spiky needs short or buzz hair that is straight (spikes are straight strands standing up; a
    wavy, curly or coily outline is irregular without spikes: L000397's short wavy curls read
    spiky); bald heads are flat.
    """
    if length == "bald":
        return "flat", 1.0
    score = irregularity / max(thresholds.get("irregularity_scale", 0.01), 1e-6) + upward / max(
        thresholds.get("upward_scale", 0.1), 1e-6
    )
    tousled, spiky = thresholds.get("tousled", 2.0), thresholds.get("spiky", 3.0)
    if length not in ("short", "buzz") or texture != "straight":
        spiky = float("inf")
    if score >= spiky:
        return "spiky", min(1.0, 0.5 + (score - spiky) / max(spiky, 1e-6))
    if score >= tousled:
        return "tousled", min(1.0, 0.5 + min(score - tousled, spiky - score) / max(tousled, 1e-6))
    return "flat", min(1.0, 0.5 + (tousled - score) / max(tousled, 1e-6))


def onnx_hair_attributes(photo: Photo, face: FaceObservation, segmentation: Segmentation) -> HairAttributes:
    """Learned hair attributes (ONNX model over hair features) plus measured colour, spikiness, headwear."""
    m = measure_hair(photo, face, segmentation)
    model = default_model()
    probs = model.predict(m.vector)
    conf: dict[str, float] = {}
    length, conf["length"] = _best(probs["length"])
    texture, conf["texture"] = _best(probs["texture"])
    baldness, conf["baldness"] = _best(probs["baldness"])
    colour, conf["colour"] = colour_name_from(
        probs["colour"], float(m.vector[FEATURE_NAMES.index("L_p50")]), model.meta.get("colour_lightness", {})
    )
    parting_viewer, conf["parting"] = _best(probs["parting"])
    p_fringe = probs["fringe"].get("yes", 0.0)
    if p_fringe >= 0.5:
        fringe = "full" if m.fringe_coverage >= 0.55 else "partial"
        conf["fringe"] = p_fringe
    else:
        fringe = "none"
        conf["fringe"] = 1.0 - p_fringe
    if length == "bald":
        baldness = "full"
    elif baldness == "full":
        baldness = "crown_or_top"
    headwear = "hat" if m.hat_score >= 0.5 else "none"
    conf["headwear"] = m.hat_score if headwear == "hat" else 1.0 - m.hat_score
    if headwear != "none":
        # the hair is hidden: never report a covered head as bald
        if length in ("bald", "buzz"):
            length, conf["length"] = "short", 0.2
        baldness, conf["baldness"] = "none", 0.2
        conf["texture"] = min(conf["texture"], 0.3)
    thresholds = model.meta.get("spikiness", {})
    spikiness, conf["spikiness"] = spikiness_from(
        m.silhouette_irregularity, m.upward_strands, thresholds, length, texture
    )
    if headwear != "none":
        # the outline and the strands on top are the hat's (a cowboy hat's brim read as spikes)
        spikiness, conf["spikiness"] = "flat", 0.3
    return HairAttributes(
        length=length,
        texture=texture,
        spikiness=spikiness,
        fringe=fringe,
        parting=VIEWER_TO_SUBJECT[parting_viewer],
        baldness=baldness,
        colour_rgb=m.colour_rgb,
        colour_name=COLOUR_NAMES.get(colour, colour),
        headwear=headwear,
        hairline=None if headwear != "none" or m.hairline is None else round(m.hairline, 4),
        confidence={k: round(float(v), 4) for k, v in conf.items()},
        source=f"onnx-features-v{FEATURES_VERSION}",
    )


@hookimpl
def register_stages(register) -> None:
    register(
        "hair_attributes",
        "onnx",
        onnx_hair_attributes,
        description="learned ONNX classifier over hair image features (length, texture, fringe, parting, "
        "baldness, colour) + measured colour, spikiness and headwear rules",
    )
