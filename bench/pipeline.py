"""Avatar build time per photo and per stage, beside mediapipe's face mesh alone (the floor).

    python -m bench.pipeline [--quick] [PHOTOS...]

Prints a markdown table: median seconds per stage over the photos (warm: models already loaded),
the cold first build, and the bare mediapipe FaceMesh.process call on the same photos as the baseline
no pipeline can beat. Target from the architecture: whole pipeline <= 1.0 s per photo on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from vrhub.photo_io import decode_photo
from vrhub.pipeline.plugins import default_registry
from vrhub.pipeline.run import PipelineError, run_pipeline
from vrhub.pipeline.types import SLOTS, ExportOptions

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


def _mediapipe_alone(photos: list) -> list[float]:
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=5)
    times = []
    for photo in photos:
        t0 = time.perf_counter()
        mesh.process(photo.pixels)
        times.append(time.perf_counter() - t0)
    mesh.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--quick", action="store_true", help="one pass (default: three passes)")
    args = parser.parse_args(argv)
    paths = args.photos or sorted(p for p in SHARED_FACES.glob("*") if p.suffix in {".jpg", ".png"})
    if not paths:
        print("no photos (pass some, or put ../shared/data/faces beside the repo)")
        return 1
    photos = [decode_photo(p.read_bytes(), name=p.name) for p in paths]
    stages = default_registry().select()
    passes = 1 if args.quick else 3

    t0 = time.perf_counter()
    try:
        run_pipeline(photos[0], stages, ExportOptions())
    except PipelineError:
        pass
    cold = time.perf_counter() - t0

    per_stage: dict[str, list[float]] = {slot: [] for slot in SLOTS}
    totals: list[float] = []
    failures: list[str] = []
    for _ in range(passes):
        for photo in photos:
            t0 = time.perf_counter()
            try:
                result = run_pipeline(photo, stages, ExportOptions())
            except PipelineError as exc:
                failures.append(f"{photo.name}: {exc}")
                continue
            totals.append(time.perf_counter() - t0)
            for slot, seconds in result.timings.items():
                per_stage[slot].append(seconds)
    baseline = _mediapipe_alone(photos)

    print(
        f"{len(photos)} photos x {passes} pass(es); stages: "
        + ", ".join(f"{s}={stages[s].name}" for s in SLOTS)
    )
    print()
    print("| stage | median s | max s |")
    print("|---|---:|---:|")
    for slot in SLOTS:
        values = per_stage[slot]
        if values:
            print(f"| {slot} | {statistics.median(values):.3f} | {max(values):.3f} |")
    if totals:
        print(f"| **whole pipeline (warm)** | **{statistics.median(totals):.3f}** | {max(totals):.3f} |")
    print(f"| whole pipeline, first photo (cold: models load) | {cold:.3f} | |")
    print(
        f"| baseline: mediapipe FaceMesh.process alone | {statistics.median(baseline):.3f} | {max(baseline):.3f} |"
    )
    if totals:
        print()
        print(
            f"pipeline / mediapipe-alone ratio (medians): {statistics.median(totals) / statistics.median(baseline):.1f}x;"
            f" target 1.0 s: {'met' if statistics.median(totals) <= 1.0 else 'missed'}"
        )
    for line in sorted(set(failures)):
        print(f"- refused: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
