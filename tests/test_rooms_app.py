"""Rooms inside the full hub (vrhub.app.make_app): creating an avatar for a room announces it there."""

from __future__ import annotations

from conftest import upload

from vrhub.client import join


async def test_avatar_created_for_room_is_announced_to_the_room(client, tiny_photo_bytes):
    base = str(client.make_url("")).rstrip("/")
    watcher = await join(base, "class-app", "Watcher")
    resp = await upload(client, tiny_photo_bytes, room="class-app")
    assert resp.status in (200, 201, 202), await resp.text()
    avatar_id = (await resp.json())["id"]
    await watcher.set_avatar(avatar_id)  # the uploader's participant now points at the avatar
    own = await watcher.next_event("avatar_ready", timeout=5)
    assert own["avatar_id"] == avatar_id
    ready = await watcher.next_event("avatar_ready", timeout=60)
    assert ready["avatar_id"] == avatar_id
    assert ready["avatar_url"] == f"/api/avatars/{avatar_id}.glb"
    assert ready["participant"] == watcher.participant
    glb = await client.get(ready["avatar_url"])
    assert glb.status == 200 and len(await glb.read()) > 0  # fixture stages: bytes, not a real GLB
    await watcher.leave()
