"""Jobs are rows: the runner builds them, reports progress, records failures naming plugin and
slot, enforces stage time limits in worker processes, resumes jobs whose runner died, and gives up
on jobs that keep dying."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from conftest import upload, wait_for_avatar
from sqlalchemy import update

from vrhub.appkeys import blobs_key, db_key, jobs_key
from vrhub.db import avatars as queries
from vrhub.db.models import Job


async def test_a_job_builds_the_avatar_and_records_timings_and_attributes(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    body = await wait_for_avatar(client, created["id"])
    assert body["status"] == "ready" and body["error"] is None
    slots = {"detect", "segment", "reconstruct", "hair_attributes", "hair_model", "rig", "export"}
    assert set(body["timings"]) == slots
    assert body["stages"]["reconstruct"] == "fixture"
    assert body["attributes"]["source"] == "fixture"
    assert body["progress"] == {"stage": "done", "fraction": 1.0, "attempts": 1}


async def test_server_sent_events_report_progress_then_done(
    client: Any, tiny_photo_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_TEST_SLEEP_SECONDS", "1.0")  # reconstruct:sleepy lasts long enough to be seen
    created = await (await upload(client, tiny_photo_bytes, stages="reconstruct:sleepy")).json()
    resp = await client.get(created["urls"]["events"])
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    events = []
    for block in (await resp.text()).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        events.append((lines["event"], json.loads(lines["data"])))
    assert events[-1][0] == "done" and events[-1][1]["status"] == "ready"
    progress = [data for name, data in events if name == "progress"]
    fractions = [p["fraction"] for p in progress]
    assert fractions == sorted(fractions)
    assert "reconstruct" in {p["stage"] for p in progress}
    assert 0 < next(p["fraction"] for p in progress if p["stage"] == "reconstruct") < 1
    # the fixture stages after the sleepy one take milliseconds, less than the stream's polling step:
    # every one of them is still announced before "done"
    from vrhub.pipeline.types import SLOTS

    assert set(SLOTS) <= {p["stage"] for p in progress}


async def test_the_photo_is_deleted_after_the_build(client: Any, tiny_photo_bytes: bytes) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, created["id"])
    avatar = await queries.get_avatar(client.server.app[db_key], created["id"])
    assert "photo" not in avatar.blobs
    from vrhub.blobs import blob_key

    assert not client.server.app[blobs_key].exists(blob_key(tiny_photo_bytes))


async def test_the_photo_is_kept_with_keep_photos(make_client: Any, tiny_photo_bytes: bytes) -> None:
    client = await make_client(keep_photos=True)
    created = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, created["id"])
    avatar = await queries.get_avatar(client.server.app[db_key], created["id"])
    assert client.server.app[blobs_key].get(avatar.blobs["photo"]) == tiny_photo_bytes


async def test_avatar_built_hook_runs_and_its_files_are_stored(client: Any, tiny_photo_bytes: bytes) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, created["id"])
    avatar = await queries.get_avatar(client.server.app[db_key], created["id"])
    extra = json.loads(client.server.app[blobs_key].get(avatar.blobs["fixture.json"]))
    assert extra == {"avatar_id": created["id"], "stages": {k: "fixture" for k in extra["stages"]}}


@pytest.mark.parametrize(
    ("stages", "code", "slot", "name", "words"),
    [
        ("detect:raises", "stage_failed", "detect", "raises", "fixture detector exploded"),
        ("reconstruct:wrong_type", "stage_wrong_type", "reconstruct", "wrong_type", "expected HeadModel"),
    ],
)
async def test_a_misbehaving_plugin_fails_its_job_naming_plugin_and_slot_and_the_hub_keeps_serving(
    client: Any, tiny_photo_bytes: bytes, stages: str, code: str, slot: str, name: str, words: str
) -> None:
    created = await (await upload(client, tiny_photo_bytes, stages=stages)).json()
    body = await wait_for_avatar(client, created["id"])
    assert body["status"] == "failed"
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert f"{slot}:{name}" in message and "hub_test_stages" in message and words in message
    # The hub still builds the next one.
    again = await (await upload(client, tiny_photo_bytes)).json()
    assert (await wait_for_avatar(client, again["id"]))["status"] == "ready"


async def test_no_face_fails_the_avatar_with_code_no_face(client: Any, flat_photo_bytes: bytes) -> None:
    resp = await upload(client, flat_photo_bytes)
    assert resp.status == 202
    body = await wait_for_avatar(client, (await resp.json())["id"])
    assert body["status"] == "failed" and body["error"]["code"] == "no_face"
    assert "No face" in body["error"]["message"]


@pytest.mark.slow
async def test_a_stage_over_its_time_limit_fails_the_job_in_a_worker_process(
    make_client: Any, tiny_photo_bytes: bytes
) -> None:
    client = await make_client(job_workers=1, stage_timeout=2.0)
    created = await (await upload(client, tiny_photo_bytes, stages="reconstruct:slow")).json()
    body = await wait_for_avatar(client, created["id"], timeout=90)
    assert body["status"] == "failed" and body["error"]["code"] == "stage_timeout"
    assert "reconstruct:slow" in body["error"]["message"] and "time limit of 2 s" in body["error"]["message"]
    # Progress came back from the worker process through the queue.
    assert body["progress"]["stage"] == "failed"
    ok = await (await upload(client, tiny_photo_bytes)).json()
    after = await wait_for_avatar(client, ok["id"], timeout=60)
    assert after["status"] == "ready", after["error"]


async def _running_job(
    app: Any,
    photo: bytes,
    *,
    owner: str,
    lease_until: dt.datetime,
    attempts: int = 1,
    request: dict[str, Any] | None = None,
) -> Any:
    """A new avatar whose job is marked running under ``owner``'s lease until ``lease_until``."""
    key = app[blobs_key].put(photo)
    created = await queries.create_avatar(app[db_key], photo_key=key, request=request or {})
    async with app[db_key].begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == created.job.id)
            .values(state="running", attempts=attempts, lease_owner=owner, lease_until=lease_until)
        )
    return created


async def _orphan_job(client: Any, photo: bytes, attempts: int) -> str:
    """Make a job look like its runner died mid-build: running, someone else's expired lease."""
    app = client.server.app
    runner = app[jobs_key]
    _stop_poller(runner)  # so it cannot take the job before we orphan it
    created = await _running_job(
        app,
        photo,
        owner="dead-runner",
        lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
        attempts=attempts,
        request={"stages": {}},
    )
    runner.poll_interval = 0.1
    runner._poller = asyncio.create_task(runner._poll_loop())
    return created.avatar.id


def _stop_poller(runner: Any) -> None:
    runner._poller.cancel()


async def test_a_job_whose_runner_died_is_built_again_after_its_lease_expires(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    avatar_id = await _orphan_job(client, tiny_photo_bytes, attempts=1)
    body = await wait_for_avatar(client, avatar_id)
    assert body["status"] == "ready"
    assert body["progress"]["attempts"] == 2


async def test_a_job_that_died_max_attempts_times_fails_as_interrupted(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    avatar_id = await _orphan_job(client, tiny_photo_bytes, attempts=3)
    body = await wait_for_avatar(client, avatar_id)
    assert body["status"] == "failed" and body["error"]["code"] == "interrupted"


async def test_a_live_lease_is_not_taken(client: Any, tiny_photo_bytes: bytes) -> None:
    app = client.server.app
    _stop_poller(app[jobs_key])
    key = app[blobs_key].put(tiny_photo_bytes)
    created = await queries.create_avatar(app[db_key], photo_key=key, request={})
    first = await queries.claim_job(app[db_key], created.job.id, owner="a", lease_seconds=60, max_attempts=3)
    second = await queries.claim_job(app[db_key], created.job.id, owner="b", lease_seconds=60, max_attempts=3)
    assert first is not None and second is None


async def test_at_start_a_lease_of_a_dead_runner_on_this_host_is_released(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    import os
    import socket

    app = client.server.app
    runner = app[jobs_key]
    _stop_poller(runner)
    host = socket.gethostname()
    owners = {
        "dead_pid": f"{host}:999999999:abcd1234",  # no such process
        "earlier_life": f"{host}:{os.getpid()}:abcd1234",  # this pid, another nonce
        "alive": f"{host}:1:abcd1234",  # pid 1 runs
        "other_host": "elsewhere:999999999:abcd1234",
    }
    jobs = {}
    for label, owner in owners.items():
        created = await _running_job(
            app,
            tiny_photo_bytes + label.encode(),
            owner=owner,
            lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        jobs[created.job.id] = label
    from vrhub.jobs.runner import _pid_alive

    released = await queries.release_dead_local_leases(
        app[db_key], hostname=host, current_owner=runner.owner, is_alive=_pid_alive
    )
    assert sorted(jobs[j] for j in released) == ["dead_pid", "earlier_life"]


@pytest.mark.slow
async def test_a_hub_shutting_down_hands_its_running_jobs_back(
    migrated_settings: Any, tiny_photo_bytes: bytes
) -> None:
    import dataclasses
    import time

    from aiohttp.test_utils import TestClient, TestServer
    from hub_test_stages import FIXTURE_PLUGINS, FIXTURE_STAGE_TEXT

    from vrhub.app import make_app
    from vrhub.db.engine import make_engine, make_sessionmaker

    settings = dataclasses.replace(migrated_settings, job_workers=1, stages=FIXTURE_STAGE_TEXT)
    client = TestClient(TestServer(make_app(settings, plugin_modules=FIXTURE_PLUGINS)))
    await client.start_server()
    try:
        created = await (await upload(client, tiny_photo_bytes, stages="reconstruct:slow")).json()
        deadline = time.monotonic() + 60
        while (await (await client.get(created["urls"]["self"])).json())["progress"][
            "stage"
        ] != "reconstruct":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        await client.close()  # graceful shutdown: cleanup contexts run
    engine = make_engine(settings.database_url)
    try:
        avatar, job = await queries.get_avatar_and_job(make_sessionmaker(engine), created["id"])
    finally:
        await engine.dispose()
    assert job.state == "running" and queries.as_utc(job.lease_until) < dt.datetime.now(dt.UTC)
    assert avatar.status == "running"
