"""With VRHUB_REDIS_URL the hub only enqueues: a separate `vrhub worker` process (arq, Redis at
127.0.0.1:6379, a queue name unique to this test) builds the avatar, the hub reports its progress
from the job row and announces it to its room."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import upload, wait_for_avatar
from hub_process import HubProcess, hub_env
from hub_test_stages import FIXTURE_STAGE_TEXT

from vrhub.appkeys import db_key, jobs_key, rooms_key
from vrhub.db.models import Job

pytestmark = [pytest.mark.redis, pytest.mark.slow]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def queue_name(monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"vrhub:test:{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("VRHUB_QUEUE_NAME", name)
    return name


@pytest.fixture
def worker(tmp_path: Path, migrated_settings: Any, queue_name: str) -> Any:
    env = hub_env(
        migrated_settings.var_dir,
        VRHUB_REDIS_URL=REDIS_URL,
        VRHUB_QUEUE_NAME=queue_name,
        VRHUB_STAGES=FIXTURE_STAGE_TEXT,
        VRHUB_JOB_WORKERS="1",
    )
    proc = HubProcess(["worker", "--plugins-module", "hub_test_stages"], env, tmp_path / "worker.log")
    yield proc
    proc.stop()


async def test_a_vrhub_worker_builds_what_the_hub_enqueues(
    make_client: Any, worker: Any, tiny_photo_bytes: bytes
) -> None:
    client = await make_client(redis_url=REDIS_URL)
    app = client.server.app
    runner = app[jobs_key]
    assert runner.enqueue is not None  # the hub does not build: it enqueues

    told: list[tuple[str, str]] = []
    hub = app[rooms_key]
    original = hub.avatar_ready

    async def record(room_id: str, avatar_id: str, glb_url: str) -> None:
        told.append((room_id, avatar_id))
        await original(room_id, avatar_id, glb_url)

    hub.avatar_ready = record  # type: ignore[method-assign]

    created = await (await upload(client, tiny_photo_bytes, room="lab")).json()
    body = await wait_for_avatar(client, created["id"], timeout=90)
    assert body["status"] == "ready", (body, worker.output())
    assert body["progress"]["stage"] == "done"
    async with app[db_key]() as session:
        from sqlalchemy import select

        job = (await session.execute(select(Job).where(Job.avatar_id == created["id"]))).scalar_one()
    assert job.lease_owner != runner.owner  # built by the worker process
    assert (await client.get(created["urls"]["glb"])).status == 200

    deadline = time.monotonic() + 10
    while not told and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert told == [("lab", created["id"])]

    failing = await (await upload(client, tiny_photo_bytes, stages="detect:raises")).json()
    body = await wait_for_avatar(client, failing["id"], timeout=60)
    assert body["status"] == "failed" and "detect:raises" in body["error"]["message"]
