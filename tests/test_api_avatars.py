"""The avatars API: create (202 + owner token + URLs), read, download with ETag/304 and re-export
options, list with cursors (admin key only), delete with the owner token, stage choice errors, room
announcements."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from conftest import stored_avatar_ids, upload, wait_for_avatar

from vrhub.appkeys import blobs_key, db_key, rooms_key
from vrhub.db import avatars as queries


async def test_create_answers_202_with_id_owner_token_and_urls(client: Any, tiny_photo_bytes: bytes) -> None:
    resp = await upload(client, tiny_photo_bytes)
    assert resp.status == 202
    body = await resp.json()
    assert len(body["id"]) == 32 and len(body["owner_token"]) >= 32
    assert body["status"] == "queued"
    assert body["urls"] == {
        "self": f"/api/avatars/{body['id']}",
        "glb": f"/api/avatars/{body['id']}.glb",
        "events": f"/api/avatars/{body['id']}/events",
    }
    assert resp.headers["Location"] == body["urls"]["self"]
    # The token is shown once: GET does not repeat it.
    again = await (await client.get(body["urls"]["self"])).json()
    assert "owner_token" not in again


async def test_glb_download_has_etag_cache_control_and_answers_304(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, created["id"])
    resp = await client.get(created["urls"]["glb"])
    assert resp.status == 200
    assert resp.content_type == "model/gltf-binary"
    data = await resp.read()
    from vrhub.blobs import blob_key

    assert resp.headers["ETag"] == f'"{blob_key(data)}"'
    assert "max-age" in resp.headers["Cache-Control"]
    again = await client.get(created["urls"]["glb"], headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""


async def test_vrm_download_when_the_export_stage_made_one(client: Any, tiny_photo_bytes: bytes) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    body = await wait_for_avatar(client, created["id"])
    resp = await client.get(body["urls"]["vrm"])
    assert resp.status == 200 and resp.content_type == "model/gltf-binary"
    assert (await resp.read()).startswith(b"FIXTURE-VRM")


async def test_glb_options_re_export_through_the_export_slot_and_are_cached(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, created["id"])
    url = created["urls"]["glb"] + "?lod=low&texture=512&visemes=0"
    first = await client.get(url)
    assert first.status == 200
    data = await first.read()
    assert b'"lod": "low"' in data and b'"texture": 512' in data and b'"visemes": false' in data
    avatar = await queries.get_avatar(client.server.app[db_key], created["id"])
    assert list(avatar.blobs["variants"]) == ["glb:lod=low,texture=512,visemes=0"]
    second = await client.get(url)
    assert second.headers["ETag"] == first.headers["ETag"]
    bad = await client.get(created["urls"]["glb"] + "?lod=ultra")
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_lod"


async def test_glb_of_an_avatar_still_building_is_409(client: Any, tiny_photo_bytes: bytes) -> None:
    app = client.server.app
    key = app[blobs_key].put(tiny_photo_bytes)
    created = await queries.create_avatar(app[db_key], photo_key=key, request={})
    await queries.update_avatar(app[db_key], created.avatar.id, status="running")
    resp = await client.get(f"/api/avatars/{created.avatar.id}.glb")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "avatar_not_ready"


ADMIN = {"Authorization": "Bearer adm1n"}


async def test_list_pages_newest_first_with_a_cursor(make_client: Any, tiny_photo_bytes: bytes) -> None:
    client = await make_client(admin_key="adm1n")
    ids = []
    for i in range(5):
        photo = tiny_photo_bytes + bytes([i])  # distinct uploads (PNG ignores trailing bytes)
        ids.append((await (await upload(client, photo)).json())["id"])
    seen: list[str] = []
    url = "/api/avatars?limit=2"
    pages = 0
    while url:
        body = await (await client.get(url, headers=ADMIN)).json()
        seen += [item["id"] for item in body["items"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    ("admin_key", "headers", "status", "code"),
    [
        ("", ADMIN, 403, "admin_disabled"),
        ("adm1n", {}, 401, "unauthorized"),
        ("adm1n", {"Authorization": "Basic adm1n"}, 401, "unauthorized"),
        ("adm1n", {"Authorization": "Bearer wrong"}, 403, "forbidden"),
    ],
    ids=["no admin key on the hub", "no key sent", "not a bearer", "wrong key"],
)
async def test_listing_every_avatar_needs_the_admin_key(
    make_client: Any, tiny_photo_bytes: bytes, admin_key: str, headers: dict, status: int, code: str
) -> None:
    """The listing shows every student's avatar: only the hub's operator may page through it. An
    avatar's own URLs (its unguessable id) keep working for whoever was given them."""
    client = await make_client(admin_key=admin_key)
    created = await (await upload(client, tiny_photo_bytes)).json()
    resp = await client.get("/api/avatars", headers=headers)
    assert resp.status == status
    body = await resp.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert created["id"] not in json.dumps(body)
    assert (await client.get(f"/api/avatars/{created['id']}")).status == 200


async def test_delete_needs_the_owner_token_and_removes_the_blobs(
    client: Any, tiny_photo_bytes: bytes
) -> None:
    created = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, created["id"])
    avatar = await queries.get_avatar(client.server.app[db_key], created["id"])
    keys = queries.blob_keys(avatar)
    assert keys
    url = created["urls"]["self"]
    assert (await client.delete(url)).status == 401
    wrong = await client.delete(url, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status == 403 and (await wrong.json())["error"]["code"] == "owner_token_wrong"
    ok = await client.delete(url, headers={"Authorization": f"Bearer {created['owner_token']}"})
    assert ok.status == 200
    assert (await ok.json())["blobs_removed"] == len(keys)
    assert not any(client.server.app[blobs_key].exists(k) for k in keys)
    assert (await client.get(url)).status == 404
    assert (await client.get(created["urls"]["glb"])).status == 404


async def test_delete_keeps_blobs_another_avatar_shares(make_client: Any, tiny_photo_bytes: bytes) -> None:
    client = await make_client(keep_photos=True)
    a = await (await upload(client, tiny_photo_bytes)).json()
    b = await (await upload(client, tiny_photo_bytes)).json()
    await wait_for_avatar(client, a["id"])
    await wait_for_avatar(client, b["id"])
    resp = await client.delete(a["urls"]["self"], headers={"X-Owner-Token": a["owner_token"]})
    assert resp.status == 200
    glb = await client.get(b["urls"]["glb"])
    assert glb.status == 200  # same photo, same stages: same GLB blob, still there for b


@pytest.mark.parametrize(
    ("stages", "words"),
    [
        ("detect:nonexistent", "no implementation 'nonexistent' for slot 'detect'"),
        ("wings:gold", "unknown slot 'wings'"),
    ],
)
async def test_unknown_stage_choice_is_400_listing_the_valid_ones(
    client: Any, tiny_photo_bytes: bytes, stages: str, words: str
) -> None:
    for resp in (
        await upload(client, tiny_photo_bytes, stages=stages),
        await client.post(f"/api/avatars?stages={stages}", data={"photo": io.BytesIO(tiny_photo_bytes)}),
    ):
        assert resp.status == 400
        body = await resp.json()
        assert body["error"]["code"] == "unknown_stage"
        assert words in body["error"]["message"]
        assert "fixture" in body["error"]["detail"]["valid"]["detect"]
    assert await stored_avatar_ids(client) == []  # nothing was created


async def test_a_room_is_told_when_its_avatar_is_ready(client: Any, tiny_photo_bytes: bytes) -> None:
    hub = client.server.app[rooms_key]
    told: list[tuple[str, str, str]] = []
    original = hub.avatar_ready

    async def record(room_id: str, avatar_id: str, glb_url: str) -> None:
        told.append((room_id, avatar_id, glb_url))
        await original(room_id, avatar_id, glb_url)

    hub.avatar_ready = record  # type: ignore[method-assign]
    created = await (await upload(client, tiny_photo_bytes, room="class-7b")).json()
    body = await wait_for_avatar(client, created["id"])
    assert body["room"] == "class-7b"
    # The avatar is recorded ready first (so peers can fetch the GLB), then the room is told.
    for _ in range(100):
        if told:
            break
        await asyncio.sleep(0.05)
    assert told == [("class-7b", created["id"], created["urls"]["glb"])]
    bad = await upload(client, tiny_photo_bytes, room="no spaces/please")
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_room"


async def test_deleting_an_avatar_while_it_builds_leaves_no_blobs_behind(
    client: Any, tiny_photo_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setenv("HUB_TEST_SLEEP_SECONDS", "1.5")
    created = await (await upload(client, tiny_photo_bytes, stages="reconstruct:sleepy")).json()
    while (await (await client.get(created["urls"]["self"])).json())["progress"]["stage"] != "reconstruct":
        await asyncio.sleep(0.05)
    resp = await client.delete(created["urls"]["self"], headers={"X-Owner-Token": created["owner_token"]})
    assert resp.status == 200
    store = client.server.app[blobs_key]
    for _ in range(100):  # the build finishes, finds its avatar gone and removes what it stored
        await asyncio.sleep(0.1)
        if not [p for p in store.root.rglob("*") if p.is_file()]:
            break
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    assert (await client.get(created["urls"]["self"])).status == 404


async def test_an_iphone_heic_photo_is_accepted(client: Any) -> None:
    from pathlib import Path

    heic = (Path(__file__).resolve().parent / "data" / "pattern.heic").read_bytes()
    resp = await upload(client, heic, "IMG_0001.HEIC")
    assert resp.status == 202, await resp.text()
    body = await wait_for_avatar(client, (await resp.json())["id"])
    assert body["status"] == "ready"
