"""Train the hair-attribute model and write vrhub/models/hair_attributes.onnx + .json.

Usage:
    .venv/bin/python scripts/train_hair_attributes.py [--data ../shared/data] [--cache /tmp/vrhub_hair_features]
        [--synthetic /tmp/vrhub_hair_synth [--synthetic-attrs length,texture]]

1. Features: for every portrait of ``hair_pool`` (and its mirror image, with left/right parting
   swapped) run the pipeline's detect + the ``landmarks`` segment stage and ``vrhub.hair.features``;
   cached as .npz under ``--cache`` keyed by file and FEATURES_VERSION.
2. Held-out split: 25 % of the pool, stratified by length and texture (seed 20261127); mirrored copies
   of a held-out image never enter training.
3. One classifier per attribute (standardised features -> class-weighted logistic regression or
   random forest, chosen by cross-validated balanced accuracy on the training part), converted with
   skl2onnx and merged into one ONNX graph with one probability output per attribute. Attributes in
   ``--colour-free`` (length, texture, fringe and baldness by default) read the features without the
   hair's absolute colour statistics, which relighting moves (a Gather node in the graph picks the
   columns): with them, retrained texture agreed with itself across relit variants of the shared
   portraits in 82 of 92 pairs, without them in 88 (length 86 -> 87). Parting keeps them (its
   held-out balanced accuracy fell 0.61 -> 0.35 without).
4. Prints balanced + plain accuracy and a confusion matrix per attribute on the held-out split and on
   the other shared portraits (``hair/hair_labels.csv``, whose four lengths have no buzz: a predicted
   buzz is scored as their "short" there, beside the strict score), and stores them in the .json.

``--synthetic DIR`` (off by default) adds rendered portraits with exact labels
(``scripts/render_hair_synthetic.py``: ``DIR/labels.csv`` + PNGs) to the *training* part only, for
the attributes in ``--synthetic-attrs``; their features come from the same ``features_of`` path and
are cached under ``--cache`` keyed by the images' sha256. The held-out split and the shared
portraits stay real photos only. In grouped cross-validation a render shares the group of the pool
portrait its face came from.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vrhub.hair.attributes_model import ATTRIBUTE_CLASSES, merge_classifier_models  # noqa: E402
from vrhub.hair.features import FEATURE_NAMES, FEATURES_VERSION, colour_free_columns, measure_hair  # noqa: E402
from vrhub.hair.offline_face import load_photo, observe_face  # noqa: E402
from vrhub.pipeline.types import Photo  # noqa: E402
from vrhub.stages.landmark_segment import segment_photo  # noqa: E402

SEED = 20261127
SWAP_PARTING = {"left": "right", "right": "left"}


def features_of(photo: Photo) -> np.ndarray | None:
    face = observe_face(photo)
    if face is None:
        return None
    seg = segment_photo(photo, face)
    return measure_hair(photo, face, seg).vector


def relight(pixels: np.ndarray, seed: int) -> np.ndarray:
    """A random relit copy of an image: a directional brightness gradient, a gamma in [0.6, 1.6] and
    a colour cast of up to 12 % per channel (the same kinds of change as the robustness test)."""
    rng = np.random.default_rng(seed)
    f = pixels.astype(np.float32) / 255.0
    h, w = f.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = ((xx / w - 0.5) * np.cos(angle) + (yy / h - 0.5) * np.sin(angle)) + 0.5
    lo = rng.uniform(0.5, 0.9)
    f = f * (lo + (1.2 - lo) * t)[..., None]
    f = np.clip(f, 0, 1) ** rng.uniform(0.6, 1.6)
    f = f * rng.uniform(0.88, 1.12, 3)[None, None, :]
    return (np.clip(f, 0, 1) * 255).astype(np.uint8)


def extract_relit(paths: list[Path], cache: Path, copies: int = 2) -> dict[str, np.ndarray]:
    """Feature vectors of ``copies`` relit versions per image, keyed "name|r<i>"."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    t0 = time.time()
    for i, p in enumerate(paths):
        f = cache / f"{p.parent.name}_{p.stem}_v{FEATURES_VERSION}_relit{copies}.npz"
        if f.exists():
            d = np.load(f)
            vecs = {k: d[k] for k in d.files}
        else:
            photo = load_photo(p)
            vecs = {}
            for c in range(copies):
                seed = int(hashlib.sha256(f"{p.name}{c}".encode()).hexdigest()[:8], 16)
                v = features_of(Photo(pixels=relight(photo.pixels, seed), name=photo.name))
                if v is not None:
                    vecs[f"r{c}"] = v
            np.savez(f, **vecs)
        for k, v in vecs.items():
            out[f"{p.name}|{k}"] = v
        if i % 50 == 0:
            print(f"  relit features {i}/{len(paths)} ({time.time() - t0:.0f} s)", flush=True)
    return out


def extract(paths: list[Path], cache: Path, mirror: bool) -> dict[str, np.ndarray]:
    """Feature vectors keyed by file name (+ "|m" for mirrored), cached per file."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    t0 = time.time()
    for i, p in enumerate(paths):
        key = f"{p.parent.name}_{p.stem}_v{FEATURES_VERSION}"
        f = cache / f"{key}.npz"
        if f.exists():
            d = np.load(f)
            vecs = {k: d[k] for k in d.files}
        else:
            photo = load_photo(p)
            vecs = {}
            v = features_of(photo)
            if v is not None:
                vecs["orig"] = v
            if mirror:
                vm = features_of(Photo(pixels=np.ascontiguousarray(photo.pixels[:, ::-1]), name=photo.name))
                if vm is not None:
                    vecs["mirror"] = vm
            np.savez(f, **vecs)
        if "orig" in vecs:
            out[p.name] = vecs["orig"]
        if "mirror" in vecs:
            out[p.name + "|m"] = vecs["mirror"]
        if i % 50 == 0:
            print(f"  features {i}/{len(paths)} ({time.time() - t0:.0f} s)", flush=True)
    return out


def synthetic_set(
    folder: Path, cache: Path, rows: list[dict[str, str]]
) -> tuple[list[dict[str, str]], list[np.ndarray], list[int], str]:
    """Rendered training portraits: label rows (pool columns, batch "synthetic"), feature vectors,
    CV groups (the pool index of the source face, else a group of its own) and the sha256 of the
    set. Renders in which no face is found are dropped (and counted)."""
    with open(folder / "labels.csv", newline="") as fh:
        srows = list(csv.DictReader(fh))
    digest = hashlib.sha256((folder / "labels.csv").read_bytes())
    paths = [folder / r["file"] for r in srows]
    for p in paths:
        digest.update(p.read_bytes())
    sha = digest.hexdigest()
    feats = extract(paths, cache / f"synthetic_{sha[:16]}", mirror=False)
    pool_index = {r["file"]: i for i, r in enumerate(rows)}
    out_rows, vecs, groups = [], [], []
    for k, r in enumerate(srows):
        if r["file"] not in feats:
            continue
        out_rows.append({**r, "batch": "synthetic"})
        vecs.append(feats[r["file"]])
        groups.append(pool_index.get(r.get("identity", ""), 1_000_000 + k))
    print(f"synthetic: {len(out_rows)} of {len(srows)} renders with a face ({folder}, sha256 {sha[:12]})")
    return out_rows, vecs, groups, sha


def pool_labels(data: Path) -> list[dict[str, str]]:
    with open(data / "hair_pool" / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, r in enumerate(rows):
        r["batch"] = "first" if i < 360 else "extension"
    return rows


def target(row: dict[str, str], attr: str, mirrored: bool) -> str | None:
    """The training label of ``attr`` for a pool row (None = not used for this attribute)."""
    if attr == "length":
        v = row["length"]
        return v if v in ATTRIBUTE_CLASSES["length"] else None
    if attr == "texture":
        v = row["texture"]
        return v if v in ATTRIBUTE_CLASSES["texture"] else None
    if attr == "fringe":
        return {"yes": "yes", "no": "no"}.get(row["fringe"])
    if attr == "baldness":
        v = row["baldness"]
        return v if v in ATTRIBUTE_CLASSES["baldness"] else None
    if attr == "colour":
        v = row["colour"]
        return v if v in ATTRIBUTE_CLASSES["colour"] else None
    if attr == "parting":
        v = row["parting"]
        if v == "unknown":
            return None
        if v in ("left", "right") and row["batch"] == "first":
            return None  # README: first-batch left/right may be mirrored; not used
        if mirrored:
            v = SWAP_PARTING.get(v, v)
        return v if v in ATTRIBUTE_CLASSES["parting"] else None
    raise KeyError(attr)


def balanced_accuracy(y: list[str], p: list[str], classes: list[str]) -> float:
    recalls = []
    for c in classes:
        idx = [i for i, t in enumerate(y) if t == c]
        if idx:
            recalls.append(np.mean([p[i] == c for i in idx]))
    return float(np.mean(recalls)) if recalls else float("nan")


def confusion(y: list[str], p: list[str], classes: list[str]) -> list[list[int]]:
    return [
        [sum(1 for t, q in zip(y, p, strict=True) if t == a and q == b) for b in classes] for a in classes
    ]


def print_confusion(name: str, y: list[str], p: list[str], classes: list[str]) -> None:
    m = confusion(y, p, classes)
    w = max(len(c) for c in classes) + 1
    print(f"  {name}: rows = label, columns = prediction")
    print("  " + " " * w + "".join(f"{c[:8]:>9}" for c in classes))
    for c, row in zip(classes, m, strict=True):
        print(f"  {c:<{w}}" + "".join(f"{v:>9}" for v in row))


def candidates():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "logreg_c0.3": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.3, class_weight="balanced", max_iter=3000)
        ),
        "logreg_c0.05": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.05, class_weight="balanced", max_iter=3000)
        ),
        "logreg_c0.01": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.01, class_weight="balanced", max_iter=3000)
        ),
        "svc_rbf": lambda: make_pipeline(
            StandardScaler(),
            SVC(C=1.0, gamma="scale", class_weight="balanced", probability=True, random_state=SEED),
        ),
        "forest": lambda: make_pipeline(
            StandardScaler(),
            RandomForestClassifier(
                n_estimators=120,
                max_depth=7,
                min_samples_leaf=2,
                class_weight="balanced_subsample",
                random_state=SEED,
                n_jobs=1,
            ),
        ),
    }


def choose_model(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, scored: np.ndarray | None = None
) -> tuple[str, float]:
    """Pick the candidate with the best grouped cross-validated balanced accuracy.

    scored : (n,) bool, the real samples (None = all). The folds are drawn over the real samples
    only, so they are the same with and without synthetic renders; a render trains in every fold
    whose test part does not hold its group and is never tested or scored. Scores with and without
    renders are therefore paired comparisons on the same real photos."""
    from sklearn.model_selection import StratifiedGroupKFold

    scored = np.ones(len(y), bool) if scored is None else scored
    real, synth = np.flatnonzero(scored), np.flatnonzero(~scored)
    classes, counts = np.unique(y[real], return_counts=True)
    n_splits = int(min(4, max(2, counts.min())))
    best = ("logreg_c0.3", -1.0)
    for name, make in candidates().items():
        preds = np.empty(len(y), dtype=object)
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=SEED)
        for tr, te in cv.split(X[real], y[real], groups[real]):
            extra = synth[~np.isin(groups[synth], groups[real[te]])]
            fit = np.concatenate([real[tr], extra])
            model = make().fit(X[fit], y[fit])
            preds[real[te]] = model.predict(X[real[te]])
        score = balanced_accuracy(list(y[real]), list(preds[real]), list(classes))
        print(f"    cv {name}: balanced {score:.3f}")
        if score > best[1]:
            best = (name, score)
    return best


#: the shared portraits' labels know four lengths (none / short / medium / long): their "short"
#: covers close-cropped hair (Obama and M001137, described as close-cropped, are labelled short),
#: so a predicted buzz is scored as short there
SHARED_SCHEME = {"length": {"buzz": "short"}}


def in_shared_scheme(attr: str, pred: str) -> str:
    """A prediction in the shared portraits' label scheme."""
    return SHARED_SCHEME.get(attr, {}).get(pred, pred)


def shared_portrait_labels(data: Path) -> dict[str, dict[str, str]]:
    """length/texture labels of the other shared portraits, mapped to the model's classes."""
    out = {}
    with open(data / "hair" / "hair_labels.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            length = {"none": "bald", "short": "short", "medium": "medium", "long": "long"}.get(
                r["hair_length"]
            )
            texture = {
                "straight": "straight",
                "wavy": "wavy",
                "curly": "curly",
                "kinky (close-cropped)": "coily",
            }.get(r["hair_class"])
            headwear = "hat" if r["hair_class"].startswith("occluded") else "none"
            out[r["file"]] = {"length": length, "texture": texture, "headwear": headwear}
    return out


def held_out_split(rows: list[dict]) -> set[int]:
    """Indices of the held-out quarter of ``rows``, stratified by (length, texture), seeded by SEED;
    every stratum of two or more images gives at least one."""
    rng = np.random.default_rng(SEED)
    strata: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        strata.setdefault((r["length"], r["texture"]), []).append(i)
    held = set()
    for idx in strata.values():
        idx = list(rng.permutation(idx))
        k = int(round(0.25 * len(idx)))
        if len(idx) >= 2 and k == 0:
            k = 1
        held.update(int(i) for i in idx[:k])
    return held


def split_examples(
    rows: list[dict[str, str]], feats: dict[str, np.ndarray], held: set[int], attr: str, relit: int
) -> tuple[list[np.ndarray], list[str], list[int], list[np.ndarray], list[str]]:
    """The real photos' examples of ``attr``: (X, y, group) for training, from every photo outside
    ``held`` with its mirror image and ``relit`` relit copies (group = the photo's row, so copies
    of one photo share a cross-validation fold), and (X, y) for the held-out split, originals only."""
    Xtr: list[np.ndarray] = []
    ytr: list[str] = []
    gtr: list[int] = []
    Xte: list[np.ndarray] = []
    yte: list[str] = []
    for i, r in enumerate(rows):
        keys = [(r["file"], False), (r["file"] + "|m", True)]
        keys += [(f"{r['file']}|r{c}", False) for c in range(relit)]
        for key, mirrored in keys:
            t = target(r, attr, mirrored)
            if key not in feats or t is None:
                continue
            if i in held:
                if key == r["file"]:
                    Xte.append(feats[key])
                    yte.append(t)
            else:
                Xtr.append(feats[key])
                ytr.append(t)
                gtr.append(i)
    return Xtr, ytr, gtr, Xte, yte


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vrhub_hair_features"))
    ap.add_argument("--out", type=Path, default=ROOT / "vrhub" / "models")
    ap.add_argument("--extract-only", action="store_true")
    ap.add_argument("--relit", type=int, default=2, help="relit training copies per image (0 = none)")
    ap.add_argument("--synthetic", type=Path, default=None, help="folder of rendered training portraits")
    ap.add_argument(
        "--synthetic-attrs",
        default="length,texture",
        help="comma-separated attributes the synthetic renders train (their other labels are unused)",
    )
    ap.add_argument(
        "--colour-free",
        default="length,texture,fringe,baldness",
        help="comma-separated attributes learned without the absolute colour features (see features.py)",
    )
    args = ap.parse_args()
    colour_free = {a for a in args.colour_free.split(",") if a}
    if unknown := colour_free - set(ATTRIBUTE_CLASSES):
        ap.error(f"unknown --colour-free {sorted(unknown)}")
    synth_attrs = {a for a in args.synthetic_attrs.split(",") if a}
    if unknown := synth_attrs - set(ATTRIBUTE_CLASSES):
        ap.error(f"unknown --synthetic-attrs {sorted(unknown)}")

    rows = pool_labels(args.data)
    paths = [args.data / "hair_pool" / r["file"] for r in rows]
    feats = extract(paths, args.cache, mirror=True)
    if args.relit:
        feats.update(extract_relit(paths, args.cache, copies=args.relit))
    shared = shared_portrait_labels(args.data)
    shared_paths = [args.data / f for f in shared]
    shared_feats = extract(shared_paths, args.cache / "shared", mirror=False)
    synth_rows, synth_vecs, synth_groups, synth_sha = (
        synthetic_set(args.synthetic, args.cache, rows) if args.synthetic else ([], [], [], "")
    )
    if args.extract_only:
        return

    held = held_out_split(rows)
    print(f"pool {len(rows)} images: {len(rows) - len(held)} train, {len(held)} held out")

    data_hash = hashlib.sha256((args.data / "hair_pool" / "labels.csv").read_bytes())
    for p in paths:
        data_hash.update(p.read_bytes())

    from skl2onnx import to_onnx

    onnx_models = {}
    columns: dict[str, list[int]] = {}
    metrics: dict[str, dict] = {}
    for attr, classes in ATTRIBUTE_CLASSES.items():
        Xtr, ytr, gtr, Xte, yte = split_examples(rows, feats, held, attr, args.relit)
        real = [True] * len(Xtr)
        n_synth = 0
        if attr in synth_attrs:  # training part only; the held-out split stays real photos
            for r, v, g in zip(synth_rows, synth_vecs, synth_groups, strict=True):
                t = target(r, attr, False)
                if t is not None:
                    Xtr.append(v)
                    ytr.append(t)
                    gtr.append(g)
                    real.append(False)
                    n_synth += 1
        cols = colour_free_columns() if attr in colour_free else list(range(len(FEATURE_NAMES)))
        columns[attr] = cols
        Xtr_a, ytr_a = np.array(Xtr, np.float32)[:, cols], np.array(ytr)
        Xte = [x[cols] for x in Xte]
        print(f"\n== {attr}: train {len(ytr)} (with mirrors, {n_synth} synthetic), held-out {len(yte)}")
        name, cv_score = choose_model(Xtr_a, ytr_a, np.array(gtr), np.array(real))
        model = candidates()[name]().fit(Xtr_a, ytr_a)
        model_classes = [str(c) for c in model.classes_]
        pred = list(model.predict(np.array(Xte, np.float32))) if Xte else []
        present = [c for c in classes if c in set(yte)]
        bal = balanced_accuracy(yte, pred, present)
        acc = float(np.mean([a == b for a, b in zip(yte, pred, strict=True)])) if yte else float("nan")
        print(f"  chosen {name} (cv balanced {cv_score:.3f}); held-out balanced {bal:.3f}, plain {acc:.3f}")
        print_confusion(attr, yte, pred, classes)
        recall = {
            c: round(float(np.mean([q == c for y, q in zip(yte, pred, strict=True) if y == c])), 3)
            for c in present
        }
        print(f"  held-out recall per class: {recall}")
        metrics[attr] = {
            "model": name,
            "classes": model_classes,
            "cv_balanced_accuracy": round(cv_score, 4),
            "heldout_balanced_accuracy": round(bal, 4),
            "heldout_accuracy": round(acc, 4),
            "heldout_n": len(yte),
            "train_synthetic_n": n_synth,
            "heldout_confusion": {"classes": classes, "matrix": confusion(yte, pred, classes)},
        }
        onnx_models[attr] = (
            to_onnx(
                model,
                Xtr_a[:1],
                options={id(model): {"zipmap": False}} if False else {"zipmap": False},
                target_opset={"": 17, "ai.onnx.ml": 3},
            ),
            model_classes,
        )

    merged = merge_classifier_models(
        {a: m for a, (m, _) in onnx_models.items()}, len(FEATURE_NAMES), columns=columns
    )
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "hair_attributes.onnx"
    onnx_path.write_bytes(merged.SerializeToString())
    meta = {
        "features_version": FEATURES_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "classes": {a: c for a, (_, c) in onnx_models.items()},
        "colour_free": sorted(colour_free),
        "data": {
            "pool": "shared/data/hair_pool (596 portraits + labels.csv)",
            "sha256": data_hash.hexdigest(),
            "split": f"25% held out, stratified by length+texture, seed {SEED}; mirrored training copies",
        },
        "metrics": metrics,
    }

    # colour names must agree with the measured lightness: each class's range of the hair's median
    # L* over its training examples (originals, mirrors and relit copies), 2nd-98th percentile
    Xc, yc, _, _, _ = split_examples(rows, feats, held, "colour", args.relit)
    lc = np.array(Xc)[:, FEATURE_NAMES.index("L_p50")]
    yc_a = np.array(yc)
    meta["colour_lightness"] = {
        c: [
            round(float(np.percentile(lc[yc_a == c], 2)), 2),
            round(float(np.percentile(lc[yc_a == c], 98)), 2),
        ]
        for c in ATTRIBUTE_CLASSES["colour"]
        if (yc_a == c).sum() >= 10
    }

    # spikiness has no labels: thresholds at the 80th / 95th percentile of a score over the pool
    fi = {n: i for i, n in enumerate(FEATURE_NAMES)}
    pool_vecs = np.array([feats[r["file"]] for r in rows if r["file"] in feats])
    irr = pool_vecs[:, fi["silhouette_irregularity"]]
    up = pool_vecs[:, fi["upward_strands"]]
    irr_scale, up_scale = float(np.median(irr)) + 1e-6, float(np.median(up)) + 1e-6
    score = irr / irr_scale + up / up_scale
    if args.synthetic:
        meta["data"]["synthetic"] = {
            "renders": len(synth_rows),
            "sha256": synth_sha,
            "attributes": sorted(synth_attrs),
            "made_by": "scripts/render_hair_synthetic.py (training part only, never evaluated on)",
        }
    meta["spikiness"] = {
        "irregularity_scale": irr_scale,
        "upward_scale": up_scale,
        "tousled": float(np.percentile(score, 80)),
        "spiky": float(np.percentile(score, 95)),
    }
    (args.out / "hair_attributes.json").write_text(json.dumps(meta, indent=1))
    print("spikiness thresholds", meta["spikiness"])

    # evaluation on the other shared portraits, through the real run-time model
    from vrhub.hair.attributes_model import HairAttributeModel

    runtime = HairAttributeModel(onnx_path)
    shared_eval = {}
    per_photo = {}
    for attr in ("length", "texture"):
        y, p = [], []
        for f, lab in shared.items():
            name = Path(f).name
            if lab[attr] is None or name not in shared_feats:
                continue
            probs = runtime.predict(shared_feats[name])
            pred = max(probs[attr], key=probs[attr].get)
            y.append(lab[attr])
            p.append(pred)
            per_photo.setdefault(name, {})[attr] = f"{lab[attr]} -> {pred}"
        present = [c for c in ATTRIBUTE_CLASSES[attr] if c in set(y)]
        strict = balanced_accuracy(y, p, present)
        p_scheme = [in_shared_scheme(attr, q) for q in p]
        bal = balanced_accuracy(y, p_scheme, present)
        acc = float(np.mean([a == b for a, b in zip(y, p_scheme, strict=True)]))
        print(
            f"\n== shared portraits, {attr}: n={len(y)} balanced {bal:.3f}, plain {acc:.3f} in their "
            f"label scheme ({strict:.3f} counting a predicted buzz against a label of short as wrong)"
        )
        print_confusion(attr, y, p, ATTRIBUTE_CLASSES[attr])
        shared_eval[attr] = {
            "balanced_accuracy": round(bal, 4),
            "balanced_accuracy_strict": round(strict, 4),
            "accuracy": round(acc, 4),
            "n": len(y),
            "confusion": {
                "classes": list(ATTRIBUTE_CLASSES[attr]),
                "matrix": confusion(y, p, list(ATTRIBUTE_CLASSES[attr])),
            },
        }
    for name, d in sorted(per_photo.items()):
        print(f"  {name}: {d}")
    meta["shared_portraits"] = shared_eval
    (args.out / "hair_attributes.json").write_text(json.dumps(meta, indent=1))
    print(f"\nwrote {onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB) and hair_attributes.json")


if __name__ == "__main__":
    main()
