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
