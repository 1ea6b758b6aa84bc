"""The tracking solver: landmarks -> 52 ARKit weights + head pose (vrhub.tracking.solver)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from vrhub.pipeline.types import ARKIT_BLENDSHAPES
from vrhub.tracking.solver import (
    GAZE_SHAPES,
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    LEFT_IRIS,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    RIGHT_IRIS,
    UNOBSERVABLE_SHAPES,
    FaceSolver,
    SolverBasis,
    build_solver_matrices,
    default_landmark_weights,
    default_solver_basis,
    quaternion_to_matrix,
    rotation_to_euler_degrees,
    solve_box_qp,
    solver_matrices_from_dict,
    solver_matrices_json,
)

IMAGE = (640, 480)


@pytest.fixture(scope="module")
def basis() -> SolverBasis:
    return default_solver_basis()


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Ry(yaw) Rx(pitch) Rz(roll), degrees."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def render_landmarks(
    local: np.ndarray, r: np.ndarray, scale: float = 14.0, centre=(330.0, 250.0), normalised: bool = False
) -> np.ndarray:
    """Template-frame points -> mediapipe-style image landmarks (x right, y down, z away from camera)."""
    viewer = scale * local @ r.T + np.array([centre[0], -centre[1], 0.0])
    lm = np.stack([viewer[:, 0], -viewer[:, 1], -viewer[:, 2]], axis=1)
    if normalised:
        lm = lm / np.array([IMAGE[0], IMAGE[1], IMAGE[0]])
    return lm


def expression(basis: SolverBasis, weights: np.ndarray) -> np.ndarray:
    return basis.neutral + np.tensordot(weights, basis.deltas, axes=1)


def sparse_weights(rng: np.random.Generator, k: int = 5) -> np.ndarray:
    solvable = [i for i, n in enumerate(ARKIT_BLENDSHAPES) if n not in GAZE_SHAPES + UNOBSERVABLE_SHAPES]
    w = np.zeros(52)
    w[rng.choice(solvable, size=k, replace=False)] = rng.uniform(0.2, 0.9, size=k)
    return w


def test_solver_recovers_known_weights_from_landmarks_made_with_the_rig_basis(basis):
    m = build_solver_matrices(basis, regularisation=1e-5)
    rng = np.random.default_rng(7)
    errors = []
    for trial in range(12):
        w = sparse_weights(rng)
        r = rotation(*rng.uniform(-25, 25, size=3))
        lm = render_landmarks(expression(basis, w), r, scale=rng.uniform(8, 20), normalised=trial % 2 == 0)
        result = FaceSolver(m).solve(lm, IMAGE)
        errors.append(np.abs(result.weights - w).max())
    assert np.median(errors) < 0.03, errors
    assert max(errors) < 0.15, errors


def test_default_regularisation_still_finds_the_dominant_shapes(basis):
    solver = FaceSolver(build_solver_matrices(basis))
    for name, value in (
        ("jawOpen", 0.7),
        ("eyeBlinkLeft", 1.0),
        ("mouthSmileRight", 0.8),
        ("browInnerUp", 0.6),
    ):
        w = np.zeros(52)
        w[ARKIT_BLENDSHAPES.index(name)] = value
        result = solver.solve(render_landmarks(expression(basis, w), rotation(10, -5, 3)), IMAGE)
        got = result.as_dict()
        assert got[name] > 0.6 * value, (name, got[name])
        others = [v for n, v in got.items() if n != name]
        assert max(others) < 0.35 * value, (name, sorted(got.items(), key=lambda kv: -kv[1])[:4])


def test_eye_blink_left_is_the_subjects_own_left(basis):
    """Closing the eye on the image's right side (the subject's left, unmirrored) is eyeBlinkLeft."""
    solver = FaceSolver(build_solver_matrices(basis))
    w = np.zeros(52)
    w[ARKIT_BLENDSHAPES.index("eyeBlinkLeft")] = 1.0
    lm = render_landmarks(expression(basis, w), np.eye(3))
    assert lm[LEFT_EYE_OUTER, 0] > lm[RIGHT_EYE_OUTER, 0]  # subject's left eye is on the image's right
    got = solver.solve(lm, IMAGE).as_dict()
    assert got["eyeBlinkLeft"] > 0.7 and got["eyeBlinkRight"] < 0.1


def test_weights_respect_bounds_and_match_scipy_lsq_linear(basis):
    m = build_solver_matrices(basis)
    solver = FaceSolver(m, warm_start=False)
    rng = np.random.default_rng(3)
    for _ in range(5):
        # exaggerated and negative expressions push many weights against both bounds
        w = rng.uniform(-1.5, 2.5, size=52)
        lm = render_landmarks(expression(basis, w), rotation(*rng.uniform(-20, 20, size=3)))
        result = solver.solve(lm, IMAGE)
        assert result.weights.min() >= 0.0 and result.weights.max() <= 1.0
        assert (result.weights == 0).any() and (result.weights == 1).any()
        local, _ = solver.pose_free(lm, IMAGE)
        residual = (local[:468] - m.neutral).reshape(-1)
        cw = np.sqrt((default_landmark_weights()[:, None] * np.array([1.0, 1.0, m.z_weight])).reshape(-1))
        b = basis.deltas.reshape(52, -1).T * m.solved[None, :]
        a = np.vstack([b * cw[:, None], math.sqrt(m.regularisation) * np.eye(52)])
        ref = lsq_linear(a, np.concatenate([residual * cw, np.zeros(52)]), bounds=(0, 1), tol=1e-12).x
        assert np.abs(ref - result.weights)[m.solved].max() < 1e-5


def test_box_qp_converges_from_any_start_to_the_same_minimiser():
    rng = np.random.default_rng(11)
    a = rng.normal(size=(80, 20))
    gram = a.T @ a + 1e-3 * np.eye(20)
    rhs = rng.normal(size=20) * 5
    lo, hi = np.zeros(20), np.ones(20)
    w1, _ = solve_box_qp(gram, rhs, lo, hi)
    w2, _ = solve_box_qp(gram, rhs, lo, hi, start=np.ones(20))
    w3, _ = solve_box_qp(gram, rhs, lo, hi, newton_iter=0)  # the active-set finisher alone
    assert np.allclose(w1, w3, atol=1e-8)
    assert np.allclose(w1, w2, atol=1e-8)
    # the same problem written as least squares: rhs = Aᵀb  => solve for b by lstsq
    b = np.linalg.lstsq(np.vstack([a, math.sqrt(1e-3) * np.eye(20)]).T, rhs, rcond=None)[0]
    ref = lsq_linear(np.vstack([a, math.sqrt(1e-3) * np.eye(20)]), b, bounds=(0, 1), tol=1e-12).x
    assert np.allclose(w1, ref, atol=1e-6)


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (0, -20, 0), (0, 0, 15), (-25, 15, -10)])
def test_head_pose_is_recovered(basis, angles):
    solver = FaceSolver(build_solver_matrices(basis))
    r = rotation(*angles)
    result = solver.solve(render_landmarks(basis.neutral, r, scale=12.0), IMAGE)
    assert np.abs(result.pose.rotation - r).max() < 1e-6
    assert np.allclose(quaternion_to_matrix(result.pose.quaternion), r, atol=1e-6)
    assert np.allclose(rotation_to_euler_degrees(result.pose.rotation), angles, atol=1e-4)
    assert result.pose.scale == pytest.approx(12.0)
    assert result.weights.max() < 1e-6


def test_yaw_to_the_subjects_left_is_a_positive_rotation_about_up(basis):
    """A head turned toward its own left moves its nose tip toward the image's right (unmirrored)."""
    solver = FaceSolver(build_solver_matrices(basis))
    lm = render_landmarks(basis.neutral, rotation(20, 0, 0))
    front = render_landmarks(basis.neutral, np.eye(3))
    assert lm[1, 0] > front[1, 0]  # landmark 1 = nose tip
    yaw, _, _ = rotation_to_euler_degrees(solver.solve(lm, IMAGE).pose.rotation)
    assert yaw == pytest.approx(20, abs=1e-4)


def test_head_position_follows_the_face_in_the_image(basis):
    solver = FaceSolver(build_solver_matrices(basis))
    left = solver.solve(render_landmarks(basis.neutral, np.eye(3), centre=(200, 240)), IMAGE).pose.position_mm
    right = solver.solve(
        render_landmarks(basis.neutral, np.eye(3), centre=(440, 240)), IMAGE
    ).pose.position_mm
    near = solver.solve(render_landmarks(basis.neutral, np.eye(3), scale=24.0), IMAGE).pose.position_mm
    assert left[0] < 0 < right[0]
    assert near[2] > left[2]  # bigger face = nearer (z is negative in front of the camera)


def test_gaze_comes_from_the_iris(basis):
    """478 landmarks: irises moved toward the subject's left = eyeLookOutLeft + eyeLookInRight."""
    solver = FaceSolver(build_solver_matrices(basis))
    local = np.zeros((478, 3))
    local[:468] = basis.neutral
    half = {}
    for iris, outer, inner in (
        (LEFT_IRIS, LEFT_EYE_OUTER, LEFT_EYE_INNER),
        (RIGHT_IRIS, RIGHT_EYE_OUTER, RIGHT_EYE_INNER),
    ):
        mid = 0.5 * (basis.neutral[outer] + basis.neutral[inner])
        half[iris] = 0.5 * np.linalg.norm(basis.neutral[outer, :2] - basis.neutral[inner, :2])
        local[iris : iris + 5] = mid
    straight = solver.solve(render_landmarks(local, np.eye(3)), IMAGE).as_dict()
    assert all(straight[n] < 1e-9 for n in GAZE_SHAPES)
    for iris in (LEFT_IRIS, RIGHT_IRIS):
        local[iris : iris + 5, 0] += 0.2 * half[iris]
    got = solver.solve(render_landmarks(local, rotation(15, 5, 0)), IMAGE).as_dict()
    assert got["eyeLookOutLeft"] == pytest.approx(0.5, abs=0.02)
    assert got["eyeLookInRight"] == pytest.approx(0.5, abs=0.02)
    assert got["eyeLookInLeft"] == 0 and got["eyeLookOutRight"] == 0
    for iris in (LEFT_IRIS, RIGHT_IRIS):
        local[iris : iris + 5, 1] -= 0.17 * half[iris]
    got = solver.solve(render_landmarks(local, np.eye(3)), IMAGE).as_dict()
    assert got["eyeLookDownLeft"] == pytest.approx(0.5, abs=0.02)
    assert got["eyeLookDownRight"] == pytest.approx(0.5, abs=0.02)


def test_calibration_removes_a_persons_neutral_offset(basis):
    m = build_solver_matrices(basis)
    rng = np.random.default_rng(5)
    # a face that differs from the template the way people do: wider eyes, a lower lip, some noise
    look = np.zeros(52)
    for name, value in (
        ("eyeWideLeft", 0.4),
        ("eyeWideRight", 0.4),
        ("mouthLowerDownLeft", 0.3),
        ("browInnerUp", 0.3),
    ):
        look[ARKIT_BLENDSHAPES.index(name)] = value
    noise = 0.03 * rng.normal(size=(468, 3)) * (m.procrustes_weights == 0)[:, None]
    identity = basis.neutral + np.tensordot(look, basis.deltas, axes=1) + noise
    solver = FaceSolver(m)
    before = solver.solve(render_landmarks(identity, np.eye(3)), IMAGE).weights
    solver.calibrate_neutral([render_landmarks(identity, rotation(a, 0, 0)) for a in (-5, 0, 5)], IMAGE)
    relaxed = solver.solve(render_landmarks(identity, rotation(12, 4, 0)), IMAGE).weights
    assert before.max() > 0.2
    assert relaxed.max() < 0.02
    w = np.zeros(52)
    w[ARKIT_BLENDSHAPES.index("jawOpen")] = 0.6
    opened = identity + np.tensordot(w, basis.deltas, axes=1)
    got = solver.solve(render_landmarks(opened, np.eye(3)), IMAGE).as_dict()
    assert got["jawOpen"] == pytest.approx(0.6, abs=0.12)
    solver.reset_calibration()
    assert np.abs(solver.solve(render_landmarks(identity, np.eye(3)), IMAGE).weights - before).max() < 1e-6


def test_json_matrices_give_the_same_weights(basis):
    m = build_solver_matrices(basis)
    text = solver_matrices_json(m)
    data = json.loads(text)
    assert data["format"] == "vrhub-solver/1"
    assert data["names"] == list(ARKIT_BLENDSHAPES)
    assert len(data["projector"]) == 52 * 468 * 3 and len(data["gram"]) == 52 * 52
    again = solver_matrices_from_dict(data)
    rng = np.random.default_rng(2)
    lm = render_landmarks(expression(basis, sparse_weights(rng)), rotation(10, 10, 0), normalised=True)
    a = FaceSolver(m).solve(lm, IMAGE).weights
    b = FaceSolver(again).solve(lm, IMAGE).weights
    assert np.abs(a - b).max() < 1e-6


def test_bad_landmarks_are_a_readable_error(basis):
    solver = FaceSolver(build_solver_matrices(basis))
    with pytest.raises(ValueError, match="468 or 478"):
        solver.solve(np.zeros((68, 2)), IMAGE)
