"""Face likeness and robustness, each beside its baseline measured in the same run.

    python -m bench.face_robustness [--quick] [PHOTOS...] [--video FILE ...]

Table 1, likeness (NME % by inter-ocular distance after a similarity alignment):
  - baseline "photo on a plane": the photo itself, warped by a small similarity (3° rotation,
    92 % scale, shift) and re-encoded as JPEG, re-detected against its own landmarks (issue 7's
    calibration: 0.4-1.0 %);
  - baseline "nearest stranger": the closest other photo's landmarks (2.4-3.3 % in issue 7);
  - the avatar rendered in the photo's pose (with the photo's expression re-applied) and neutral.
Table 2, robustness: the neutral head's face geometry (RMS % of face width) and albedo
(mean ΔE2000 over the face UV island) of every relit variant against the photo's own build,
beside the noise floor (the same photo decoded twice and built again) and the different-person
scale (each head against the nearest other photo's head), and later frames of each video against
its first frame. Goals: geometry <= 1 %, ΔE2000 <= 5, NME <= 1.5 %.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vrhub.evaluation.likeness import detect_landmarks, measure_likeness, nme
from vrhub.evaluation.robustness import (
    RobustnessRow,
    build_head,
    compare,
    relit_variants,
    stranger_baseline,
    video_robustness,
)
from vrhub.photo_io import decode_photo
from vrhub.pipeline.plugins import default_registry
from vrhub.pipeline.run import PipelineError, run_pipeline
from vrhub.pipeline.types import Photo

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def photo_on_a_plane(rgb: np.ndarray) -> np.ndarray:
    """The photo moved by a small similarity and re-encoded as JPEG (quality 90)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 0.92)
    m[:, 2] += (0.02 * w, -0.015 * h)
    warped = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    buf = io.BytesIO()
    Image.fromarray(warped).save(buf, "JPEG", quality=90)
    return np.asarray(Image.open(buf).convert("RGB"))


def _pct(x: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x * 100:.{digits}f}"


def _table(headers: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", nargs="*", type=Path)
    ap.add_argument("--video", action="append", type=Path, default=[])
    ap.add_argument("--quick", action="store_true", help="three photos, one video")
    args = ap.parse_args(argv)
    photos = args.photos or sorted(p for p in (SHARED / "faces").glob("*") if p.suffix in (".jpg", ".png"))
    videos = args.video or sorted((SHARED / "video").glob("*.mpg"))
    if args.quick:
        photos, videos = photos[:3], videos[:1]
    if not photos:
        print("no photos (pass some, or put the shared data next to the repository)")
        return 2
    stages = default_registry().select()

    built = []
    for path in photos:
        photo = decode_photo(path.read_bytes(), name=path.name)
        try:
            result = run_pipeline(photo, stages)
        except PipelineError as exc:
            print(f"skipped {path.name}: {exc}")
            continue
        built.append((path, photo, result))
    all_lm = [r.face.landmarks for _, _, r in built]

    rows = []
    plane_vals, stranger_vals, avatar_vals, neutral_vals = [], [], [], []
    for i, (path, photo, result) in enumerate(built):
        lm = result.face.landmarks
        again = detect_landmarks(photo_on_a_plane(photo.pixels))
        # the warp is a similarity, which NME's alignment removes
        plane = nme(again, lm) if again is not None else float("nan")
        others = [nme(o, lm) for j, o in enumerate(all_lm) if j != i]
        stranger = min(others) if others else float("nan")
        like = measure_likeness(result.avatar, result.face)
        plane_vals.append(plane)
        stranger_vals.append(stranger)
        avatar_vals.append(like.nme)
        neutral_vals.append(like.nme_neutral)
        rows.append((path.name, _pct(plane), _pct(stranger), _pct(like.nme), _pct(like.nme_neutral)))

    def med(v: list[float]) -> float:
        v = [x for x in v if not math.isnan(x)]
        return statistics.median(v) if v else float("nan")

    rows.append(
        (
            "**median**",
            _pct(med(plane_vals)),
            _pct(med(stranger_vals)),
            _pct(med(avatar_vals)),
            _pct(med(neutral_vals)),
        )
    )
    print("### Likeness: NME % (goal <= 1.5 %)\n")
    print(
        _table(
            [
                "photo",
                "baseline: photo on a plane",
                "baseline: nearest stranger",
                "avatar render",
                "avatar neutral",
            ],
            rows,
        )
    )

    rob: list[RobustnessRow] = []
    references = []
    for path, photo, _ in built:
        reference = build_head(photo, stages)[1]
        references.append(reference)
        again = decode_photo(path.read_bytes(), name=path.name)
        rob.append(
            compare(path.name, "baseline: same photo decoded twice", reference, build_head(again, stages)[1])
        )
        for variant, img in relit_variants(photo.pixels).items():
            try:
                other = build_head(Photo(img, path.name), stages)[1]
            except PipelineError as exc:
                rob.append(compare(path.name, variant, reference, None, str(exc)))
                continue
            rob.append(compare(path.name, variant, reference, other))
    for video in videos:
        rob += video_robustness(video, stages)
    # the scale of the metrics between different people, measured on the same builds
    rob += stranger_baseline([p.name for p, _, _ in built], references)

    by: dict[str, list[RobustnessRow]] = {}
    for r in rob:
        by.setdefault("video frames" if r.variant.startswith("frame ") else r.variant, []).append(r)

    summary = []
    for key, rs in by.items():
        g = [r.geometry for r in rs if not math.isnan(r.geometry)]
        d = [r.albedo_de for r in rs if not math.isnan(r.albedo_de)]
        summary.append(
            (
                key,
                len(rs),
                _pct(med(g), 3),
                _pct(max(g), 3) if g else "n/a",
                f"{med(d):.2f}",
                f"{max(d):.2f}" if d else "n/a",
            )
        )
    print("\n### Robustness (goals: geometry <= 1 % of face width, albedo ΔE2000 <= 5)\n")
    print(
        _table(
            ["variant", "n", "geometry median %", "geometry worst %", "ΔE2000 median", "ΔE2000 worst"],
            summary,
        )
    )
    print()
    print(
        _table(
            ["source", "variant", "geometry %", "ΔE2000", "note"],
            [
                (
                    r.source,
                    r.variant,
                    _pct(r.geometry, 3),
                    "n/a" if math.isnan(r.albedo_de) else f"{r.albedo_de:.2f}",
                    r.note,
                )
                for r in rob
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
