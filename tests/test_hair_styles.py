"""The procedural hairstyle library: every style fits the head, stays in budget and is coloured."""

from __future__ import annotations

import numpy as np
import pytest
from hair_testing import reconstructed_head

from vrhub.hair.cards import Hairline, ScalpSurface, cap_shell
from vrhub.hair.styles import MAX_TRIANGLES, STYLE_NAMES, build_style, choose_style
from vrhub.pipeline.types import HairAttributes, HairModel

REQUIRED = (
    "bald", "buzz", "spiky_short", "short_straight", "short_curly", "medium_straight", "medium_wavy",
    "long_straight", "long_wavy", "long_curly", "bun", "ponytail",
)  # fmt: skip


@pytest.fixture(scope="module")
def head():
    return reconstructed_head()


def test_library_has_every_required_style():
    assert set(REQUIRED) <= set(STYLE_NAMES)


@pytest.mark.parametrize("style", [s for s in STYLE_NAMES if s != "bald"])
def test_style_is_a_valid_card_mesh_within_budget(head, style):
    hair = build_style(style, HairAttributes(colour_rgb=(120, 80, 40)), head)
    assert isinstance(hair, HairModel) and not hair.is_empty
    assert 0 < len(hair.triangles) <= MAX_TRIANGLES
    assert hair.vertices.dtype == np.float32 and hair.triangles.dtype == np.uint32
    assert hair.triangles.max() < len(hair.vertices)
    assert np.isfinite(hair.vertices).all()
    assert hair.uvs.shape == (len(hair.vertices), 2) and (hair.uvs >= 0).all() and (hair.uvs <= 1).all()
    assert hair.texture.ndim == 3 and hair.texture.shape[2] == 4 and hair.texture.dtype == np.uint8
    alpha = hair.texture[..., 3]
    assert (alpha == 0).any() or style == "buzz"  # strands are cut out by alpha
    assert hair.alpha_mode in ("MASK", "BLEND")
    # the hair sits on this head: centred on it and no larger than a big hairdo
    hv, v = hair.vertices, head.vertices
    assert np.abs(hv[:, 0].mean() - v[:, 0].mean()) < 0.03
    assert hv[:, 1].max() < v[:, 1].max() + 0.12


def test_bald_is_empty(head):
    assert build_style("bald", HairAttributes(), head).is_empty


def test_hair_is_coloured_from_the_attributes(head):
    red = build_style("short_straight", HairAttributes(colour_rgb=(200, 60, 20)), head)
    dark = build_style("short_straight", HairAttributes(colour_rgb=(20, 15, 10)), head)
    opaque = red.texture[..., 3] > 128
    r = red.texture[opaque][:, :3].mean(axis=0)
    assert r[0] > 1.8 * r[2]
    assert dark.texture[dark.texture[..., 3] > 128][:, :3].mean() < 40


@pytest.mark.parametrize("stubble", [False, True])
def test_strand_texture_averages_to_the_hair_colour(stubble):
    """colour_rgb is the colour the photo's hair shows: every atlas column's alpha-weighted mean is
    that colour (the strand pattern varies round it; it used to darken the cap to 0.75 of it)."""
    from vrhub.hair.cards import ATLAS_COLUMNS, strand_texture

    colour = np.array([120.0, 80.0, 50.0])
    tex = strand_texture((120, 80, 50), stubble=stubble).astype(np.float64)
    cw = tex.shape[1] // ATLAS_COLUMNS
    for c in range(ATLAS_COLUMNS):
        col = tex[:, c * cw : (c + 1) * cw]
        w = col[..., 3:4] / 255.0
        mean = (col[..., :3] * w).sum(axis=(0, 1)) / w.sum()
        assert np.abs(mean - colour).max() < 3.0, (c, mean)


def test_no_skin_pokes_through_the_cap(head):
    """Every scalp vertex inside the hairline is covered: along its direction from the head centre
    some hair vertex lies farther out than the skin."""
    hair = build_style("short_straight", HairAttributes(), head)
    surface = ScalpSurface.from_head(head)
    scalp = head.vertices[head.regions["scalp"]].astype(np.float64) - surface.centre
    top = scalp[:, 1] > 0.75 * np.linalg.norm(scalp, axis=1)  # well inside any hairline: the top of the head
    assert top.sum() > 10
    s_dir = scalp[top] / np.linalg.norm(scalp[top], axis=1, keepdims=True)
    h = hair.vertices.astype(np.float64) - surface.centre
    h_r = np.linalg.norm(h, axis=1)
    h_dir = h / h_r[:, None]
    near = s_dir @ h_dir.T > np.cos(np.radians(4))
    covered = [(h_r[row] > r).any() for row, r in zip(near, np.linalg.norm(scalp[top], axis=1), strict=True)]
    assert np.mean(covered) == 1.0
    # and nothing of the hair is inside the skull: hair vertices near a scalp direction are outside it
    far = near.any(axis=0)
    assert far.sum() > 0


def test_cap_shell_edge_follows_the_hairline_not_the_grid(head):
    """The shell's lower edge lies on the hairline itself: every column ends on it, so the edge is a
    smooth curve instead of grid steps (which read as a pixelated hairline)."""
    surface = ScalpSurface.from_head(head)
    hairline = Hairline(front_y=0.5, recede=0.7)
    rows, cols = 24, 48
    shell = cap_shell(surface, hairline, rows=rows, cols=cols, offset=0.0)
    d = shell.vertices.astype(np.float64) - surface.centre
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    edge = d.reshape(rows + 1, cols + 1, 3)[-1]
    limit = hairline.limit_y(np.arctan2(edge[:, 0], edge[:, 2]))
    reachable = limit > np.cos(0.72 * np.pi)  # columns whose hairline is above the shell's floor
    assert reachable.sum() > cols // 2
    # (a grid cut at whole quads misses it by up to a row: ~0.1 in y)
    assert np.abs(edge[reachable, 1] - limit[reachable]).max() < 0.01


def test_crown_or_top_baldness_leaves_a_horseshoe(head):
    """Male-pattern baldness: the top of the head is bare, hair stays over the ears and at the back."""
    surface = ScalpSurface.from_head(head)
    hair = build_style("buzz", HairAttributes(length="buzz", baldness="crown_or_top"), head)
    full = build_style("buzz", HairAttributes(length="buzz"), head)
    for h, top_expected in ((hair, False), (full, True)):
        d = h.vertices[np.unique(h.triangles)].astype(np.float64) - surface.centre  # drawn vertices
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        assert (d[:, 1] > 0.9).any() == top_expected
        assert ((np.abs(d[:, 0]) > 0.7) & (d[:, 1] > 0.2)).any()  # above the ears
        assert ((d[:, 2] < -0.7) & (d[:, 1] > 0)).any()  # the back


def test_parting_and_fringe_change_the_mesh(head):
    base = build_style("medium_straight", HairAttributes(), head)
    left = build_style("medium_straight", HairAttributes(parting="left"), head)
    right = build_style("medium_straight", HairAttributes(parting="right"), head)
    fringe = build_style("medium_straight", HairAttributes(fringe="full"), head)
    assert "part_left" in left.style and "fringe_full" in fringe.style
    # a parting on the avatar's left (+X) sends more hair toward -X
    assert left.vertices[:, 0].mean() < right.vertices[:, 0].mean()
    assert not np.array_equal(base.vertices.shape, fringe.vertices.shape) or not np.allclose(
        base.vertices, fringe.vertices
    )
    # a full fringe puts hair in front of the forehead (landmark 10), lower than the hairline
    forehead = head.vertices[head.landmark_vertices[10]]
    in_front = (fringe.vertices[:, 2] > forehead[2] - 0.01) & (np.abs(fringe.vertices[:, 0]) < 0.03)
    assert (fringe.vertices[in_front, 1] < forehead[1] - 0.01).any()


def test_a_partial_fringe_is_swept_to_the_side(head):
    """A partial fringe is a side-swept lock, not a rectangle: its tips lie further toward the far
    temple than its roots (they hung straight down before: median sideways shift 0.8 mm), and it
    stays out of the skin."""
    from vrhub.hair.styles import STYLES, _fringe, hairline_for

    surface = ScalpSurface.from_head(head)
    for parting, sign in (("right", 1.0), ("left", -1.0)):
        attrs = HairAttributes(fringe="partial", parting=parting)
        mesh = _fringe(surface, hairline_for(attrs, surface, head), STYLES["short_straight"], "partial",
                       attrs, 1200, 0, head)  # fmt: skip
        strands = mesh.vertices.reshape(-1, 7, 2, 3).mean(axis=2)  # (n, steps + 1, xyz) centre lines
        sweep = sign * (strands[:, -1, 0] - strands[:, 0, 0])
        assert np.median(sweep) > 0.008, (parting, np.median(sweep))
        # it thins out toward the parting's side in short wisps instead of ending in a straight
        # edge of full-length strands (it was one block over one temple), and its tips do not
        # line up above the brows
        lowest = strands[:, :, 1].min(axis=1)  # how far down the forehead each strand reaches
        across = sign * (strands[:, 0, 0] - surface.centre[0])
        inner, outer = across < np.quantile(across, 0.25), across > np.quantile(across, 0.75)
        assert np.median(lowest[inner]) > np.median(lowest[outer]) + 0.005
        assert across.min() < -0.01  # it reaches past the middle of the forehead
        tips = strands[outer, -1, 1]
        assert np.ptp(tips) > 0.008 and tips.std() > 0.002
        rel = strands.reshape(-1, 3) - surface.centre
        dist = np.linalg.norm(rel, axis=1)
        assert (dist >= surface.radius(rel / dist[:, None]) - 1e-4).mean() > 0.99  # outside the scalp


@pytest.mark.parametrize(
    ("attrs", "style"),
    [
        (dict(length="bald", baldness="full"), "bald"),
        (dict(length="buzz"), "buzz"),
        (dict(length="short", spikiness="spiky"), "spiky_short"),
        (dict(length="short", texture="coily"), "short_coily"),
        (dict(length="short", texture="curly"), "short_curly"),
        (dict(length="medium", texture="coily"), "medium_coily"),
        (dict(length="medium", texture="curly"), "medium_curly"),
        (dict(length="medium", texture="wavy"), "medium_wavy"),
        (dict(length="long", texture="curly"), "long_curly"),
        (dict(length="long", texture="straight"), "long_straight"),
        (dict(length="bald", headwear="hat"), "buzz"),
    ],
)
def test_choose_style_follows_the_attributes(attrs, style):
    assert choose_style(HairAttributes(**attrs)) == style


def test_coily_hair_stands_out_round_the_head_instead_of_falling(head):
    """Coily styles hold their volume out from the scalp: their lowest strand ends higher than the
    curly style's of the same length class, and the hair stands further out above the ears."""
    surface = ScalpSurface.from_head(head)
    for coily, curly in (("short_coily", "short_curly"), ("medium_coily", "medium_curly")):
        a = build_style(coily, HairAttributes(texture="coily"), head).vertices
        b = build_style(curly, HairAttributes(texture="curly"), head).vertices
        assert a[:, 1].min() > b[:, 1].min() + 0.01, (coily, a[:, 1].min(), b[:, 1].min())
        top = surface.centre[1]
        out_a = np.linalg.norm(a[a[:, 1] > top] - surface.centre, axis=1)
        assert np.percentile(out_a, 90) > 1.05 * float(np.max(surface.radii[:2])), coily


@pytest.mark.slow
def test_every_style_exports_to_a_glb_the_khronos_validator_accepts(head, tmp_path):
    """Each library style, rigged and exported: 0 validator errors; the hair is its own mesh with a
    double-sided, alpha-tested (MASK) or blended material."""
    from hair_testing import glb_json, validate_glbs

    from vrhub.pipeline.types import ExportOptions
    from vrhub.stages.gltf_export import gltf_export
    from vrhub.stages.procedural_rig import procedural_rig

    paths = []
    for style in STYLE_NAMES:
        hair = build_style(style, HairAttributes(colour_rgb=(90, 60, 35), fringe="partial"), head)
        data = gltf_export(procedural_rig(head, hair), ExportOptions(texture_size=256, visemes=False)).files[
            "glb"
        ]
        doc = glb_json(data)
        if style != "bald":
            mats = [m for m in doc["materials"] if m.get("name") == "hair"]
            assert mats and mats[0]["doubleSided"] is True and mats[0]["alphaMode"] in ("MASK", "BLEND")
            assert any(m.get("name") == "hair" for m in doc["meshes"])
        path = tmp_path / f"{style}.glb"
        path.write_bytes(data)
        paths.append(path)
    reports = validate_glbs(paths)
    for path, report in reports.items():
        assert report["numErrors"] == 0, (path, report["messages"][:5])


def test_forehead_hairline_is_measured_from_the_hair_mask():
    from vrhub.hair.features import forehead_hairline

    top, chin, brow = 100.0, 300.0, 150.0  # landmark 10, 152 and the brows, in pixels
    mask = np.zeros((400, 300), np.float32)
    mask[:60, :] = 1.0  # hair down to y = 60: 40 px above landmark 10 = 0.2 forehead-to-chin units
    assert forehead_hairline(mask, 150.0, 120.0, top, chin, brow) == pytest.approx(0.2, abs=0.02)
    assert forehead_hairline(np.zeros_like(mask), 150.0, 120.0, top, chin, brow) is None  # bald top
    mask[:, 126:174] = 0.0  # hair round a bare middle of the forehead: no hairline in the middle
    assert forehead_hairline(mask, 150.0, 120.0, top, chin, brow) is None
    mask[:140, :] = 1.0  # a fringe down to the brows: the hairline is below landmark 10
    assert forehead_hairline(mask, 150.0, 120.0, top, chin, brow) < -0.1


def test_the_measured_hairline_raises_the_style_hairline_never_lowers_it(head):
    from vrhub.hair.styles import hairline_for

    surface = ScalpSurface.from_head(head)
    default = hairline_for(HairAttributes(), surface, head).front_y
    high = hairline_for(HairAttributes(hairline=0.3), surface, head).front_y
    low = hairline_for(HairAttributes(hairline=-0.2), surface, head).front_y
    assert high > default + 0.05
    assert low == pytest.approx(default)
    # and the cap follows it: no hair below the raised hairline at the front of the head
    hair = build_style("buzz", HairAttributes(length="buzz", hairline=0.3), head)
    d = hair.vertices[np.unique(hair.triangles)].astype(np.float64) - surface.centre
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    front = np.abs(np.arctan2(d[:, 0], d[:, 2])) < 0.15  # the front meridian
    assert front.any() and d[front, 1].min() >= high - 0.01


def test_the_hairline_ends_in_ragged_strand_tips(head):
    """The scalp shell stops short of the hairline and a strip of strands finishes it: the strip's
    texture is opaque at its top and its strands end at many different heights (no single cut line
    across the forehead), and the strip spans the hairline all round the head."""
    from vrhub.hair.cards import ATLAS_COLUMNS, CAP_V, hairline_band, hairline_polar, strand_texture

    tex = strand_texture((90, 60, 40))
    cw = tex.shape[1] // ATLAS_COLUMNS
    strip = tex[int(np.ceil(CAP_V * tex.shape[0])) + 1 :, :cw, 3] > 128  # rows of the strip, top first
    opaque = strip.mean(axis=1)
    assert opaque[0] > 0.95 and opaque[-1] < 0.05
    ends = np.array([np.argmax(~c) if (~c).any() else len(c) for c in strip.T])  # per texel column
    assert ends.std() > 0.08 * len(strip) and np.ptp(ends) > 0.3 * len(strip)  # tips at many heights
    surface = ScalpSurface.from_head(head)
    hairline = Hairline(front_y=0.5)
    band = hairline_band(surface, hairline)
    assert len(band.triangles) > 0
    d = (band.vertices - surface.centre) / np.linalg.norm(band.vertices - surface.centre, axis=1)[:, None]
    polar = np.arccos(np.clip(d[:, 1], -1, 1)).reshape(-1, 4)
    line = hairline_polar(hairline, np.arctan2(d[:, 0], d[:, 2])).reshape(-1, 4)
    assert (polar[:, :2] < line[:, :2]).all() and (polar[:, 2:] > line[:, 2:] - 1e-6).all()


def test_the_hairline_comes_down_beside_the_temples_to_the_faces_edge(head):
    """Down the face's sides, from the forehead's corners (landmarks 54 / 284) to the temples beside
    the eyes (127 / 356), the hair reaches down to just above the face's outline, as a real
    hairline does (sideburns), where a hairline interpolated between the forehead's height and the
    height above the ears left bare skin; the forehead's middle keeps its measured height, and a
    receding hairline still pulls the temples back."""
    from vrhub.hair.cards import FACE_EDGE_MARGIN
    from vrhub.hair.styles import hairline_for

    surface = ScalpSurface.from_head(head)
    hl = hairline_for(HairAttributes(), surface, head)
    plain = Hairline(front_y=hl.front_y)  # the same forehead height without the face's outline
    lv = np.asarray(head.landmark_vertices)
    v = np.asarray(head.vertices, np.float64)
    for i in (54, 284, 127, 356):
        d = v[lv[i]] - surface.centre
        d /= np.linalg.norm(d)
        az = np.arctan2(d[0], d[2])
        limit = float(hl.limit_y(np.array([az]))[0])
        assert limit <= d[1] + FACE_EDGE_MARGIN + 1e-9, i
        if i in (127, 356):
            assert limit < float(plain.limit_y(np.array([az]))[0]) - 0.1, i
    assert float(hl.limit_y(np.array([0.0]))[0]) == pytest.approx(hl.front_y)
    receding = hairline_for(HairAttributes(baldness="receding"), surface, head)
    d = v[lv[54]] - surface.centre
    az = np.arctan2(d[0], d[2])
    assert receding.limit_y(np.array([az]))[0] > hl.limit_y(np.array([az]))[0] + 0.1
    # the built style has hair there: strand or shell vertices beside the temple, above landmark 127
    hair = build_style("short_straight", HairAttributes(colour_rgb=(90, 60, 40)), head)
    hv = hair.vertices.astype(np.float64)
    for side in (127, 356):
        t = v[lv[side]]
        near = (np.abs(hv[:, 0] - t[0]) < 0.02) & (hv[:, 1] > t[1]) & (hv[:, 1] < t[1] + 0.03)
        assert near.sum() > 10, side


@pytest.mark.parametrize("pitch", [0.0, 12.0])
def test_the_measured_hairline_is_placed_at_its_height_in_the_photos_view(head, pitch):
    """The attribute is a height in the photo (above landmark 10, in landmark 10 -> 152 units). Seen
    at the photo's pitch, the built hair's lowest point on the forehead's midline is at that
    height (within the ragged strip's reach), not at the direction of a point floating in front of
    the sloping forehead (which put it about half as high)."""
    from dataclasses import replace

    tilted = replace(head, quality={**head.quality, "pitch": pitch})
    surface = ScalpSurface.from_head(tilted)
    lv = np.asarray(tilted.landmark_vertices)
    v = np.asarray(tilted.vertices, np.float64)
    theta = np.radians(pitch)
    up = np.array([0.0, np.cos(theta), np.sin(theta)])  # the image's up in the head frame
    forehead, chin = v[lv[10]] @ up, v[lv[152]] @ up
    for measured in (0.07, 0.14):  # both below the top of this head in either view
        hair = build_style("buzz", HairAttributes(length="buzz", hairline=measured), tilted)
        hv = hair.vertices[np.unique(hair.triangles)].astype(np.float64)
        d = hv - surface.centre
        front = (np.abs(np.arctan2(d[:, 0], d[:, 2])) < 0.1) & (d[:, 2] > 0)
        seen = (hv[front] @ up - forehead) / (forehead - chin)  # landmark 10 -> 152 units
        assert seen.min() == pytest.approx(measured, abs=0.03), measured
