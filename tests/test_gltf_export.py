"""GLB export: Khronos validator clean, sparse targets in ARKit order, textures, skin, LODs, size."""

from __future__ import annotations

import numpy as np
import pygltflib
import pytest
from gltf_testing import glb_json, validate_glbs
from head_fixture import FACES, landmarks_from_photo, make_hair, make_head

from vrhub.pipeline.types import ARKIT_BLENDSHAPES, VISEMES, ExportOptions, HairModel
from vrhub.stages import gltf_export as export_module
from vrhub.stages.gltf_export import gltf_export
from vrhub.stages.procedural_rig import procedural_rig

validate = validate_glbs


@pytest.fixture(scope="module")
def avatar():
    path = FACES / "skimage_astronaut_eileen_collins.png"
    head = make_head(landmarks_from_photo(path), texture=1024) if path.exists() else make_head(texture=1024)
    return procedural_rig(head, make_hair(head))


@pytest.fixture(scope="module")
def exported(avatar, tmp_path_factory):
    folder = tmp_path_factory.mktemp("glb")
    files = {}
    for lod in ("high", "medium", "low"):
        data = gltf_export(avatar, ExportOptions(lod=lod)).files["glb"]
        (folder / f"{lod}.glb").write_bytes(data)
        files[lod] = folder / f"{lod}.glb"
    bald = procedural_rig(avatar.head, HairModel.empty())
    (folder / "bald_novisemes.glb").write_bytes(
        gltf_export(bald, ExportOptions(visemes=False, texture_size=256)).files["glb"]
    )
    files["bald_novisemes"] = folder / "bald_novisemes.glb"
    return files


def test_export_stage_registers_as_gltf():
    seen = []
    export_module.register_stages(lambda slot, name, fn, **kw: seen.append((slot, name, fn)))
    assert seen == [("export", "gltf", gltf_export)]


def test_khronos_validator_reports_no_errors_and_no_warnings(exported):
    reports = validate(list(exported.values()))
    for path, report in reports.items():
        assert report["numErrors"] == 0 and report["numWarnings"] == 0, (path, report["messages"][:5])
        assert (
            report["info"]["hasSkins"] and report["info"]["hasMorphTargets"] and report["info"]["hasTextures"]
        )


def test_morph_targets_are_sparse_and_named_in_arkit_order(exported, avatar):
    data = exported["high"].read_bytes()
    doc = glb_json(data)
    head = next(m for m in doc["meshes"] if m["name"] == "head")
    assert head["extras"]["targetNames"] == list(ARKIT_BLENDSHAPES + VISEMES)
    prim = head["primitives"][0]
    assert len(prim["targets"]) == 67 and len(head["weights"]) == 67
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    blob = gltf.binary_blob()
    bases = set()
    for target in prim["targets"]:
        for attr in ("POSITION", "NORMAL"):
            acc = doc["accessors"][target[attr]]
            assert "sparse" in acc and "byteOffset" not in acc
            assert "min" in acc and "max" in acc
            bases.add(acc["bufferView"])
    # every sparse accessor has the same explicit all-zero base (Godot 3 misreads an absent one)
    assert len(bases) == 1
    zero = doc["bufferViews"][bases.pop()]
    assert zero["byteLength"] >= 12 * len(avatar.head.vertices)
    start = zero.get("byteOffset", 0)
    assert not any(blob[start : start + zero["byteLength"]])
    # read back jawOpen densely and compare with the rig
    acc = doc["accessors"][prim["targets"][ARKIT_BLENDSHAPES.index("jawOpen")]["POSITION"]]
    sp = acc["sparse"]

    def view(i, dtype, count, width=1):
        bv = doc["bufferViews"][i]
        return np.frombuffer(blob, dtype, count * width, bv.get("byteOffset", 0)).reshape(count, width)

    idx = view(sp["indices"]["bufferView"], np.uint16, sp["count"])[:, 0]
    vals = view(sp["values"]["bufferView"], np.float32, sp["count"], 3)
    dense = np.zeros((acc["count"], 3), np.float32)
    dense[idx] = vals
    np.testing.assert_allclose(dense, avatar.blendshape_deltas[ARKIT_BLENDSHAPES.index("jawOpen")], atol=1e-6)


def test_visemes_can_be_left_out(exported):
    doc = glb_json(exported["bald_novisemes"].read_bytes())
    assert doc["meshes"][0]["extras"]["targetNames"] == list(ARKIT_BLENDSHAPES)
    assert len(doc["meshes"]) == 1, "no hair mesh for a bald avatar"


def test_textures_skin_and_hair_material(exported):
    doc = glb_json(exported["high"].read_bytes())
    mimes = {img["name"]: img["mimeType"] for img in doc["images"]}
    assert mimes == {"albedo": "image/jpeg", "hair": "image/png"}
    hair_mat = next(m for m in doc["materials"] if m["name"] == "hair")
    assert hair_mat["alphaMode"] in ("MASK", "BLEND") and hair_mat["doubleSided"] is True
    skin = doc["skins"][0]
    assert [doc["nodes"][j]["name"] for j in skin["joints"]] == [
        "root",
        "neck",
        "head",
        "jaw",
        "eye_L",
        "eye_R",
    ]
    assert "inverseBindMatrices" in skin
    hair_node = next(n for n in doc["nodes"] if n.get("name") == "hair_mesh")
    assert hair_node["skin"] == 0
    extras = doc["asset"]["extras"]["vrhub"]
    assert extras["version"] and extras["hair_style"] == "test_cap" and extras["lod"] == "high"


def test_levels_of_detail_are_smaller_and_default_fits_in_3_mb(exported):
    sizes = {lod: exported[lod].stat().st_size for lod in ("high", "medium", "low")}
    assert sizes["high"] <= 3 * 1024 * 1024
    assert sizes["low"] < sizes["medium"] < sizes["high"]
    verts = {}
    tex = {}
    for lod in ("high", "medium", "low"):
        doc = glb_json(exported[lod].read_bytes())
        verts[lod] = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]["count"]
        tex[lod] = validate([exported[lod]])[str(exported[lod])]["info"]["resources"][1]["image"]["width"]
    assert verts["low"] < verts["medium"] < verts["high"]
    assert tex == {"high": 1024, "medium": 512, "low": 256}


def test_unknown_format_or_lod_is_a_readable_error(avatar):
    with pytest.raises(ValueError, match="unknown export format"):
        gltf_export(avatar, ExportOptions(formats=("fbx",)))
    with pytest.raises(ValueError, match="level of detail"):
        gltf_export(avatar, ExportOptions(lod="ultra"))


def test_vrm_has_the_humanoid_vrm_1_requires_and_stands_on_the_ground(avatar):
    data = gltf_export(avatar, ExportOptions(formats=("glb", "vrm"))).files["vrm"]
    doc = glb_json(data)
    vrm = doc["extensions"]["VRMC_vrm"]
    assert doc["extensionsUsed"] == ["VRMC_vrm"] and vrm["specVersion"] == "1.0"
    assert vrm["meta"]["name"] and vrm["meta"]["authors"] and vrm["meta"]["licenseUrl"]
    bones = {name: b["node"] for name, b in vrm["humanoid"]["humanBones"].items()}
    required = {"hips", "spine", "head", "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm",
                "rightLowerArm", "rightHand", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg",
                "rightLowerLeg", "rightFoot"}  # fmt: skip
    assert required <= set(bones) and len(set(bones.values())) == len(bones)
    parent = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    world = {}

    def position(i):
        if i not in world:
            t = np.array(doc["nodes"][i].get("translation", [0, 0, 0]))
            world[i] = t + (position(parent[i]) if i in parent else 0)
        return world[i]

    def ancestors(i):
        while i in parent:
            i = parent[i]
            yield i

    for child, par in [("spine", "hips"), ("head", "neck"), ("neck", "chest"), ("leftHand", "leftLowerArm"),
                       ("leftFoot", "leftLowerLeg"), ("jaw", "head"), ("leftEye", "head"), ("leftUpperLeg", "hips")]:  # fmt: skip
        assert bones[par] in set(ancestors(bones[child])), (child, par)
    assert position(bones["leftHand"])[0] > 0.3 > -0.3 > position(bones["rightHand"])[0], "T-pose, left = +X"
    assert position(bones["head"])[1] > position(bones["hips"])[1] > position(bones["leftFoot"])[1] >= 0
    feet = doc["accessors"][doc["meshes"][-1]["primitives"][0]["attributes"]["POSITION"]]
    assert abs(feet["min"][1]) < 1e-4, "feet on y = 0"
    expressions = vrm["expressions"]
    assert {"happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft",
            "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral"} == set(expressions["preset"])  # fmt: skip
    assert list(expressions["custom"]) == list(ARKIT_BLENDSHAPES)
    names = doc["meshes"][0]["extras"]["targetNames"]
    bind = expressions["preset"]["blinkLeft"]["morphTargetBinds"]
    assert [names[b["index"]] for b in bind] == ["eyeBlinkLeft"]
    assert expressions["custom"]["jawOpen"]["morphTargetBinds"][0]["index"] == names.index("jawOpen")


def test_contact_sheet_reads_targets_back_from_the_glb_and_draws_every_one(exported, avatar, tmp_path):
    from vrhub.export.contact_sheet import main, read_glb_head

    head = read_glb_head(exported["high"].read_bytes())
    assert head.target_names == list(ARKIT_BLENDSHAPES + VISEMES)
    np.testing.assert_allclose(head.targets, avatar.blendshape_deltas, atol=1e-6)
    out = tmp_path / "sheet.png"
    assert main([str(exported["high"]), str(out), "--tile", "60", "--columns", "8"]) == 0
    from PIL import Image

    sheet = np.asarray(Image.open(out).convert("RGB"), np.int16)
    assert sheet.shape[1] == 8 * 2 * 60 and sheet.shape[0] > 8 * 60  # 68 tiles in 9 rows


def test_morph_targets_carry_normal_deltas_where_the_surface_bends(exported, avatar):
    doc = glb_json(exported["high"].read_bytes())
    prim = doc["meshes"][0]["primitives"][0]
    jaw = prim["targets"][ARKIT_BLENDSHAPES.index("jawOpen")]
    assert set(jaw) == {"POSITION", "NORMAL"}
    normals = doc["accessors"][jaw["NORMAL"]]
    assert "sparse" in normals and normals["sparse"]["count"] > 50
    sil = prim["targets"][len(ARKIT_BLENDSHAPES) + VISEMES.index("viseme_sil")]
    assert doc["accessors"][sil["NORMAL"]]["sparse"]["count"] == 1  # nothing moves: one zero row
