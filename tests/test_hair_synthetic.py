"""scripts/render_hair_synthetic.py: exact labels, identities from the training split only, and a
render of one avatar that is a portrait the face detector accepts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hair_testing import SHARED_DATA, shared_photo_path

from vrhub.hair.attributes_model import ATTRIBUTE_CLASSES
from vrhub.hair.styles import STYLE_NAMES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "render_hair_synthetic", ROOT / "scripts" / "render_hair_synthetic.py"
)
synth = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = synth  # dataclasses look their module up while the file executes
_spec.loader.exec_module(synth)


def test_every_rendered_style_is_a_library_style_with_a_pool_label():
    assert set(synth.STYLE_LABELS) <= set(STYLE_NAMES)
    for style, (length, texture) in synth.STYLE_LABELS.items():
        assert length in ATTRIBUTE_CLASSES["length"], style
        assert texture in ATTRIBUTE_CLASSES["texture"] or (texture == "n/a" and length in ("bald", "buzz"))
        assert length in style or (style == "spiky_short" and length == "short")


@pytest.mark.parametrize("style", list(synth.STYLE_LABELS))
def test_labels_follow_from_the_drawn_variant(style):
    for seed in range(12):
        v = synth.draw_variant(style, seed)
        row = synth.labels_of(v)
        assert (row["length"], row["texture"]) == synth.STYLE_LABELS[style]
        assert row["colour"] in ATTRIBUTE_CLASSES["colour"]
        assert row["fringe"] == ("yes" if v.fringe in ("partial", "full") else "no")
        assert row["baldness"] in ATTRIBUTE_CLASSES["baldness"]
        # the library parts on the subject's own side, the pool labels the viewer's side
        assert row["parting"] == {"left": "right", "right": "left"}.get(v.parting, v.parting)
        if style in ("bald", "buzz"):
            assert v.fringe == "none" and v.parting == "none"
        assert (row["baldness"] == "full") == (style == "bald")


def test_identities_come_from_the_training_split_only():
    if not (SHARED_DATA / "hair_pool" / "labels.csv").exists():
        pytest.skip("../shared/data/hair_pool is not present")
    from train_hair_attributes import held_out_split, pool_labels

    rows = pool_labels(SHARED_DATA)
    held = {rows[i]["file"] for i in held_out_split(rows)}
    picked = synth.pick_identities(SHARED_DATA, 40, synth.SEED)
    assert picked and not set(picked) & held
    labels = {r["file"]: r for r in rows}
    assert all(labels[f]["length"] in ("short", "buzz", "bald") for f in picked)


def test_a_render_is_a_portrait_the_face_detector_accepts():
    from vrhub.hair.offline_face import load_photo, observe_face
    from vrhub.pipeline.types import Photo

    photo = load_photo(shared_photo_path("hair_pool/M000312.jpg"))
    ident = synth.make_identity(photo)
    assert ident is not None
    variant = synth.draw_variant("long_wavy", 3)
    img = synth.render_variant(ident, variant, 3)
    assert img.dtype == np.uint8 and img.shape == (photo.height, photo.width, 3)
    face = observe_face(Photo(pixels=img, name="synthetic.png"))
    assert face is not None
    # the rendered face sits where the source face was (small yaw/pitch only)
    assert np.allclose(face.bbox, ident.face.bbox, atol=0.08 * photo.width)
    # long hair is drawn beside the jaw, where the source (short-haired) photo shows backdrop
    lm = ident.face.landmarks
    y, x = int(lm[152, 1]), int(lm[:, 0].min())
    patch = np.s_[y - 30 : y, max(0, x - 25) : x - 5]
    diff = np.abs(img[patch].astype(int) - ident.backdrop[patch].astype(int)).sum(2)
    assert (diff > 40).mean() > 0.3
