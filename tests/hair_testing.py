"""Shared helpers of the hair tests: real photos through the real detect / segment / reconstruct stages."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from gltf_testing import glb_json, validate_glbs  # noqa: F401  (re-exported for the hair tests)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_photo_path(rel: str) -> Path:
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"{p} is not present (../shared/data)")
    return p


@functools.lru_cache(maxsize=32)
def observed(rel: str):
    """(photo, face, segmentation) of a shared photo, through detect + the landmarks segment stage."""
    from vrhub.hair.offline_face import load_photo, observe_face
    from vrhub.stages.landmark_segment import landmark_segment

    photo = load_photo(shared_photo_path(rel))
    face = observe_face(photo)
    assert face is not None, rel
    return photo, face, landmark_segment(photo, face)


@functools.lru_cache(maxsize=4)
def reconstructed_head(rel: str = "faces/skimage_astronaut_eileen_collins.png"):
    """The product's reconstructed HeadModel of a shared photo (landmark_head stage)."""
    from vrhub.stages.landmark_head import reconstruct_head

    photo, face, seg = observed(rel)
    return reconstruct_head(photo, face, seg)


def relit_variants(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The lighting variants of the robustness test: directional gradient, gamma 0.6 / 1.6, colour cast."""
    f = pixels.astype(np.float32) / 255.0
    w = f.shape[1]
    out = {
        "gradient": f * np.linspace(0.6, 1.15, w, dtype=np.float32)[None, :, None],
        "gamma_0.6": f**0.6,
        "gamma_1.6": f**1.6,
        "warm_cast": f * np.array([1.1, 1.0, 0.88], np.float32),
    }
    return {k: (np.clip(v, 0, 1) * 255).astype(np.uint8) for k, v in out.items()}
