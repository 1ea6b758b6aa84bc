"""Per-frame face solve time: vrhub's solver in Python and in the browser, beside scipy's lsq_linear.

    python -m bench.solver [--quick] [--frames N] [--no-browser]

Landmarks are recorded once with mediapipe FaceMesh from ../shared/data/video/grid_webcam_loop.mp4
(478 landmarks per frame; without the video: landmarks synthesised from the rig basis). Every method
solves the same bounded least squares (52 weights in [0, 1], the rig's blendshapes on the 468
landmarks, after the same Procrustes pose removal) on every frame:

- ``vrhub python``: FaceSolver.solve (pose + precomputed normal equations + projected Newton,
  warm-started from the previous frame), BLAS limited to one thread as the tracker does;
- ``vrhub python, cold``: the same without the warm start;
- ``vrhub js (chromium)``: vrhub/web/solver.js in Debian's Chromium (same JSON matrices);
- ``scipy lsq_linear bvls`` / ``trf``: the baseline, on the stacked least-squares matrix (1456 x 52),
  pose removal excluded from its time (it only solves).

Prints a markdown table: median and 90th percentile ms per frame, and the largest weight difference
from lsq_linear (bvls, tol 1e-12) over all frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDEO = SHARED / "data" / "video" / "grid_webcam_loop.mp4"
WEB = Path(__file__).resolve().parents[1] / "vrhub" / "web"


def record_landmarks(frames: int) -> tuple[np.ndarray, tuple[int, int], str]:
    """(n, 478, 3) normalised landmarks, the image size and where they came from."""
    if VIDEO.is_file():
        from vrhub.tracking.tracker import iter_landmarks

        got = [f for f in iter_landmarks(str(VIDEO), max_frames=frames) if f is not None]
        if got:
            return np.stack([f.landmarks for f in got]), got[0].image_size, f"{VIDEO.name}, mediapipe"
    from vrhub.tracking.solver import default_solver_basis

    basis = default_solver_basis()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(frames):
        w = np.clip(rng.normal(0, 0.3, 52), 0, 1)
        pts = (basis.neutral + np.tensordot(w, basis.deltas, axes=1)) * 12 + np.array([320, -240, 0])
        lm = np.stack([pts[:, 0] / 640, -pts[:, 1] / 480, -pts[:, 2] / 640], 1)
        out.append(np.vstack([lm, np.repeat(lm[468 - 1 : 468], 10, 0)]))
    return np.stack(out), (640, 480), "synthetic (no video found)"


def time_python(landmarks: np.ndarray, size: tuple[int, int], warm: bool) -> tuple[list[float], np.ndarray]:
    from threadpoolctl import threadpool_limits

    from vrhub.tracking.solver import FaceSolver, default_solver_matrices

    solver = FaceSolver(default_solver_matrices(), warm_start=warm)
    times, weights = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for lm in landmarks:
            t0 = time.perf_counter()
            r = solver.solve(lm, size, normalised=True)
            times.append((time.perf_counter() - t0) * 1e3)
            weights.append(r.weights)
    return times, np.array(weights)


def time_scipy(landmarks: np.ndarray, size: tuple[int, int], method: str) -> tuple[list[float], np.ndarray]:
    from scipy.optimize import lsq_linear

    from vrhub.tracking.solver import (
        FaceSolver,
        default_landmark_weights,
        default_solver_basis,
        default_solver_matrices,
    )

    m = default_solver_matrices()
    basis = default_solver_basis()
    solver = FaceSolver(m)
    cw = np.sqrt((default_landmark_weights()[:, None] * np.array([1.0, 1.0, m.z_weight])).reshape(-1))
    b = basis.deltas.reshape(52, -1).T * m.solved[None, :]
    a = np.vstack([b * cw[:, None], np.sqrt(m.regularisation) * np.eye(52)])
    times, weights = [], []
    for lm in landmarks:
        local, _ = solver.pose_free(lm, size, normalised=True)
        rhs = np.concatenate([(local[:468] - m.neutral).reshape(-1) * cw, np.zeros(52)])
        t0 = time.perf_counter()
        w = lsq_linear(a, rhs, bounds=(0, 1), method=method, tol=1e-12 if method == "bvls" else 1e-10).x
        times.append((time.perf_counter() - t0) * 1e3)
        weights.append(w)
    return times, np.array(weights)


async def time_js(landmarks: np.ndarray, size: tuple[int, int]) -> tuple[list[float], np.ndarray] | str:
    import shutil

    if not Path("/usr/bin/chromium").exists() and shutil.which("chromium") is None:
        return "chromium not installed"
    from aiohttp import web
    from playwright.async_api import async_playwright

    from vrhub.api.tracking import setup_tracking_routes

    app = web.Application()
    setup_tracking_routes(app)
    app.router.add_static("/", WEB)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/solver.js")
            out = await page.evaluate(
                """async ([frames, w, h]) => {
                    const { FaceSolver } = await import("/solver.js");
                    const solver = await FaceSolver.load("/api/tracking/solver.json");
                    for (const f of frames.slice(0, 10)) solver.solve(f, w, h, true);  // JIT warm-up
                    solver.previous = null;
                    const times = [], weights = [];
                    for (const f of frames) {
                        const t0 = performance.now();
                        const r = solver.solve(f, w, h, true);
                        times.push(performance.now() - t0);
                        weights.push(Array.from(r.weights));
                    }
                    return { times, weights };
                }""",
                [landmarks.tolist(), size[0], size[1]],
            )
            await browser.close()
    finally:
        await runner.cleanup()
    return out["times"], np.array(out["weights"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="60 frames instead of 300")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    args = p.parse_args(argv)
    n = args.frames or (60 if args.quick else 300)
    landmarks, size, source = record_landmarks(n)
    from vrhub.tracking.solver import default_solver_matrices

    default_solver_matrices()  # build once, outside the timings
    rows: list[tuple[str, list[float], np.ndarray]] = []
    ref_times, ref = time_scipy(landmarks, size, "bvls")
    rows.append(("vrhub python (warm start)", *time_python(landmarks, size, warm=True)))
    rows.append(("vrhub python, cold start", *time_python(landmarks, size, warm=False)))
    if not args.no_browser:
        js = asyncio.run(time_js(landmarks, size))
        if isinstance(js, str):
            print(f"(browser skipped: {js})")
        else:
            rows.append(("vrhub js (chromium, solver.js)", *js))
    rows.append(("baseline: scipy lsq_linear bvls", ref_times, ref))
    rows.append(("baseline: scipy lsq_linear trf", *time_scipy(landmarks, size, "trf")))
    print(f"Face solve per frame, {len(landmarks)} frames of {source}, {size[0]}x{size[1]}\n")
    print("| method | median ms | p90 ms | max abs weight diff vs bvls |")
    print("|---|---:|---:|---:|")
    for name, times, weights in rows:
        p90 = float(np.percentile(times, 90))
        diff = float(np.abs(weights - ref)[:, default_solver_matrices().solved].max())
        print(f"| {name} | {statistics.median(times):.3f} | {p90:.3f} | {diff:.1e} |")
    print("\n(pose removal is included in the vrhub rows and excluded from the scipy rows; "
          "gaze and tongueOut are not part of the least squares and are left out of the comparison)")  # fmt: skip
    print(json.dumps({"frames": len(landmarks), "source": source}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
