"""The ``vrhub eval`` report: build every avatar, measure it, write report.md and a contact sheet.

For each photo: the whole pipeline (timed per stage), the likeness render in the photo's pose
(NME with the photo's expression re-applied and neutral), the identification rank, the detected
yaw/pitch, the expression that was removed and the warnings; then the rank matrix, the
robustness table (relit variants of every photo, frames of the given videos) and the timing
table (median per stage). The contact sheet has one row per photo: photo | front | three-quarter
| profile, with the NME printed on the row.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from vrhub.evaluation.likeness import Identification, Likeness, identification, measure_likeness
from vrhub.evaluation.render import render_view
from vrhub.evaluation.robustness import (
    RobustnessRow,
    photo_robustness,
    same_speaker_robustness,
    stranger_baseline,
    video_robustness,
)
from vrhub.pipeline.plugins import StageImpl
from vrhub.pipeline.run import PipelineResult
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, SLOTS, Photo

#: Goals of issue 7.
NME_GOAL = 0.015
IDENTIFICATION_GOAL = 0.90
GEOMETRY_GOAL = 0.01
ALBEDO_GOAL = 5.0
PIPELINE_GOAL_S = 1.0

#: Contact-sheet tile (width, height) in pixels.
TILE = (200, 240)


@dataclass
class PhotoEvaluation:
    """Everything measured for one photo."""

    name: str
    photo: Photo
    result: PipelineResult
    likeness: Likeness
    views: list[np.ndarray]  # front, three-quarter, profile (TILE-sized RGB)
    decode_s: float


@dataclass
class Evaluation:
    photos: list[PhotoEvaluation]
    skipped: list[tuple[str, str]]  # (file, reason)
    ident: Identification
    robustness: list[RobustnessRow] = field(default_factory=list)


def _top_expression(weights: np.ndarray, k: int = 3) -> str:
    w = np.asarray(weights, np.float64)
    order = [i for i in np.argsort(-w)[:k] if w[i] > 0]
    return ", ".join(f"{ARKIT_BLENDSHAPES[i]} {w[i]:.2f}" for i in order) or "none"


def evaluate(
    paths: Sequence[Path],
    stages: Mapping[str, StageImpl],
    videos: Sequence[Path] = (),
    robustness: bool = True,
    same_speaker: Sequence[tuple[Path, Path]] = (),
    log: Callable[[str], None] = lambda s: None,
) -> Evaluation:
    """Build and measure an avatar for every photo in ``paths`` (files that are not photos with a
    face are listed as skipped), then robustness over the photos and ``videos``."""
    from vrhub.photo_io import decode_photo
    from vrhub.pipeline.run import PipelineError, StageFailed, run_pipeline

    done: list[PhotoEvaluation] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        t0 = time.perf_counter()
        try:
            photo = decode_photo(Path(path).read_bytes(), name=Path(path).name)
        except (PipelineError, OSError) as exc:
            skipped.append((Path(path).name, str(exc)))
            continue
        decode_s = time.perf_counter() - t0
        try:
            result = run_pipeline(photo, stages)
        except (PipelineError, StageFailed) as exc:
            skipped.append((photo.name, str(exc)))
            continue
        like = measure_likeness(result.avatar, result.face)
        views = [render_view(result.avatar, TILE, yaw).image for yaw in (0.0, 35.0, 90.0)]
        done.append(PhotoEvaluation(photo.name, result.photo or photo, result, like, views, decode_s))
        log(f"{photo.name}: NME {like.nme * 100:.2f} % (neutral {like.nme_neutral * 100:.2f} %)")
    ident = identification(
        [e.likeness.render_landmarks for e in done], [e.result.face.landmarks for e in done]
    )
    rows: list[RobustnessRow] = []
    if robustness:
        for e in done:
            rows += photo_robustness(e.name, e.photo.pixels, stages)
            log(f"robustness {e.name}: done")
        for video in videos:
            rows += video_robustness(Path(video), stages)
            log(f"robustness {Path(video).name}: done")
        rows += stranger_baseline([e.name for e in done], [e.result.avatar.head for e in done])
        for a, b in same_speaker:
            rows += same_speaker_robustness(Path(a), Path(b), stages)
            log(f"robustness {Path(a).name} / {Path(b).name}: done")
    return Evaluation(done, skipped, ident, rows)


# --- tables -----------------------------------------------------------------------------------


def _pct(x: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x * 100:.{digits}f}"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def _md(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


def nme_table(ev: Evaluation) -> str:
    rows = []
    for i, e in enumerate(ev.photos):
        yaw, pitch, _ = e.result.face.yaw_pitch_roll
        rank = int(ev.ident.rank[i])
        rows.append(
            (
                e.name,
                _pct(e.likeness.nme),
                _pct(e.likeness.nme_neutral),
                str(rank) if rank else "n/a",
                f"{yaw:.0f} / {pitch:.0f}",
                _top_expression(e.result.avatar.head.expression_removed),
                "; ".join(e.result.warnings) or "-",
            )
        )
    med = _median([e.likeness.nme for e in ev.photos])
    med_n = _median([e.likeness.nme_neutral for e in ev.photos])
    rows.append(("**median**", _pct(med), _pct(med_n), "", "", "", ""))
    return _md(
        ["photo", "NME %", "NME % neutral", "rank", "yaw / pitch °", "expression removed (top)", "warnings"],
        rows,
    )


def short_name(name: str) -> str:
    """A column label: ``congress_G000571.jpg`` -> ``G000571``, ``grid_lbbc2a_frame005.png`` -> ``lbbc2a``."""
    parts = name.rsplit(".", 1)[0].split("_")
    return (parts[1] if len(parts) > 1 else parts[0])[:12]


def rank_matrix_table(ev: Evaluation) -> str:
    names = [short_name(e.name) for e in ev.photos]
    rows = []
    for i in range(len(ev.photos)):
        cells = []
        for j in range(len(ev.photos)):
            v = ev.ident.matrix[i, j]
            txt = "n/a" if math.isnan(v) else f"{v * 100:.1f}"
            cells.append(f"**{txt}**" if i == j else txt)
        rows.append((f"avatar {names[i]}", *cells))
    return _md(["render ↓ / photo →", *names], rows)


def robustness_table(ev: Evaluation) -> str:
    rows = [
        (
            r.source,
            r.variant,
            _pct(r.geometry, 3),
            "n/a" if math.isnan(r.albedo_de) else f"{r.albedo_de:.2f}",
            r.note or "",
        )
        for r in ev.robustness
    ]
    return _md(["source", "variant", "geometry RMS % face width", "albedo ΔE2000", "note"], rows)


def robustness_summary(ev: Evaluation) -> str:
    """Per variant: median and worst geometry and ΔE over all sources."""
    by: dict[str, list[RobustnessRow]] = {}
    for r in ev.robustness:
        key = (
            "video frames"
            if r.variant.startswith("frame ")
            else "other video, same speaker"
            if r.variant.startswith("other video")
            else r.variant
        )
        by.setdefault(key, []).append(r)
    rows = []
    for key, rs in by.items():
        g = [r.geometry for r in rs]
        d = [r.albedo_de for r in rs]
        gmax = max((x for x in g if not math.isnan(x)), default=float("nan"))
        dmax = max((x for x in d if not math.isnan(x)), default=float("nan"))
        ok = (gmax <= GEOMETRY_GOAL) and (dmax <= ALBEDO_GOAL)
        rows.append(
            (
                key,
                str(len(rs)),
                _pct(_median(g), 3),
                _pct(gmax, 3),
                _num(_median(d)),
                _num(dmax),
                "(baseline)" if "baseline" in key or "noise floor" in key else "yes" if ok else "no",
            )
        )
    return _md(
        [
            "variant",
            "n",
            "geometry median %",
            "geometry worst %",
            "ΔE2000 median",
            "ΔE2000 worst",
            "meets goal (≤1 %, ≤5)",
        ],
        rows,
    )


def timing_table(ev: Evaluation) -> str:
    rows = []
    decode = [e.decode_s for e in ev.photos]
    rows.append(("decode", f"{_median(decode) * 1000:.0f}", f"{max(decode) * 1000:.0f}" if decode else "n/a"))
    for slot in SLOTS:
        vals = [e.result.timings.get(slot, float("nan")) for e in ev.photos]
        impl = ev.photos[0].result.stages.get(slot, "") if ev.photos else ""
        rows.append((f"{slot} ({impl})", f"{_median(vals) * 1000:.0f}", f"{max(vals) * 1000:.0f}"))
    totals = [sum(e.result.timings.values()) + e.decode_s for e in ev.photos]
    rows.append(
        ("**total**", f"{_median(totals) * 1000:.0f}", f"{max(totals) * 1000:.0f}" if totals else "n/a")
    )
    return _md(["stage", "median ms", "max ms"], rows)


def report_markdown(ev: Evaluation, sheet_name: str = "contact_sheet.png") -> str:
    meds = [e.likeness.nme for e in ev.photos]
    med = _median(meds)
    totals = [sum(e.result.timings.values()) + e.decode_s for e in ev.photos]
    med_t = _median(totals) if totals else float("nan")
    n_id = int((ev.ident.rank == 1).sum())
    parts = [
        "# vrhub eval",
        "",
        f"{len(ev.photos)} photos evaluated" + (f", {len(ev.skipped)} skipped" if ev.skipped else "") + ".",
        "",
        "## Summary against the goals (issue 7)",
        "",
        _md(
            ["measure", "goal", "measured", "verdict"],
            [
                (
                    "median NME (render with the photo's expression)",
                    "≤ 1.5 %",
                    f"{_pct(med)} %",
                    _verdict(med, NME_GOAL),
                ),
                (
                    "identification (own photo nearest)",
                    "≥ 90 %",
                    f"{ev.ident.rate * 100:.0f} % ({n_id}/{len(ev.photos)})",
                    "meets"
                    if ev.ident.rate >= IDENTIFICATION_GOAL
                    else f"misses by {(IDENTIFICATION_GOAL - ev.ident.rate) * 100:.0f} points",
                ),
                (
                    "median pipeline time per photo",
                    "≤ 1.0 s",
                    f"{med_t:.2f} s",
                    _verdict(med_t, PIPELINE_GOAL_S, unit=" s"),
                ),
            ],
        ),
        "",
        "Robustness goals (geometry ≤ 1 % of face width, albedo ΔE2000 ≤ 5) per variant are in the robustness summary.",
        "",
        "## Likeness (NME by inter-ocular distance after similarity alignment)",
        "",
        "Calibration (issue 7): the photo itself re-detects at 0.4–1.0 %; a stranger scores 2.4–3.3 %.",
        "`NME %` renders the avatar with the removed expression re-applied through its own blendshapes;",
        "`neutral` renders the expression-free avatar. Rank: position of the own photo among all photos (1 = identified).",
        "",
        nme_table(ev),
        "",
        "## Identification rank matrix (NME %, row = avatar render, column = photo landmarks)",
        "",
        f"Identified: {n_id}/{len(ev.photos)} = {ev.ident.rate * 100:.0f} %.",
        "",
        rank_matrix_table(ev),
        "",
    ]
    if ev.robustness:
        parts += [
            "## Robustness",
            "",
            "Each variant's neutral head and albedo against the original photo's (video: later frames against the first).",
            "",
            robustness_summary(ev),
            "",
            robustness_table(ev),
            "",
        ]
    parts += [
        "## Timing (whole pipeline, per stage, median over the photos)",
        "",
        "Measured inside this run, one photo at a time, on this machine (shared CPU: other work may be running;"
        f" load average at the end {_load()}). The first photo includes loading the models.",
        "",
        timing_table(ev),
        "",
        "## Contact sheet",
        "",
        f"![contact sheet]({sheet_name})",
        "",
    ]
    if ev.skipped:
        parts += ["## Skipped", "", _md(["file", "reason"], ev.skipped), ""]
    return "\n".join(parts)


def _load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _verdict(value: float, goal: float, unit: str = " %") -> str:
    if math.isnan(value):
        return "not measured"
    if value <= goal:
        return "meets"
    scale = 100 if unit == " %" else 1
    return f"misses by {(value - goal) * scale:.2f}{unit}"


# --- contact sheet ----------------------------------------------------------------------------


def _photo_tile(e: PhotoEvaluation) -> np.ndarray:
    """The photo cropped around the head (face bbox grown) to the tile's aspect."""
    x0, y0, x1, y1 = e.result.face.bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.12 * (y1 - y0)
    half_h = 0.95 * (y1 - y0)
    half_w = half_h * TILE[0] / TILE[1]
    src = np.float32([[cx - half_w, cy - half_h], [cx + half_w, cy - half_h], [cx - half_w, cy + half_h]])
    dst = np.float32([[0, 0], [TILE[0], 0], [0, TILE[1]]])
    m = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(e.photo.pixels, m, TILE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def contact_sheet(ev: Evaluation) -> Image.Image:
    """One row per photo: photo | front | three-quarter | profile, NME and rank on the row."""
    w, h = TILE
    label = 18
    sheet = Image.new("RGB", (4 * w, max(len(ev.photos), 1) * (h + label)), (20, 22, 26))
    draw = ImageDraw.Draw(sheet)
    for i, e in enumerate(ev.photos):
        y = i * (h + label)
        for k, img in enumerate([_photo_tile(e), *e.views]):
            sheet.paste(Image.fromarray(img), (k * w, y + label))
        yaw, pitch, _ = e.result.face.yaw_pitch_roll
        rank = int(ev.ident.rank[i])
        draw.text(
            (4, y + 3),
            f"{e.name}   NME {_pct(e.likeness.nme)} % (neutral {_pct(e.likeness.nme_neutral)} %)   "
            f"rank {rank if rank else 'n/a'}   yaw {yaw:.0f} pitch {pitch:.0f}",
            fill=(235, 235, 235),
        )
    return sheet


def write_report(ev: Evaluation, out: Path) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/contact_sheet.png``; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    sheet = out / "contact_sheet.png"
    contact_sheet(ev).save(sheet)
    md = out / "report.md"
    md.write_text(report_markdown(ev, sheet.name), encoding="utf-8")
    return md, sheet
