"""A third-party hair plugin (plugins/vrhub-hair-example) installed, listed and selected: by the
request's stage choice, by VRHUB_STAGES, by `vrhub create --stages`, and through POST /api/avatars."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hair_testing import glb_json, shared_photo_path, validate_glbs

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "vrhub-hair-example"
VRHUB = Path(sys.executable).with_name("vrhub")
PHOTO = "faces/skimage_astronaut_eileen_collins.png"


@pytest.fixture(scope="session")
def hair_plugin() -> str:
    """Install the example plugin into the test environment (editable, no deps) unless it is there."""
    try:
        importlib.metadata.distribution("vrhub-hair-example")
    except importlib.metadata.PackageNotFoundError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "-e", str(PLUGIN_DIR)],
            check=True,
            timeout=300,
        )
        importlib.invalidate_caches()
        site = __import__("site")
        for d in site.getsitepackages():
            site.addsitedir(d)  # pick up the new editable-install .pth file
    from vrhub.jobs import build
    from vrhub.pipeline.plugins import reset_default_registry

    # forget registries made before the install in this process
    reset_default_registry()
    build._managers.clear()
    build._registries.clear()
    return "afro_puffs"


def test_entry_point_registers_the_plugin_with_its_origin(hair_plugin):
    from vrhub.pipeline.plugins import build_registry, get_plugin_manager

    registry = build_registry(get_plugin_manager())
    impl = registry.stages["hair_model"][hair_plugin]
    assert impl.origin == "vrhub-hair-example"
    assert impl.version == "0.1.0"
    assert registry.defaults["hair_model"] == "procedural"  # installing a plugin changes no default


def test_stage_choice_of_a_request_selects_the_plugin(hair_plugin, tmp_path):
    from vrhub.hair.offline_face import load_photo
    from vrhub.pipeline.plugins import build_registry, get_plugin_manager, parse_selection
    from vrhub.pipeline.run import run_pipeline

    registry = build_registry(get_plugin_manager())
    stages = registry.select(parse_selection(f"hair_model:{hair_plugin}"))
    result = run_pipeline(load_photo(shared_photo_path(PHOTO)), stages)
    assert result.stages["hair_model"] == hair_plugin
    assert result.avatar.hair.style == "afro_puffs"
    path = tmp_path / "puffs.glb"
    path.write_bytes(result.files["glb"])
    doc = glb_json(result.files["glb"])
    assert any(m.get("name") == "hair" for m in doc["meshes"])
    report = validate_glbs([path])[str(path)]
    assert report["numErrors"] == 0, report["messages"][:5]


def test_vrhub_stages_setting_selects_the_plugin(hair_plugin, monkeypatch):
    from vrhub.config import Settings
    from vrhub.jobs.build import load_plugins
    from vrhub.pipeline.plugins import parse_selection

    monkeypatch.setenv("VRHUB_STAGES", f"hair_model={hair_plugin}")
    settings = Settings.from_env()
    _, registry = load_plugins(None, parse_selection(settings.stages))
    assert registry.select()["hair_model"].name == hair_plugin


def _run_vrhub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if not VRHUB.exists():
        pytest.skip("the vrhub console script is not installed in this environment")
    return subprocess.run(
        [str(VRHUB), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def test_vrhub_plugins_lists_the_plugin(hair_plugin):
    out = _run_vrhub("plugins")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if f" {hair_plugin} " in ln)
    assert "hair_model" in line and "vrhub-hair-example" in line


@pytest.mark.slow
def test_vrhub_create_with_vrhub_stages_builds_puffs(hair_plugin, tmp_path):
    photo = shared_photo_path(PHOTO)
    out_path = tmp_path / "me.glb"
    out = _run_vrhub(
        "create", str(photo), "-o", str(out_path), env={"VRHUB_STAGES": f"hair_model={hair_plugin}"}
    )
    assert out.returncode == 0, out.stderr
    assert hair_plugin in out.stdout  # the timing table names the implementation of each slot
    doc = glb_json(out_path.read_bytes())
    assert any(m.get("name") == "hair" for m in doc["meshes"])


@pytest.mark.slow
async def test_post_avatars_with_stages_query_builds_puffs(hair_plugin, make_client: Any) -> None:
    import aiohttp
    from conftest import wait_for_avatar

    client = await make_client(plugin_modules=None)
    form = aiohttp.FormData()
    form.add_field("photo", shared_photo_path(PHOTO).read_bytes(), filename="photo.png")
    resp = await client.post(f"/api/avatars?stages=hair_model:{hair_plugin}", data=form)
    assert resp.status == 202, await resp.text()
    body = await wait_for_avatar(client, (await resp.json())["id"], timeout=180)
    assert body["status"] == "ready", body
    glb = await (await client.get(body["urls"]["glb"])).read()
    doc = glb_json(glb)
    assert any(m.get("name") == "hair" for m in doc["meshes"])
