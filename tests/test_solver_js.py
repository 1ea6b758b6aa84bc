"""The browser's solver (vrhub/web/solver.js) gives the same weights and pose as Python's on the
same recorded landmarks (mediapipe on a real talking-face video), run in Debian's Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from browser_testing import chromium

from vrhub.api.tracking import setup_tracking_routes
from vrhub.tracking.solver import FaceSolver, default_solver_matrices, solver_matrices_from_dict

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDEO = SHARED / "data" / "video" / "grid_webcam_loop.mp4"
WEB = Path(__file__).resolve().parents[1] / "vrhub" / "web"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def recorded() -> tuple[np.ndarray, tuple[int, int]]:
    """(60, 478, 3) normalised landmarks from the first 60 frames of the video, and the image size
    (frame 55 needs the active-set finisher when solved from a cold start)."""
    if not VIDEO.is_file():
        pytest.skip("../shared/data/video is not present")
    from vrhub.tracking.tracker import iter_landmarks

    frames = [f for f in iter_landmarks(str(VIDEO), max_frames=60) if f is not None]
    assert len(frames) >= 55
    return np.stack([f.landmarks for f in frames]), frames[0].image_size


async def serve_web(aiohttp_server):  # type: ignore[no-untyped-def]
    app = web.Application()
    setup_tracking_routes(app)
    app.router.add_static("/", WEB)
    return await aiohttp_server(app)


async def test_js_solver_matches_python_on_recorded_landmarks(aiohttp_server, recorded) -> None:
    landmarks, (width, height) = recorded
    server = await serve_web(aiohttp_server)
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(str(server.make_url("/solver.js")))
        js = await page.evaluate(
            """async ([frames, width, height]) => {
                const { FaceSolver } = await import("/solver.js");
                const solver = await FaceSolver.load("/api/tracking/solver.json");
                const out = { weights: [], quaternions: [], positions: [], calibrated: [], cold: [] };
                for (const f of frames) {
                    const r = solver.solve(f, width, height, true);
                    out.weights.push(Array.from(r.weights));
                    out.quaternions.push(r.pose.quaternion);
                    out.positions.push(r.pose.positionMm);
                }
                solver.warmStart = false;
                solver.previous = null;
                for (const f of frames) out.cold.push(Array.from(solver.solve(f, width, height, true).weights));
                solver.warmStart = true;
                solver.calibrateNeutral(frames.slice(0, 10), width, height, true);
                for (const f of frames) out.calibrated.push(Array.from(solver.solve(f, width, height, true).weights));
                const t0 = performance.now();
                for (let k = 0; k < 3; k++) for (const f of frames) solver.solve(f, width, height, true);
                out.ms = (performance.now() - t0) / (3 * frames.length);
                return out;
            }""",
            [landmarks.tolist(), width, height],
        )
        assert not errors, errors
    # Python on the JSON's (rounded) matrices, exactly what the browser received.
    import json

    from vrhub.tracking.solver import solver_matrices_json

    matrices = solver_matrices_from_dict(json.loads(solver_matrices_json(default_solver_matrices())))
    solver = FaceSolver(matrices)
    py = [solver.solve(f, (width, height), normalised=True) for f in landmarks]
    py_w = np.array([r.weights for r in py])
    js_w = np.array(js["weights"])
    assert js_w.shape == py_w.shape == (len(landmarks), 52)
    assert np.abs(js_w - py_w).max() < 1e-3
    assert np.abs(np.array(js["quaternions"]) - np.array([r.pose.quaternion for r in py])).max() < 1e-6
    assert np.abs(np.array(js["positions"]) - np.array([r.pose.position_mm for r in py])).max() < 1e-3
    cold = FaceSolver(matrices, warm_start=False)
    cold_w = np.array([cold.solve(f, (width, height), normalised=True).weights for f in landmarks])
    assert np.abs(cold_w - py_w).max() < 1e-6  # the minimiser does not depend on the start
    assert np.abs(np.array(js["cold"]) - cold_w).max() < 1e-3
    solver.calibrate_neutral(landmarks[:10], (width, height), normalised=True)
    cal = np.array([solver.solve(f, (width, height), normalised=True).weights for f in landmarks])
    assert np.abs(np.array(js["calibrated"]) - cal).max() < 1e-3
    # the recorded speaker talks: the weights are not all zero and not constant
    assert py_w.std(axis=0).max() > 0.02
