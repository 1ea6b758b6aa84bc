"""The evaluation harness: CIEDE2000, NME, the renderer's pose and the ``vrhub eval`` report."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vrhub.evaluation.likeness import detect_landmarks, nme
from vrhub.evaluation.render import MeshLayer, avatar_layers, glb_layers, photo_camera, render
from vrhub.evaluation.robustness import (
    albedo_difference,
    ciede2000,
    face_uv_mask,
    gamma,
    geometry_difference,
    relit_variants,
    video_frames,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PHOTO = SHARED / "faces" / "congress_G000571.jpg"
OTHER = SHARED / "faces" / "grid_sbia1a_frame005.png"

#: Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
#: supplementary test data, and mathematical observations", Table 1: (Lab1, Lab2, ΔE00).
SHARMA_PAIRS = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def _need_shared() -> None:
    if not PHOTO.exists() or not OTHER.exists():
        pytest.skip("shared data not present")


def _photo(path: Path):
    from vrhub.photo_io import decode_photo

    return decode_photo(path.read_bytes(), name=path.name)


@pytest.fixture(scope="module")
def built():
    _need_shared()
    from vrhub.pipeline.plugins import default_registry
    from vrhub.pipeline.run import run_pipeline

    photo = _photo(PHOTO)
    return photo, run_pipeline(photo, default_registry().select())


def test_rgb_to_lab_matches_published_srgb_values_and_repeats_exactly() -> None:
    from vrhub.evaluation.robustness import rgb_to_lab

    # sRGB primaries and white in CIELAB (D65), as published (e.g. Lindbloom's calculator)
    rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    expected = np.array(
        [[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [100.0, 0.0, 0.0]]
    )
    np.testing.assert_allclose(rgb_to_lab(rgb), expected, atol=0.05)
    noise = np.random.default_rng(3).integers(0, 256, (300, 300, 3)).astype(np.uint8)
    assert np.array_equal(rgb_to_lab(noise), rgb_to_lab(noise.copy()))


def test_ciede2000_matches_sharmas_published_pairs() -> None:
    lab1 = np.array([p[0] for p in SHARMA_PAIRS])
    lab2 = np.array([p[1] for p in SHARMA_PAIRS])
    expected = np.array([p[2] for p in SHARMA_PAIRS])
    np.testing.assert_allclose(ciede2000(lab1, lab2), expected, atol=1e-4)
    # symmetric, zero on identical colours, and vectorised over any leading shape
    np.testing.assert_allclose(ciede2000(lab2, lab1), expected, atol=1e-4)
    assert np.all(ciede2000(lab1.reshape(2, 17, 3), lab1.reshape(2, 17, 3)) == 0)


def test_nme_ignores_a_similarity_transform_and_separates_two_people(built) -> None:
    _, result = built
    lm = result.face.landmarks
    a = np.radians(12.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = lm.copy()
    moved[:, :2] = 0.7 * lm[:, :2] @ rot.T + np.array([40.0, -25.0])
    assert nme(moved, lm) < 1e-9
    other = detect_landmarks(_photo(OTHER).pixels)
    assert other is not None
    assert nme(other, lm) > 0.02 and nme(lm, other) > 0.02


def test_renderer_puts_the_face_where_the_photos_face_is(built) -> None:
    photo, result = built
    head = result.avatar.head
    face_ids = np.zeros(len(head.vertices), bool)
    face_ids[head.regions["face"]] = True
    tris = np.asarray(head.triangles, np.int64)
    face_only = MeshLayer(
        np.asarray(head.vertices, np.float64),
        tris[face_ids[tris].all(1)],
        np.asarray(head.uvs, np.float64),
        head.albedo,
    )
    cam = photo_camera(result.face, head.vertices)
    drawn = render([face_only], cam, (photo.width, photo.height), supersample=1).coverage > 0.5
    hull = cv2.convexHull(np.round(result.face.landmarks[:468, :2]).astype(np.int32))
    target = np.zeros((photo.height, photo.width), np.uint8)
    cv2.fillConvexPoly(target, hull, 1)
    target = target.astype(bool)
    iou = (drawn & target).sum() / (drawn | target).sum()
    assert iou > 0.85, f"face mask IoU {iou:.3f}"


def test_glb_and_in_memory_avatar_render_the_same_silhouette(built) -> None:
    photo, result = built
    size = (photo.width, photo.height)
    mem = avatar_layers(result.avatar)
    glb = glb_layers(result.files["glb"])
    assert [lay.name for lay in glb] == [lay.name for lay in mem]
    cam = photo_camera(result.face, mem[0].vertices)
    a = render(mem, cam, size, supersample=1).coverage > 0.5
    b = render(glb, cam, size, supersample=1).coverage > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.97


def test_robustness_metrics_are_zero_for_the_same_head_and_grow_with_a_change(built) -> None:
    from dataclasses import replace

    _, result = built
    head = result.avatar.head
    assert geometry_difference(head, head) < 1e-12
    assert albedo_difference(head, head) == 0.0
    mask = face_uv_mask(head, head.albedo.shape[0])
    assert 0.05 < mask.mean() < 0.9  # the face island is a real part of the atlas
    darker = replace(head, albedo=gamma(head.albedo, 1.6))
    assert albedo_difference(head, darker) > 5.0
    bumped = np.asarray(head.vertices, np.float64).copy()
    bumped[head.regions["face"][:100], 2] += 0.003  # 3 mm on part of the face
    assert geometry_difference(head, replace(head, vertices=bumped)) > 0.005
    assert set(relit_variants(np.zeros((4, 4, 3), np.uint8))) == {
        "shading gradient",
        "gamma 0.6",
        "gamma 1.6",
        "colour cast",
    }


def test_video_frames_decode_at_the_requested_indices() -> None:
    video = SHARED / "video" / "grid_bbaf2n.mpg"
    if not video.exists():
        pytest.skip("shared data not present")
    frames = video_frames(video, (0, 10, 100000))
    assert sorted(frames) == [0, 10]
    assert frames[0].shape == (288, 360, 3) and frames[0].dtype == np.uint8
    assert np.abs(frames[0].astype(int) - frames[10].astype(int)).mean() > 0.1


def test_vrhub_eval_writes_the_report_and_contact_sheet(tmp_path, capsys) -> None:
    _need_shared()
    from PIL import Image

    from vrhub.cli import main

    rc = main(
        [
            "eval",
            str(PHOTO),
            str(OTHER),
            str(SHARED / "faces" / "labels.csv"),
            "--out",
            str(tmp_path),
            "--no-robustness",
            "-q",
        ]
    )
    assert rc == 0
    report = (tmp_path / "report.md").read_text()
    for heading in (
        "## Likeness",
        "## Identification rank matrix",
        "## Timing",
        "contact_sheet.png",
        "labels.csv",
    ):
        assert heading in report
    assert "congress_G000571.jpg" in report and "grid_sbia1a_frame005.png" in report
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.size == (800, 2 * (240 + 18))
    out = capsys.readouterr().out
    assert "identified:" in out and "NME %" in out


def test_quality_report_adds_a_measured_nme_to_the_stage_report(built) -> None:
    import json

    from vrhub.evaluation.likeness import quality_report

    _, result = built
    q = quality_report(result.avatar, result.face)
    json.dumps(q)
    assert 0.0 < q["nme_percent"] < 5.0
    assert q["yaw"] == result.avatar.head.quality["yaw"]
    assert isinstance(q["warnings"], list)


def test_stranger_baseline_and_same_speaker_rows_measure_real_differences(built) -> None:
    from dataclasses import replace

    from vrhub.evaluation.robustness import stranger_baseline

    _, result = built
    head = result.avatar.head
    v = np.asarray(head.vertices, np.float64).copy()
    v[:, 0] *= 1.08  # a wider face
    other = replace(head, vertices=v, albedo=gamma(head.albedo, 1.3))
    rows = stranger_baseline(["a", "b"], [head, other])
    assert [r.source for r in rows] == ["a", "b"]
    assert all(r.geometry > 0.005 and r.albedo_de > 1.0 for r in rows)
    assert "nearest: b" in rows[0].note
