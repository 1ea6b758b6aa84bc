"""The whole builtin pipeline on a real photo: every slot runs, is timed, and the analysis reaches the export."""

from __future__ import annotations

import json
from pathlib import Path

import pygltflib
import pytest

from vrhub.photo_io import decode_photo
from vrhub.pipeline.plugins import default_registry
from vrhub.pipeline.run import run_pipeline
from vrhub.pipeline.types import SLOTS, ExportOptions

PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "congress_G000571.jpg"


@pytest.fixture(scope="module")
def result():
    if not PHOTO.exists():
        pytest.skip("shared data not present")
    photo = decode_photo(PHOTO.read_bytes(), name=PHOTO.name)
    progress: list[tuple[str, float]] = []
    out = run_pipeline(
        photo, default_registry().select(), ExportOptions(), progress=lambda s, f: progress.append((s, f))
    )
    return out, progress


def test_every_slot_runs_in_order_and_is_timed(result) -> None:
    out, progress = result
    assert list(out.timings) == list(SLOTS)
    assert all(t >= 0 for t in out.timings.values())
    assert [s for s, _ in progress] == [*SLOTS, "done"]
    fractions = [f for _, f in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert out.stages == default_registry().defaults


def test_hair_analysis_is_recorded_in_the_glb(result) -> None:
    out, _ = result
    assert out.avatar.attributes["hair"]["length"] == out.attributes.length
    glb = pygltflib.GLTF2.load_from_bytes(out.files["glb"])
    extras = glb.asset.extras["vrhub"]
    hair = extras["attributes"]["hair"]
    assert hair["source"] == out.attributes.source
    json.dumps(hair)  # JSON-safe


def test_a_sideways_photo_is_turned_upright_and_said_so() -> None:
    """A photo with no EXIF orientation that shows the face on its side: the stages after detect get
    the photo turned upright (segmentation and hair read "up" as the image's up), and the warnings
    and the result's photo say so."""
    import numpy as np

    from vrhub.pipeline.run import upright_turns

    photo = _sideways_photo()
    out = run_pipeline(photo, default_registry().select())
    assert out.photo is not None and out.photo.pixels.shape == photo.pixels.shape[1::-1] + (3,)
    assert upright_turns(out.face) == 0 and abs(out.face.yaw_pitch_roll[2]) < 30
    assert any("turned 90 degrees clockwise" in w for w in out.warnings)
    lm = out.face.landmarks
    assert lm[152, 1] > lm[10, 1]  # chin below the forehead in the photo the stages saw
    assert np.asarray(out.avatar.head.vertices).shape[0] > 0


def _sideways_photo():
    import numpy as np

    from vrhub.pipeline.types import Photo

    if not PHOTO.exists():
        pytest.skip("shared data not present")
    upright = decode_photo(PHOTO.read_bytes(), name=PHOTO.name)
    return Photo(np.ascontiguousarray(np.rot90(upright.pixels)), name="sideways")  # anticlockwise


def test_a_hat_is_named_in_the_warnings() -> None:
    hat = PHOTO.parent / "congress_W000808.jpg"  # the shared photo with a hat
    if not hat.exists():
        pytest.skip("shared data not present")
    out = run_pipeline(decode_photo(hat.read_bytes(), name=hat.name), default_registry().select())
    assert out.attributes.headwear == "hat"
    assert any(w.startswith("hat: ") and "guessed" in w for w in out.warnings), out.warnings
