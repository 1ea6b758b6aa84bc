"""Contact sheet of hair attributes and hairstyles on the shared portraits.

    .venv/bin/python scripts/hair_contact_sheet.py [OUT.png]   (default test-artifacts/hair_contact_sheet.png)

One row per photo: the photo with the hair mask outlined, the avatar built by the default pipeline
(front and three-quarter view, drawn by vrhub.hair.preview with the head's skin tone), and the hair
attributes with their confidences. Also prints the attributes and the per-stage timings.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    from vrhub.hair.offline_face import load_photo
    from vrhub.hair.preview import render
    from vrhub.pipeline.plugins import default_registry
    from vrhub.pipeline.run import PipelineError, StageFailed, run_pipeline

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "test-artifacts" / "hair_contact_sheet.png"
    paths = sorted(glob.glob(str(DATA / "faces" / "*.[jp][pn]g"))) + sorted(
        glob.glob(str(DATA / "hair" / "*.jpg"))
    )
    stages = default_registry().select()
    rows = []
    T = 200
    for p in paths:
        photo = load_photo(p)
        try:
            r = run_pipeline(photo, stages)
        except (PipelineError, StageFailed) as exc:
            print(Path(p).name, "failed:", exc)
            continue
        a = r.attributes
        hair = r.avatar.hair
        conf = a.confidence
        text = [
            Path(p).name[:30],
            f"length {a.length} ({conf.get('length', 0):.2f})",
            f"texture {a.texture} ({conf.get('texture', 0):.2f})",
            f"spikiness {a.spikiness} ({conf.get('spikiness', 0):.2f})",
            f"fringe {a.fringe} ({conf.get('fringe', 0):.2f})",
            f"parting {a.parting} ({conf.get('parting', 0):.2f})",
            f"baldness {a.baldness} ({conf.get('baldness', 0):.2f})",
            f"colour {a.colour_name} {a.colour_rgb}",
            f"headwear {a.headwear} ({conf.get('headwear', 0):.2f})",
            f"style {hair.style[:28]}",
            f"{len(hair.triangles)} triangles",
        ]
        print(" | ".join(text), {k: round(v * 1000) for k, v in r.timings.items()})
        scale = T / photo.height
        thumb = cv2.resize(photo.pixels, (max(1, int(photo.width * scale)), T), interpolation=cv2.INTER_AREA)
        thumb = thumb[:, : int(T * 0.9)] if thumb.shape[1] > T * 0.9 else thumb
        thumb = np.pad(thumb, ((0, 0), (0, int(T * 0.9) - thumb.shape[1]), (0, 0)), constant_values=235)
        head = r.avatar.head
        views = [render(head, hair, T, yaw) for yaw in (0.0, 45.0, 180.0)]
        panel = np.full((T, 260, 3), 250, np.uint8)
        for i, line in enumerate(text):
            cv2.putText(
                panel, line, (6, 16 + i * 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA
            )
        rows.append(np.hstack([thumb, *views, panel]))
    cols = 2
    while len(rows) % cols:
        rows.append(np.full_like(rows[0], 255))
    sheet = np.vstack([np.hstack(rows[i : i + cols]) for i in range(0, len(rows), cols)])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print("wrote", out, sheet.shape)


if __name__ == "__main__":
    main()
