"""The albedo bake undoes strong tone curves and colour casts, judged from cues other than the
skin (eye whites, teeth, background, the whole photo), and leaves ordinary photos' skin alone."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from vrhub.evaluation.robustness import albedo_difference, colour_cast, gamma
from vrhub.geometry.colour_constancy import (
    CUE_REFERENCES,
    IDENTITY,
    Cue,
    estimate_tone_correction,
)
from vrhub.geometry.texture import bake_head_texture
from vrhub.pipeline.types import HeadModel, Photo
from vrhub.stages.landmark_head import reconstruct_head
from vrhub.stages.landmark_segment import landmark_segment
from vrhub.stages.mediapipe_detect import detect_face

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FACES = SHARED / "data" / "faces"
PHOTOS = sorted(p for p in FACES.glob("*") if p.suffix.lower() in {".jpg", ".png"}) if FACES.is_dir() else []
needs_photos = pytest.mark.skipif(not PHOTOS, reason="../shared/data/faces is not present")


def _cues_at(g: float = 1.0, gains=(1.0, 1.0, 1.0), face_g: float | None = None) -> list[Cue]:
    """Cues as a photo with tone curve ``value ** g`` and channel gains would show them, if its
    scene were exactly typical; ``face_g`` gives the face cues another curve."""
    out = []
    for name, ref in CUE_REFERENCES.items():
        gg = face_g if face_g is not None and name in ("sclera", "teeth") else g
        rgb = np.clip((np.array(ref.chroma) * ref.luminance) ** gg * np.array(gains), 1e-3, 1.0)
        out.append(Cue(name, float(rgb.mean()), rgb / rgb.mean(), 1.0, 1.0))
    return out


def test_typical_cues_give_no_correction():
    corr = estimate_tone_correction(_cues_at())
    assert corr.gamma == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(corr.gains, 1.0, atol=1e-6)


@pytest.mark.parametrize("g", [0.6, 1.6])
def test_a_tone_curve_every_cue_agrees_on_is_undone(g: float):
    corr = estimate_tone_correction(_cues_at(g))
    # observed = true ** g, so the correction's exponent must be near 1 / g
    assert corr.gamma * g == pytest.approx(1.0, abs=0.08)


def test_a_colour_cast_every_cue_agrees_on_is_mostly_undone():
    cast = np.array([1.15, 1.0, 0.82])
    corr = estimate_tone_correction(_cues_at(gains=tuple(cast)))
    residual = np.log(cast * corr.gains)
    residual -= residual.mean()
    before = np.log(cast) - np.log(cast).mean()
    assert np.abs(residual).max() < 0.6 * np.abs(before).max()


def test_face_and_scene_cues_that_disagree_leave_the_photo_alone():
    # a dark scene (background, image) around a normally exposed face: a dark-skinned person in a
    # dim room must not be brightened
    corr = estimate_tone_correction(_cues_at(g=1.5, face_g=1.0))
    assert corr.gamma == pytest.approx(1.0, abs=0.02)
    assert estimate_tone_correction([]) is IDENTITY


def _build(rgb: np.ndarray, name: str, white_balance: bool = True) -> HeadModel:
    photo = Photo(rgb, name)
    face = detect_face(photo)
    seg = landmark_segment(photo, face)
    head = reconstruct_head(photo, face, seg, texture_size=256)
    if white_balance:
        return head
    baked = bake_head_texture(
        rgb, face.landmarks, head.vertices[:468].astype(np.float64), face.rotation, seg.skin, size=256,
        white_balance=False,
    )  # fmt: skip
    return dataclasses.replace(head, albedo=baked.albedo)


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def _skin_tones() -> dict[str, str]:
    with open(FACES / "labels.csv", newline="") as f:
        return {Path(r["file"]).name: r["skin_tone_coarse"] for r in csv.DictReader(f)}


@needs_photos
@pytest.mark.slow
def test_original_photos_keep_their_skin_tone_dark_medium_and_light():
    """Over every shared photo, the corrected bake of the original differs from the uncorrected
    one by a mean ΔE2000 <= 1.5 over the face, and no photo by more than 5; every skin-tone
    bucket is represented."""
    tones = _skin_tones()
    shifts: dict[str, float] = {}
    for path in PHOTOS:
        rgb = _rgb(path)
        shifts[path.name] = albedo_difference(_build(rgb, path.name, False), _build(rgb, path.name))
    buckets = {tones.get(n, "?").split("-")[0] for n in shifts}
    assert {"dark", "medium", "light"} <= buckets
    assert np.mean(list(shifts.values())) <= 1.5, shifts
    assert max(shifts.values()) <= 5.0, shifts


@needs_photos
@pytest.mark.parametrize("name", ["congress_C000537.jpg", "congress_V000081.jpg", "congress_C001068.jpg"])
def test_gamma_and_cast_variants_come_closer_to_the_original_albedo(name: str):
    """One photo per skin-tone bucket (dark, medium, light): with the correction, the variants'
    albedo is nearer the original's than without it, on average over the variants."""
    rgb = _rgb(FACES / name)
    reference = _build(rgb, name)
    with_corr, without = [], []
    for variant in (gamma(rgb, 0.6), gamma(rgb, 1.6), colour_cast(rgb)):
        with_corr.append(albedo_difference(reference, _build(variant, name)))
        without.append(albedo_difference(_build(rgb, name, False), _build(variant, name, False)))
    assert np.mean(with_corr) < 0.8 * np.mean(without), (with_corr, without)
