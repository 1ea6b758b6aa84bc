"""Does the avatar's hair show the photo's hair colour? Rendered hair against the photo, per portrait.

    .venv/bin/python scripts/hair_colour_match.py

For every shared portrait with hair (../shared/data/faces and /hair): the default pipeline builds
the avatar, the evaluation renderer draws it in the photo's pose (the same render as the likeness
measure), and the median colour of the pixels that are hair both in the photo's hair mask and in the
render (hair layer) is compared: CIEDE2000 and the lightness difference L*(render) - L*(photo).
Prints one row per photo and the median ΔE / mean ΔL*.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    from vrhub.evaluation.render import render_in_photo_pose
    from vrhub.evaluation.robustness import ciede2000, rgb_to_lab
    from vrhub.hair.offline_face import load_photo
    from vrhub.pipeline.plugins import default_registry
    from vrhub.pipeline.run import run_pipeline
    from vrhub.stages.landmark_segment import landmark_segment

    paths = sorted(glob.glob(str(DATA / "faces" / "*.[jp][pn]g"))) + sorted(
        glob.glob(str(DATA / "hair" / "*.jpg"))
    )
    stages = default_registry().select()
    des, dls = [], []
    print(f"{'photo':<42} {'hair rgb':>16} {'L* photo':>9} {'L* render':>9} {'ΔE2000':>7}")
    for p in paths:
        result = run_pipeline(load_photo(p), stages)
        photo = result.photo  # the face's landmarks are in this one's pixels (turned upright if needed)
        avatar = result.avatar
        if avatar.hair.is_empty:
            continue
        seg = landmark_segment(photo, result.face)
        rendering = render_in_photo_pose(avatar, result.face, avatar.head.expression_removed)
        both = (seg.hair > 0.5) & (rendering.layer_ids == 1)
        if both.sum() < 50:
            continue
        a = rgb_to_lab(np.median(photo.pixels[both], axis=0).astype(np.uint8))
        b = rgb_to_lab(np.median(rendering.image[both], axis=0).astype(np.uint8))
        de = float(ciede2000(a, b))
        des.append(de)
        dls.append(float(b[0] - a[0]))
        rel = str(Path(p).relative_to(DATA))
        print(f"{rel:<42} {str(tuple(result.attributes.colour_rgb)):>16} {a[0]:9.1f} {b[0]:9.1f} {de:7.1f}")
    print(
        f"{len(des)} portraits: median ΔE2000 {np.median(des):.2f}, mean ΔL* (render - photo) {np.mean(dls):+.1f}"
    )


if __name__ == "__main__":
    main()
