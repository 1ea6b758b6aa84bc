"""Jobs survive the hub: SIGKILL a real `vrhub serve` (and its build process) mid-job, start it
again on the same var folder, and the avatar completes (attempt 2). The lease is long (120 s): the
new hub sees at start-up that the lease's owner process on this host is dead and takes the job
at once; a lease held on another host would wait for its expiry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_process import HubProcess, free_port, hub_env, migrate, wait_http
from hub_test_stages import FIXTURE_STAGE_TEXT


async def _avatar(session: aiohttp.ClientSession, base: str, avatar_id: str) -> dict[str, Any]:
    async with session.get(f"{base}/api/avatars/{avatar_id}") as resp:
        assert resp.status == 200
        return await resp.json()


@pytest.mark.slow
async def test_a_job_interrupted_by_sigkill_completes_after_the_hub_restarts(
    tmp_path: Path, tiny_photo_bytes: bytes
) -> None:
    var = tmp_path / "var"
    stages = FIXTURE_STAGE_TEXT.replace("reconstruct=fixture", "reconstruct=sleepy")
    common = dict(VRHUB_JOB_WORKERS="1", VRHUB_JOB_LEASE_SECONDS="120", VRHUB_STAGES=stages)
    env = hub_env(var, **common)
    migrate(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["serve", "--port", str(port), "--plugins-module", "hub_test_stages"]

    first = HubProcess(serve, hub_env(var, HUB_TEST_SLEEP_SECONDS="60", **common), tmp_path / "hub1.log")
    try:
        wait_http(f"{base}/api/health", first)
        async with aiohttp.ClientSession() as session:
            form = aiohttp.FormData()
            form.add_field("photo", tiny_photo_bytes, filename="face.png")
            async with session.post(f"{base}/api/avatars", data=form) as resp:
                assert resp.status == 202, await resp.text()
                avatar_id = (await resp.json())["id"]
            deadline = time.monotonic() + 60
            while True:  # wait until the build process is inside the (long) reconstruct stage
                body = await _avatar(session, base, avatar_id)
                if body["status"] == "running" and body["progress"]["stage"] == "reconstruct":
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.1)
    finally:
        first.kill()
    assert first.proc.returncode == -9

    second = HubProcess(serve, hub_env(var, HUB_TEST_SLEEP_SECONDS="0", **common), tmp_path / "hub2.log")
    try:
        wait_http(f"{base}/api/health", second)
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while (body := await _avatar(session, base, avatar_id))["status"] not in ("ready", "failed"):
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.2)
            assert body["status"] == "ready", (body, second.output())
            assert body["progress"]["attempts"] == 2
            async with session.get(f"{base}{body['urls']['glb']}") as resp:
                assert resp.status == 200
                assert (await resp.read()).startswith(b"FIXTURE")
    finally:
        second.stop()
