"""Rig and export time (fast path against the original reference path), rig build time against
the landmark basis, and GLB size per level of detail, on heads the real pipeline builds from the
shared photos.

Baselines measured in the same run: for speed, the rig and export stages' original code paths
(``reference=True``: no per-process topology caches, per-target normal recomputation through a
sparse incidence matrix, pygltflib's JSON round trip), timed alternately with the fast paths on
the same heads, warm (the caches filled by a first call), so both see the same machine load;
for rig time, the 468-landmark blendshape basis alone (what the tracking solver uses), so the
table shows what the full head (skin weights, jaw smoothing, every vertex) adds; for size, the
same GLB with dense morph targets (every vertex stored), so the table shows what sparse targets
save. The machine's load average is printed with the timings: on a shared machine quote the
medians and the ratios.

    python bench/rig_export.py [--photos N] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
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


def fast_vs_reference(heads: list, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds of the rig and the default export (GLB, lod high, 1024 texture), fast
    and reference paths alternating, ``repeats`` times per head, after one warm-up call each."""
    times: dict[str, dict[str, list[float]]] = {}

    def run(key: str, fn, *args, **kw) -> None:
        w0, c0 = time.perf_counter(), time.process_time()
        fn(*args, **kw)
        w1, c1 = time.perf_counter(), time.process_time()
        entry = times.setdefault(key, {"wall": [], "cpu": []})
        entry["wall"].append(w1 - w0)
        entry["cpu"].append(c1 - c0)

    options = ExportOptions()
    for head, hair in heads:
        avatar = procedural_rig(head, hair)
        for reference in (True, False):  # warm: caches, imports, encoder tables
            procedural_rig(head, hair, reference=reference)
            gltf_export(avatar, options, reference=reference)
        for _ in range(repeats):
            for reference in (True, False):
                tag = "reference" if reference else "fast"
                run(f"rig {tag}", procedural_rig, head, hair, reference=reference)
                run(f"export {tag}", gltf_export, avatar, options, reference=reference)
    return times


def print_comparison(times: dict[str, dict[str, list[float]]]) -> None:
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(
        f"{'stage':24s} {'reference ms':>13s} {'fast ms':>9s} {'ratio':>7s}"
        f" {'ref CPU ms':>11s} {'fast CPU ms':>12s} {'CPU ratio':>10s}"
    )
    for stage in ("rig", "export"):
        ref, fast = times[f"{stage} reference"], times[f"{stage} fast"]
        rw, fw = statistics.median(ref["wall"]), statistics.median(fast["wall"])
        rc, fc = statistics.median(ref["cpu"]), statistics.median(fast["cpu"])
        label = "rig (procedural)" if stage == "rig" else "export (GLB high, 1024)"
        print(
            f"{label:24s} {rw * 1000:13.1f} {fw * 1000:9.1f} {rw / fw:6.1f}x"
            f" {rc * 1000:11.1f} {fc * 1000:12.1f} {rc / fc:9.1f}x"
        )
    both_ref = [
        a + b for a, b in zip(times["rig reference"]["wall"], times["export reference"]["wall"], strict=True)
    ]
    both_fast = [a + b for a, b in zip(times["rig fast"]["wall"], times["export fast"]["wall"], strict=True)]
    rw, fw = statistics.median(both_ref), statistics.median(both_fast)
    print(f"{'rig + export':24s} {rw * 1000:13.1f} {fw * 1000:9.1f} {rw / fw:6.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per head and path")
    ap.add_argument("--speed-only", action="store_true", help="only the fast/reference table")
    args = ap.parse_args()
    photos = face_photos()[: args.photos]
    if not photos:
        print("../shared/data/faces is absent")
        return 1
    heads = [pipeline_head(name) for name in photos]
    print(f"fast path against the reference path: {len(photos)} photos x {args.repeats} runs, warm")
    print_comparison(fast_vs_reference(heads, args.repeats))
    if args.speed_only:
        return 0
    print()
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
            dense = gltf_export(avatar, ExportOptions(), reference=True)  # the path sparse_vec3 writes
            sizes["high, dense targets"].append(len(dense.files["glb"]))
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
