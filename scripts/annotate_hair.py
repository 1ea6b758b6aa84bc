"""Hair-mask annotation tool: draw, check and evaluate hand-drawn hair polygons.

The polygons live in tests/data/hair_masks/*.json (photo path relative to ../shared/data -> list of
polygons, each a list of [x, y] pixels; an empty list = no hair, e.g. a bald head): polygons.json
(shared portraits), polygons_pool.json (hair_pool portraits) and polygons_second.json (the shared
portraits outlined again by a second annotator, to measure how far two people agree).

    .venv/bin/python scripts/annotate_hair.py grid  OUT_DIR   # photos with a 25 px grid to read coordinates from
    .venv/bin/python scripts/annotate_hair.py check OUT_DIR   # polygon outlines drawn on each photo, to correct them
    .venv/bin/python scripts/annotate_hair.py iou   [OUT.png] # IoU of the landmarks segment stage per photo + mean,
                                                              # per set, and the two annotators' agreement

``--polygons FILE`` (any command) reads another polygon file of the same format instead; a photo
listed there with ``null`` instead of a list has no outline yet (``grid`` draws it, the rest skip it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ANNOTATIONS = ROOT / "tests" / "data" / "hair_masks"
#: shared portraits (the first set, outlined on a 25 px grid at 2x; outlines good to 5-10 px)
POLYGONS = ANNOTATIONS / "polygons.json"
#: 25 training-split hair_pool portraits, outlined on zoomed crops
POOL = ANNOTATIONS / "polygons_pool.json"
#: the shared portraits with hair outlined again, independently, by another annotator
SECOND = ANNOTATIONS / "polygons_second.json"
#: the sets the stage is scored on
SETS = (POLYGONS, POOL)
DATA = ROOT.parent / "shared" / "data"


def load_polygons(path: Path = POLYGONS, pending: bool = False) -> dict[str, list[np.ndarray]]:
    """photo (relative to shared/data) -> list of (k, 2) float polygons.

    Photos whose entry is ``null`` (not outlined yet) are left out unless ``pending``."""
    photos = json.loads(path.read_text())["photos"]
    return {
        k: [np.asarray(p, np.float64) for p in (v or [])]
        for k, v in photos.items()
        if v is not None or pending
    }


def rasterise(polygons: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Filled polygons as an (h, w) bool mask; size = (w, h)."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    if polygons:
        cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], 1)
    return mask.astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _grid(out: Path, path: Path = POLYGONS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for rel in load_polygons(path, pending=True):
        im = cv2.imread(str(DATA / rel))
        h, w = im.shape[:2]
        s = 2 if w < 400 else 1
        im = cv2.resize(im, (w * s, h * s))
        for x in range(0, w, 25):
            cv2.line(im, (x * s, 0), (x * s, h * s), (0, 255, 255) if x % 50 == 0 else (0, 160, 160), 1)
            if x % 50 == 0:
                cv2.putText(im, str(x), (x * s + 1, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 255), 1)
        for y in range(0, h, 25):
            cv2.line(im, (0, y * s), (w * s, y * s), (0, 255, 255) if y % 50 == 0 else (0, 160, 160), 1)
            if y % 50 == 0:
                cv2.putText(im, str(y), (1, y * s + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 255), 1)
        cv2.imwrite(str(out / (Path(rel).stem + ".png")), im)


def _check(out: Path, path: Path = POLYGONS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for rel, polys in load_polygons(path).items():
        im = cv2.imread(str(DATA / rel))
        for p in polys:
            cv2.polylines(im, [np.round(p).astype(np.int32)], True, (0, 255, 0), 2)
        cv2.imwrite(str(out / (Path(rel).stem + ".png")), im)


def evaluate(polygons: dict[str, list[np.ndarray]] | None = None) -> dict[str, dict[str, float]]:
    """Run detect + the landmarks segment stage on every annotated photo.

    Returns photo -> {"iou": ..} for photos with hair, {"false_hair": hair area / face area} for bald ones.
    """
    from vrhub.hair.offline_face import load_photo, observe_face
    from vrhub.stages.landmark_segment import landmark_segment

    results: dict[str, dict[str, float]] = {}
    for rel, polys in (polygons or load_polygons()).items():
        photo = load_photo(DATA / rel)
        face = observe_face(photo)
        seg = landmark_segment(photo, face)
        pred = seg.hair > 0.5
        if polys:
            results[rel] = {"iou": iou(pred, rasterise(polys, (photo.width, photo.height)))}
        else:
            x0, y0, x1, y1 = face.bbox
            results[rel] = {"false_hair": float(pred.sum() / max((x1 - x0) * (y1 - y0), 1.0))}
    return results


def _print_set(name: str, res: dict[str, dict[str, float]]) -> list[float]:
    ious = [r["iou"] for r in res.values() if "iou" in r]
    print(f"\n{name}\n{'photo':<48} IoU / false hair")
    for rel, r in res.items():
        print(
            f"{rel:<48} "
            + (f"{r['iou']:.3f}" if "iou" in r else f"bald: hair area {r['false_hair']:.3f} of the face box")
        )
    if ious:
        print(
            f"mean IoU over {len(ious)} photos with hair: {np.mean(ious):.3f} (median {np.median(ious):.3f}, min {np.min(ious):.3f})"
        )
    return ious


def agreement(first: Path = POLYGONS, second: Path = SECOND) -> dict[str, float]:
    """IoU between two annotators' polygons for every photo both outlined (with hair)."""
    from vrhub.hair.offline_face import load_photo

    a, b = load_polygons(first), load_polygons(second)
    out = {}
    for rel in sorted(set(a) & set(b)):
        if a[rel] and b[rel]:
            photo = load_photo(DATA / rel)
            size = (photo.width, photo.height)
            out[rel] = iou(rasterise(a[rel], size), rasterise(b[rel], size))
    return out


def _iou(sheet: Path | None, paths: list[Path]) -> None:
    all_ious: list[float] = []
    for path in paths:
        all_ious += _print_set(path.name, evaluate(load_polygons(path)))
    if len(paths) > 1:
        print(
            f"\nall sets: mean IoU {np.mean(all_ious):.3f} (median {np.median(all_ious):.3f}) over {len(all_ious)} photos"
        )
    if paths == list(SETS) and SECOND.exists():
        second = _print_set(
            f"{SECOND.name} (the shared photos outlined again by another annotator)",
            evaluate(load_polygons(SECOND)),
        )
        agree = agreement()
        print(f"\nannotators' agreement (IoU of {POLYGONS.name} vs {SECOND.name}) per photo:")
        for rel, v in agree.items():
            print(f"{rel:<48} {v:.3f}")
        print(
            f"mean agreement {np.mean(list(agree.values())):.3f} over {len(agree)} photos; the stage scores {np.mean(second):.3f} against the second annotator"
        )
    if sheet:
        from vrhub.hair.offline_face import load_photo, observe_face
        from vrhub.stages.landmark_segment import landmark_segment

        tiles = []
        for path in paths:
            for rel, polys in load_polygons(path).items():
                photo = load_photo(DATA / rel)
                face = observe_face(photo)
                pred = landmark_segment(photo, face).hair > 0.5
                im = photo.pixels.copy()
                im[pred] = (0.5 * im[pred] + 0.5 * np.array([255, 0, 255])).astype(np.uint8)
                for p in polys:
                    cv2.polylines(im, [np.round(p).astype(np.int32)], True, (0, 255, 0), 2)
                tiles.append(cv2.resize(im, (225, 275)))
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        grid = np.vstack([np.hstack(tiles[i : i + 8]) for i in range(0, len(tiles), 8)])
        cv2.imwrite(str(sheet), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    argv = sys.argv[1:]
    sources = list(SETS)
    if "--polygons" in argv:
        i = argv.index("--polygons")
        sources = [Path(argv[i + 1])]
        del argv[i : i + 2]
    cmd = argv[0] if argv else "iou"
    arg = Path(argv[1]) if len(argv) > 1 else None
    if cmd == "grid":
        _grid(arg or Path("/tmp/hair_grid"), sources[0])
    elif cmd == "check":
        _check(arg or Path("/tmp/hair_check"), sources[0])
    else:
        _iou(arg, sources)
