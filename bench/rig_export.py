"""Rig build time and GLB size per level of detail, on heads the real pipeline builds from the
shared photos.

Baselines measured in the same run: for time, the 468-landmark blendshape basis alone (what the
tracking solver uses), so the table shows what the full head (skin weights, jaw smoothing, every
vertex) adds; for size, the same GLB with dense morph targets (every vertex stored), so the table
shows what sparse targets save.

    python bench/rig_export.py [--photos N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from head_fixture import face_photos, pipeline_head  # noqa: E402

from vrhub.export import gltf_writer  # noqa: E402
from vrhub.geometry.blendshapes import landmark_blendshape_basis  # noqa: E402
from vrhub.pipeline.types import ExportOptions  # noqa: E402
from vrhub.stages.gltf_export import gltf_export  # noqa: E402
from vrhub.stages.procedural_rig import procedural_rig  # noqa: E402


def timed(fn, repeats: int = 3) -> float:
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return min(best)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=4)
    args = ap.parse_args()
    photos = face_photos()[: args.photos]
    if not photos:
        print("../shared/data/faces is absent")
        return 1
    rig_t, basis_t, verts = [], [], []
    sizes: dict[str, list[int]] = {k: [] for k in ("high", "medium", "low", "high, dense targets", "vrm")}
    for name in photos:
        head, hair = pipeline_head(name)
        verts.append(len(head.vertices))
        rig_t.append(timed(lambda head=head, hair=hair: procedural_rig(head, hair)))
        basis_t.append(timed(lambda head=head: landmark_blendshape_basis(head.vertices[:468])))
        avatar = procedural_rig(head, hair)
        for lod in ("high", "medium", "low"):
            sizes[lod].append(len(gltf_export(avatar, ExportOptions(lod=lod)).files["glb"]))
        sizes["vrm"].append(len(gltf_export(avatar, ExportOptions(formats=("vrm",))).files["vrm"]))
        original = gltf_writer.GlbBuilder.sparse_vec3
        try:  # baseline: dense targets (tolerance below any delta keeps every row)
            gltf_writer.GlbBuilder.sparse_vec3 = lambda self, dense, tolerance=0.0, original=original: (
                original(self, dense, -1.0)
            )
            sizes["high, dense targets"].append(len(gltf_export(avatar, ExportOptions()).files["glb"]))
        finally:
            gltf_writer.GlbBuilder.sparse_vec3 = original
    print(f"{len(photos)} photos, head vertices median {int(np.median(verts))}")
    print(f"{'rig (52 ARKit + 15 visemes, skin)':40s} median {statistics.median(rig_t) * 1000:7.1f} ms")
    print(f"{'baseline: 468-landmark basis only':40s} median {statistics.median(basis_t) * 1000:7.1f} ms")
    print()
    print(f"{'file':24s} {'median MB':>10s} {'max MB':>8s}")
    for key, values in sizes.items():
        print(f"{key:24s} {statistics.median(values) / 1e6:10.2f} {max(values) / 1e6:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
