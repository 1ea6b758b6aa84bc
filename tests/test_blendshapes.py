"""Every ARKit blendshape and viseme does what its name says, measured on landmarks.

Heads: the canonical test head, and a head whose landmarks come from a real photo (pose removed)
so the shapes are checked on a face that is not the canonical one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from head_fixture import FACES, landmarks_from_photo, make_head

from vrhub.geometry.blendshapes import BLENDSHAPE_NAMES, compute_blendshapes, landmark_blendshape_basis
from vrhub.pipeline.types import ARKIT_BLENDSHAPES, VISEMES


class Posed:
    """A head with some blendshape weights applied; measurement helpers in head units (cm of
    this face: eye-corner span / 8.89)."""

    def __init__(self, head, deltas, weights: dict[str, float]):
        self.rest = head.vertices.astype(np.float64)
        v = self.rest.copy()
        for name, w in weights.items():
            v += w * deltas[BLENDSHAPE_NAMES.index(name)]
        self.v = v
        self.cm = np.linalg.norm(self.rest[263] - self.rest[33]) / 8.89
        self.regions = head.regions

    def d(self, i: int) -> np.ndarray:
        """Displacement of vertex i in this face's cm."""
        return (self.v[i] - self.rest[i]) / self.cm

    def gap(self, a: int, b: int, v: np.ndarray | None = None) -> float:
        v = self.v if v is None else v
        return float(np.linalg.norm(v[a] - v[b]) / self.cm)

    def rest_gap(self, a: int, b: int) -> float:
        return self.gap(a, b, self.rest)

    def iris(self, side: str) -> np.ndarray:
        """Cornea displacement (cm): the eyeball vertex that was frontmost at rest."""
        ball = self.regions[f"eyeball_{side}"]
        front = ball[np.argmax(self.rest[ball, 2])]
        return self.d(front)

    def tongue_tip(self) -> np.ndarray:
        t = self.regions["tongue"]
        return self.d(t[np.argmax(self.rest[t, 2])])

    def width(self) -> float:
        return self.gap(61, 291)


SIDES = {"Left": ("L", 1.0, {"upper": 386, "lower": 374, "corner": 291, "other_corner": 61, "brow_outer": 300, "brow_other": 70, "brow": 334, "lipU": 270, "lipL": 321, "lipU_other": 40, "lipL_other": 91, "wing": 294, "wing_other": 64, "cheek": 352, "cheek_other": 123}),
         "Right": ("R", -1.0, {"upper": 159, "lower": 145, "corner": 61, "other_corner": 291, "brow_outer": 70, "brow_other": 300, "brow": 105, "lipU": 40, "lipL": 91, "lipU_other": 270, "lipL_other": 321, "wing": 64, "wing_other": 294, "cheek": 123, "cheek_other": 352})}  # fmt: skip
OTHER_LID = {"Left": (159, 145), "Right": (386, 374)}


def _sided_checks() -> dict[str, Callable[[Callable[..., Posed]], None]]:
    checks: dict[str, Callable] = {}
    for Side, (side, s, k) in SIDES.items():
        ou, ol = OTHER_LID[Side]
        other = "R" if side == "L" else "L"

        def blink(P, Side=Side, k=k, ou=ou, ol=ol):
            p = P({f"eyeBlink{Side}": 1})
            assert (
                p.gap(k["upper"], k["lower"]) < 0.2 * p.rest_gap(k["upper"], k["lower"])
                and abs(p.gap(ou, ol) - p.rest_gap(ou, ol)) < 0.02
            ), "blink closes this eye and leaves the other open"

        def look(direction, Side=Side, side=side, other=other, s=s):
            def check(P):
                p = P({f"eyeLook{direction}{Side}": 1})
                d = p.iris(side)
                want = {"Down": (1, -1), "Up": (1, 1), "In": (0, -s), "Out": (0, s)}[direction]
                assert d[want[0]] * want[1] > 0.3 and np.linalg.norm(p.iris(other)) < 1e-6, (
                    f"eyeLook{direction}{Side}: cornea moves {d}"
                )

            return check

        def squint(P, Side=Side, k=k, ou=ou, ol=ol):
            p = P({f"eyeSquint{Side}": 1})
            assert (
                p.d(k["lower"])[1] > 0.08
                and p.gap(k["upper"], k["lower"]) < 0.8 * p.rest_gap(k["upper"], k["lower"])
                and abs(p.gap(ou, ol) - p.rest_gap(ou, ol)) < 0.02
            )

        def wide(P, Side=Side, k=k):
            p = P({f"eyeWide{Side}": 1})
            assert p.gap(k["upper"], k["lower"]) > 1.3 * p.rest_gap(k["upper"], k["lower"])

        def jaw_side(P, Side=Side, s=s):
            p = P({f"jaw{Side}": 1})
            assert p.d(152)[0] * s > 0.3 and abs(p.d(10)[0]) < 1e-6

        def mouth_side(P, Side=Side, s=s):
            p = P({f"mouth{Side}": 1})
            assert p.d(13)[0] * s > 0.3 and p.d(14)[0] * s > 0.3 and abs(p.d(152)[0]) < 0.3

        def smile(P, Side=Side, k=k):
            p = P({f"mouthSmile{Side}": 1})
            assert p.d(k["corner"])[1] > 0.4 and abs(p.d(k["other_corner"])[1]) < 0.05

        def frown(P, Side=Side, k=k):
            p = P({f"mouthFrown{Side}": 1})
            assert p.d(k["corner"])[1] < -0.3 and abs(p.d(k["other_corner"])[1]) < 0.05

        def dimple(P, Side=Side, k=k):
            p = P({f"mouthDimple{Side}": 1})
            assert p.d(k["corner"])[2] < -0.25 and abs(p.d(k["other_corner"])[2]) < 0.05

        def stretch(P, Side=Side, k=k, s=s):
            p = P({f"mouthStretch{Side}": 1})
            assert p.d(k["corner"])[0] * s > 0.3 and p.width() > p.gap(61, 291, p.rest) + 0.3

        def press(P, Side=Side, k=k):
            p = P({f"mouthPress{Side}": 1})
            this = p.gap(k["lipU"], k["lipL"]) - p.rest_gap(k["lipU"], k["lipL"])
            that = p.gap(k["lipU_other"], k["lipL_other"]) - p.rest_gap(k["lipU_other"], k["lipL_other"])
            assert this < -0.1 and this < 3 * that

        def lower_down(P, Side=Side, k=k):
            p = P({f"mouthLowerDown{Side}": 1})
            assert p.d(k["lipL"])[1] < -0.25 and p.d(k["lipL"])[1] < 2 * p.d(k["lipL_other"])[1]

        def upper_up(P, Side=Side, k=k):
            p = P({f"mouthUpperUp{Side}": 1})
            assert p.d(k["lipU"])[1] > 0.25 and p.d(k["lipU"])[1] > 2 * p.d(k["lipU_other"])[1]

        def brow_down(P, Side=Side, k=k):
            p = P({f"browDown{Side}": 1})
            assert p.d(k["brow"])[1] < -0.25 and abs(p.d(k["brow_other"])[1]) < 1e-3

        def brow_outer(P, Side=Side, k=k):
            p = P({f"browOuterUp{Side}": 1})
            assert p.d(k["brow_outer"])[1] > 0.35 and abs(p.d(k["brow_other"])[1]) < 1e-3

        def cheek_squint(P, Side=Side, k=k):
            p = P({f"cheekSquint{Side}": 1})
            assert p.d(k["cheek"])[1] > 0.1 and abs(p.d(k["cheek_other"])[1]) < 1e-3

        def sneer(P, Side=Side, k=k):
            p = P({f"noseSneer{Side}": 1})
            assert p.d(k["wing"])[1] > 0.2 and p.d(k["wing"])[1] > 3 * p.d(k["wing_other"])[1]

        checks |= {
            f"eyeBlink{Side}": blink,
            f"eyeSquint{Side}": squint,
            f"eyeWide{Side}": wide,
            f"jaw{Side}": jaw_side,
            f"mouth{Side}": mouth_side,
            f"mouthSmile{Side}": smile,
            f"mouthFrown{Side}": frown,
            f"mouthDimple{Side}": dimple,
            f"mouthStretch{Side}": stretch,
            f"mouthPress{Side}": press,
            f"mouthLowerDown{Side}": lower_down,
            f"mouthUpperUp{Side}": upper_up,
            f"browDown{Side}": brow_down,
            f"browOuterUp{Side}": brow_outer,
            f"cheekSquint{Side}": cheek_squint,
            f"noseSneer{Side}": sneer,
        }
        for direction in ("Down", "In", "Out", "Up"):
            checks[f"eyeLook{direction}{Side}"] = look(direction)
    return checks


def _jaw_forward(P):
    p = P({"jawForward": 1})
    assert p.d(152)[2] > 0.3 and abs(p.d(10)[2]) < 1e-6


def _jaw_open(P):
    p = P({"jawOpen": 1})
    assert p.d(152)[1] < -1.2 and p.gap(13, 14) > p.rest_gap(13, 14) + 1.0 and np.linalg.norm(p.d(0)) < 0.05


def _mouth_close(P):
    opened = P({"jawOpen": 1})
    closed = P({"jawOpen": 1, "mouthClose": 1})
    assert closed.gap(13, 14) < opened.rest_gap(13, 14) + 0.35 * (
        opened.gap(13, 14) - opened.rest_gap(13, 14)
    )


def _funnel(P):
    p = P({"mouthFunnel": 1})
    assert (
        p.d(0)[2] > 0.3
        and p.d(17)[2] > 0.3
        and p.gap(13, 14) > p.rest_gap(13, 14) + 0.3
        and p.width() < p.gap(61, 291, p.rest)
    )


def _pucker(P):
    p = P({"mouthPucker": 1})
    assert (
        p.width() < 0.8 * p.gap(61, 291, p.rest)
        and p.d(0)[2] > 0.3
        and p.gap(13, 14) < p.rest_gap(13, 14) + 0.1
    )


def _roll_lower(P):
    p = P({"mouthRollLower": 1})
    assert p.d(17)[2] < -0.2 and np.linalg.norm(p.d(0)) < 0.05


def _roll_upper(P):
    p = P({"mouthRollUpper": 1})
    assert p.d(0)[2] < -0.2 and np.linalg.norm(p.d(17)) < 0.05


def _shrug_lower(P):
    p = P({"mouthShrugLower": 1})
    assert p.d(17)[1] > 0.15 and p.d(200)[1] > 0.1 and np.linalg.norm(p.d(0)) < 0.05


def _shrug_upper(P):
    p = P({"mouthShrugUpper": 1})
    assert p.d(0)[1] > 0.15 and np.linalg.norm(p.d(17)) < 0.05


def _brow_inner_up(P):
    p = P({"browInnerUp": 1})
    assert p.d(336)[1] > 0.35 and p.d(107)[1] > 0.35 and p.d(336)[1] > 2 * p.d(300)[1]


def _cheek_puff(P):
    p = P({"cheekPuff": 1})
    assert p.d(425)[0] > 0.2 and p.d(205)[0] < -0.2


def _tongue_out(P):
    p = P({"tongueOut": 1})
    assert p.tongue_tip()[2] > 1.5 and p.gap(13, 14) > p.rest_gap(13, 14) + 0.2


def _viseme(name: str) -> Callable:
    def check(P):
        p = P({name: 1})
        width = p.width() - p.gap(61, 291, p.rest)
        opened = p.gap(13, 14) - p.rest_gap(13, 14)
        moved = np.abs(p.v - p.rest).max() / p.cm
        ok = {
            "viseme_sil": moved < 1e-6,
            "viseme_PP": opened < 0.05 and p.d(0)[2] < 0 and p.d(17)[2] < 0,
            "viseme_FF": p.d(17)[2] < -0.15,
            "viseme_TH": p.tongue_tip()[2] > 0.5,
            "viseme_DD": opened > 0.3,
            "viseme_kk": opened > 0.4 and width > 0,
            "viseme_CH": p.d(0)[2] > 0.2 and width < 0,
            "viseme_SS": width > 0.2 and opened < 0.5,
            "viseme_nn": opened > 0.2,
            "viseme_RR": p.d(0)[2] > 0.2 and width < 0,
            "viseme_aa": opened > 1.0,
            "viseme_E": opened > 0.4 and width > 0.2,
            "viseme_I": width > 0.3,
            "viseme_O": opened > 0.5 and width < -0.1,
            "viseme_U": width < -0.4 and p.d(0)[2] > 0.3,
        }[name]
        assert ok, f"{name}: open {opened:.2f} width {width:.2f}"

    return check


CHECKS: dict[str, Callable] = {
    **_sided_checks(),
    "jawForward": _jaw_forward,
    "jawOpen": _jaw_open,
    "mouthClose": _mouth_close,
    "mouthFunnel": _funnel,
    "mouthPucker": _pucker,
    "mouthRollLower": _roll_lower,
    "mouthRollUpper": _roll_upper,
    "mouthShrugLower": _shrug_lower,
    "mouthShrugUpper": _shrug_upper,
    "browInnerUp": _brow_inner_up,
    "cheekPuff": _cheek_puff,
    "tongueOut": _tongue_out,
    **{v: _viseme(v) for v in VISEMES},
}


def test_every_shape_has_a_measurement():
    assert set(CHECKS) == set(BLENDSHAPE_NAMES) and len(BLENDSHAPE_NAMES) == 67


@pytest.fixture(scope="module")
def canonical_head():
    head = make_head()
    return head, compute_blendshapes(head.vertices, head.regions)[1]


@pytest.fixture(scope="module")
def photo_head():
    path = FACES / "face_recognition_obama.jpg"
    if not path.exists():
        pytest.skip("../shared/data/faces is absent")
    head = make_head(landmarks_from_photo(path))
    return head, compute_blendshapes(head.vertices, head.regions)[1]


@pytest.mark.parametrize("name", BLENDSHAPE_NAMES)
def test_shape_does_what_its_name_says_on_canonical_face(canonical_head, name):
    head, deltas = canonical_head
    CHECKS[name](lambda weights: Posed(head, deltas, weights))


@pytest.mark.parametrize("name", BLENDSHAPE_NAMES)
def test_shape_does_what_its_name_says_on_a_photographed_face(photo_head, name):
    head, deltas = photo_head
    CHECKS[name](lambda weights: Posed(head, deltas, weights))


def test_shapes_are_personalised_not_pasted(canonical_head, photo_head):
    """The same shape differs between two faces beyond a uniform scale (it follows each face)."""
    (h1, d1), (h2, d2) = canonical_head, photo_head
    s1 = np.linalg.norm(h1.vertices[263] - h1.vertices[33])
    s2 = np.linalg.norm(h2.vertices[263] - h2.vertices[33])
    blink = ARKIT_BLENDSHAPES.index("eyeBlinkLeft")
    a, b = d1[blink, :468] / s1, d2[blink, :468] / s2
    assert np.abs(a - b).max() > 0.02 * np.abs(a).max()
    # blink closes each face's own lid gap: upper lid lands near its own lower-lid partner
    for head, d in ((h1, d1), (h2, d2)):
        v = head.vertices[:468] + d[blink, :468]
        assert np.linalg.norm(v[386] - v[374]) < 0.25 * np.linalg.norm(
            head.vertices[386] - head.vertices[374]
        )


def test_landmark_basis_equals_full_head_on_landmarks(photo_head):
    head, deltas = photo_head
    basis = landmark_blendshape_basis(head.vertices[:468])
    assert basis.shape == (52, 468, 3) and basis.dtype == np.float32
    np.testing.assert_allclose(basis, deltas[:52, :468], atol=1e-6)


def test_shapes_tolerate_a_head_without_optional_regions():
    head = make_head()
    names, deltas = compute_blendshapes(head.vertices[:468], {"face": np.arange(468)})
    assert deltas.shape == (67, 468, 3) and np.isfinite(deltas).all()
    assert np.abs(deltas[names.index("jawOpen")]).max() > 0.01


def test_rigid_parts_move_only_with_their_shapes(canonical_head):
    head, deltas = canonical_head
    teeth_up = head.regions["teeth_upper"]
    eyes = np.concatenate([head.regions["eyeball_L"], head.regions["eyeball_R"]])
    for i, name in enumerate(ARKIT_BLENDSHAPES):
        assert np.abs(deltas[i, teeth_up]).max() < 1e-7, name
        if not name.startswith("eyeLook"):
            assert np.abs(deltas[i, eyes]).max() < 1e-7, name


def _ict_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "ict_similarity.py"
    spec = importlib.util.spec_from_file_location("ict_similarity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_point_the_way_icts_artist_made_shapes_do():
    """Registered on ICT-FaceKit's neutral face, every shape ICT has moves the landmarks in the
    same directions (|d|-weighted mean cosine >= 0.7); the table goes to test-artifacts/."""
    ict = _ict_module()
    if not ict.DEFAULT_NPZ.exists():
        pytest.skip("../shared/data/ict_facekit/ict_face.npz is absent")
    result = ict.ict_similarity(ict.DEFAULT_NPZ)
    lines = [f"{'shape':22s} {'mean cos':>9s} {'global':>7s}"]
    lines += [f"{name:22s} {w:9.2f} {g:7.2f}" for name, (w, g) in result.items()]
    table = "\n".join(lines)
    print(table)
    out = Path(__file__).resolve().parents[1] / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "ict_similarity.txt").write_text(table + "\n")
    assert len(result) == 51, "every ARKit shape but tongueOut has an ICT counterpart"
    low = {name: round(w, 2) for name, (w, _) in result.items() if w < 0.7}
    assert not low, f"shapes below 0.7 cosine with ICT: {low}"


@pytest.fixture(scope="module")
def pipeline_built_head():
    from head_fixture import face_photos, pipeline_head

    name = "skimage_astronaut_eileen_collins.png"
    if name not in face_photos():
        pytest.skip("../shared/data/faces is absent")
    head, _ = pipeline_head(name)
    return head, compute_blendshapes(head.vertices, head.regions, triangles=head.triangles)[1]


@pytest.mark.parametrize("name", BLENDSHAPE_NAMES)
def test_shape_does_what_its_name_says_on_the_pipeline_head(pipeline_built_head, name):
    """The same measurements on the head the real pipeline builds (its own template, eyeballs,
    teeth, tongue and neck)."""
    head, deltas = pipeline_built_head
    CHECKS[name](lambda weights: Posed(head, deltas, weights))
