"""The end-to-end promise: `vrhub serve` (real process, real stages, a build process), the
equivalent of `curl -F photo=@astronaut.png /api/avatars`, progress over server-sent events, and a
GLB that the Khronos glTF validator reports with 0 errors (also a low-LOD re-export and the VRM,
which is made on first download)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ASTRONAUT, builtin_stages_present, needs_photos
from gltf_testing import validate_glbs
from hub_process import HubProcess, free_port, hub_env, migrate, wait_http

pytestmark = [
    pytest.mark.slow,
    needs_photos,
    pytest.mark.skipif(not builtin_stages_present(), reason="the builtin stages are not all present"),
]


_validate = validate_glbs


async def _events(session: aiohttp.ClientSession, url: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=180)) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        text = await resp.text()
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_photo_to_validated_glb_through_a_running_hub(tmp_path: Path) -> None:
    env = hub_env(tmp_path / "var", VRHUB_JOB_WORKERS="1")
    migrate(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hub = HubProcess(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "hub.log")
    try:
        wait_http(f"{base}/api/health", hub)
        async with aiohttp.ClientSession() as session:
            form = aiohttp.FormData()
            form.add_field("photo", ASTRONAUT.read_bytes(), filename=ASTRONAUT.name, content_type="image/png")
            async with session.post(f"{base}/api/avatars", data=form) as resp:
                assert resp.status == 202, await resp.text()
                created = await resp.json()
            events = await _events(session, base + created["urls"]["events"])
            name, final = events[-1]
            assert name == "done", (final, hub.output())
            assert {"detect", "reconstruct", "rig", "export"} <= {
                d.get("stage") for n, d in events if n == "progress"
            }
            assert set(final["timings"]) >= {"detect", "segment", "reconstruct", "rig", "export"}
            paths = []
            for url in (
                final["urls"]["glb"],
                final["urls"]["glb"] + "?lod=low&texture=512",
                final["urls"]["vrm"],
            ):
                async with session.get(base + url) as resp:
                    assert resp.status == 200 and resp.content_type == "model/gltf-binary"
                    data = await resp.read()
                assert data[:4] == b"glTF"
                path = tmp_path / f"avatar{len(paths)}.{url.rsplit('.', 1)[-1].split('?')[0]}"
                path.write_bytes(data)
                paths.append(path)
            assert paths[1].stat().st_size < paths[0].stat().st_size
        reports = _validate(paths)
        for path in paths:
            report = reports[str(path)]
            assert report["numErrors"] == 0, report["messages"][:5]
    finally:
        hub.stop()
