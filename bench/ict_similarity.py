"""Compare the procedural ARKit shapes with ICT-FaceKit's artist-made shapes (test/bench helper).

ICT's neutral face is registered to our landmarks (similarity ICP of the 468 landmarks onto
ICT's narrow face area), each landmark takes its nearest ICT vertex, and per shape we compare
displacement directions on the landmarks that move in ICT (|d| >= 20 % of its largest):
the |d_ICT|-weighted mean cosine. ICT data is read from ../shared and never shipped.

    python bench/ict_similarity.py [ICT_NPZ]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from vrhub.geometry.blendshapes import landmark_blendshape_basis
from vrhub.geometry.canonical_face import load_canonical_face
from vrhub.pipeline.types import ARKIT_BLENDSHAPES

DEFAULT_NPZ = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ict_facekit" / "ict_face.npz"


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """s, R, t minimising |s R src + t - dst|."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    r = u @ fix @ vt
    s = float((sv * np.diag(fix)).sum() / (a**2).sum())
    return s, r, md - s * r @ ms


def register(ours: np.ndarray, ict_face: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ICT face vertex for each of our landmarks after similarity ICP, and the rotation
    taking ICT directions into our frame. ours: (468, 3); ict_face: (k, 3) same units/axes."""
    tree = cKDTree(ict_face)
    # start: match nose tips and eye-corner spans
    s = np.ptp(ict_face[:, 0]) / np.ptp(ours[:, 0]) * 0.9
    r = np.eye(3)
    t = ict_face[np.argmax(ict_face[:, 2])] - s * ours[4]
    for _ in range(iterations):
        moved = s * ours @ r.T + t
        _, nn = tree.query(moved)
        s, r, t = _similarity(ours, ict_face[nn])
    _, nn = tree.query(s * ours @ r.T + t)
    return nn, r


def ict_similarity(
    npz: Path = DEFAULT_NPZ, landmarks_m: np.ndarray | None = None
) -> dict[str, tuple[float, float]]:
    """shape -> (weighted mean cosine, global cosine) for the ARKit shapes ICT has."""
    data = np.load(npz)
    lo, hi = data["part_vertex_range"][list(data["part_names"]).index("narrow_face_area")]
    neutral = data["neutral_vertices"].astype(np.float64)
    face = neutral[lo:hi]
    lm = load_canonical_face().vertices * 0.01 if landmarks_m is None else landmarks_m
    nn, rot = register(lm * 100.0, face)
    ours = landmark_blendshape_basis(lm).astype(np.float64)
    basis = data["expression_basis"]
    out = {}
    for k, name in enumerate(ARKIT_BLENDSHAPES):
        idx = [i for i in data["arkit52_to_expression_idx"][k] if i >= 0]
        if not idx:
            continue
        d_ict = sum(basis[i, lo:hi].astype(np.float64) for i in idx)[nn] @ rot  # into our frame
        d_our = ours[k]
        mag = np.linalg.norm(d_ict, axis=1)
        mask = mag >= 0.2 * mag.max()
        a, b = d_ict[mask], d_our[mask]
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cos = np.where(nb > 1e-12, (a * b).sum(1) / np.maximum(na * nb, 1e-24), 0.0)
        weighted = float((na * cos).sum() / na.sum())
        glob = float((a * b).sum() / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-24))
        out[name] = (weighted, glob)
    return out


def main() -> int:
    npz = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_NPZ
    result = ict_similarity(npz)
    print(f"{'shape':22s} {'mean cos':>9s} {'global':>7s}")
    for name, (w, g) in result.items():
        print(f"{name:22s} {w:9.2f} {g:7.2f}")
    vals = np.array([w for w, _ in result.values()])
    print(f"{'mean':22s} {vals.mean():9.2f}   shapes >= 0.7: {(vals >= 0.7).sum()}/{len(vals)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
