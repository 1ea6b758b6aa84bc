"""Hair stage timings on the shared portraits, beside the 'none' stages measured in the same run.

    .venv/bin/python bench/hair_stages.py      (or python -m bench.hair_stages; argv is ignored)

Prints median and max milliseconds per stage over the photos in ../shared/data/faces and /hair:
segment (landmarks), hair_attributes (onnx vs none), hair_model (procedural vs none). Detect and
reconstruct run once per photo to give the stages their inputs (not timed here).
"""

from __future__ import annotations

import glob
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    from vrhub.hair.offline_face import load_photo, observe_face
    from vrhub.stages.landmark_head import reconstruct_head
    from vrhub.stages.landmark_segment import landmark_segment
    from vrhub.stages.no_hair import no_hair_attributes, no_hair_model
    from vrhub.stages.onnx_hair_attributes import onnx_hair_attributes
    from vrhub.stages.procedural_hair import procedural_hair

    paths = sorted(glob.glob(str(DATA / "faces" / "*.[jp][pn]g"))) + sorted(
        glob.glob(str(DATA / "hair" / "*.jpg"))
    )
    times: dict[str, list[float]] = {}

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        times.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
        return out

    # warm-up: load the models once
    p0 = load_photo(paths[0])
    f0 = observe_face(p0)
    s0 = landmark_segment(p0, f0)
    procedural_hair(onnx_hair_attributes(p0, f0, s0), reconstruct_head(p0, f0, s0))
    for path in paths:
        photo = load_photo(path)
        face = observe_face(photo)
        seg = timed("segment: landmarks", landmark_segment, photo, face)
        head = reconstruct_head(photo, face, seg)
        attrs = timed("hair_attributes: onnx", onnx_hair_attributes, photo, face, seg)
        timed("hair_attributes: none (baseline)", no_hair_attributes, photo, face, seg)
        timed("hair_model: procedural", procedural_hair, attrs, head)
        timed("hair_model: none (baseline)", no_hair_model, attrs, head)
    print(f"{len(paths)} photos")
    print(f"{'stage':<36}{'median ms':>10}{'max ms':>10}")
    for name, t in times.items():
        print(f"{name:<36}{np.median(t):>10.1f}{np.max(t):>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
