"""/api/avatars: upload a photo, follow the build, download the GLB/VRM, list, delete.

Checked at upload, answered at once with a 4xx and no avatar made: the request shape, the size
limit (413), stage choices (400), and decoding (not an image 415, unreadable 400, too many pixels
413). Found by the build, recorded on the avatar (status ``failed``, ``error.code``): no face
(``no_face``) and any plugin failure (``stage_failed``, ``stage_timeout``, ``stage_wrong_type``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import weakref
from typing import Any

from aiohttp import BodyPartReader, web

from vrhub.api.admin import admin_refusal
from vrhub.api.errors import ApiError
from vrhub.api.ratelimit import retry_after
from vrhub.appkeys import blobs_key, db_key, jobs_key, registry_key, settings_key, upload_limit_key
from vrhub.db import avatars as queries
from vrhub.db.models import Avatar, Job
from vrhub.pipeline.plugins import parse_selection
from vrhub.pipeline.types import SLOTS, ExportOptions

routes = web.RouteTableDef()
#: Locks for on-demand exports, by (avatar id, variant name).
export_locks_key: web.AppKey[weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock]] = web.AppKey(
    "export_locks"
)

AVATAR_ID = r"{id:[0-9a-f]{32}}"
ROOM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
LODS = ("high", "medium", "low")
TEXTURE_SIZES = (256, 512, 1024, 2048)
#: Content type of both downloads: a VRM file is a glTF binary container with VRM extensions.
GLTF_BINARY = "model/gltf-binary"
CACHE_CONTROL = "public, max-age=86400"


def avatar_urls(avatar: Avatar) -> dict[str, str]:
    base = f"/api/avatars/{avatar.id}"
    urls = {"self": base, "glb": f"{base}.glb", "events": f"{base}/events"}
    if avatar.status == "ready":
        urls["vrm"] = f"{base}.vrm"
    return urls


def avatar_json(avatar: Avatar, job: Job | None = None) -> dict[str, Any]:
    attrs = avatar.attributes or {}
    progress = None
    if job is not None:
        progress = {"stage": job.progress_stage, "fraction": job.progress_fraction, "attempts": job.attempts}
    created = queries.as_utc(avatar.created)
    updated = queries.as_utc(avatar.updated)
    return {
        "id": avatar.id,
        "status": avatar.status,
        "progress": progress,
        "timings": avatar.timings or {},
        "stages": attrs.get("stages") or attrs.get("requested_stages") or {},
        "attributes": attrs.get("hair"),
        "quality": attrs.get("quality"),
        "warnings": attrs.get("warnings", []),
        "faces_found": attrs.get("faces_found"),
        "error": (
            {"code": avatar.error_code, "message": avatar.error_message}
            if avatar.status == "failed"
            else None
        ),
        "room": avatar.room,
        "created": created.isoformat() if created else None,
        "updated": updated.isoformat() if updated else None,
        "urls": avatar_urls(avatar),
    }


async def _load(request: web.Request) -> Avatar:
    avatar = await queries.get_avatar(request.app[db_key], request.match_info["id"])
    if avatar is None:
        raise ApiError(404, "avatar_not_found", f"There is no avatar {request.match_info['id']}.")
    return avatar


# --- create -----------------------------------------------------------------------------------


async def _read_upload(request: web.Request) -> tuple[bytes, dict[str, str]]:
    """The photo bytes and the other form fields of a multipart upload, with the size limit."""
    limit = request.app[settings_key].max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise ApiError(
            413,
            "too_large",
            f"The upload is {request.content_length / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.",
            {"limit": limit},
        )
    if not request.content_type.startswith("multipart/"):
        raise ApiError(
            415,
            "not_multipart",
            "Send the photo as multipart/form-data in a field named 'photo' (curl -F photo=@face.jpg ...).",
        )
    try:
        reader = await request.multipart()
    except Exception as exc:  # noqa: BLE001 - a malformed body is the client's mistake
        raise ApiError(400, "bad_multipart", f"The multipart body could not be read: {exc}") from None
    photo: bytes | None = None
    fields: dict[str, str] = {}
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.name == "photo":
                chunks = bytearray()
                while chunk := await part.read_chunk(256 * 1024):
                    chunks += chunk
                    if len(chunks) > limit:
                        raise ApiError(
                            413,
                            "too_large",
                            f"The photo is over the limit of {limit / 1e6:.1f} MB.",
                            {"limit": limit},
                        )
                photo = bytes(chunks)
            elif part.name in ("stages", "room"):
                fields[part.name] = (await part.read(decode=True))[:4096].decode("utf-8", "replace")
            else:
                await part.release()
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ApiError(400, "bad_multipart", f"The multipart body could not be read: {exc}") from None
    if photo is None:
        raise ApiError(400, "photo_missing", "The form has no field named 'photo'; send the image in it.")
    return photo, fields


@routes.post("/api/avatars")
async def create_avatar(request: web.Request) -> web.Response:
    app = request.app
    settings = app[settings_key]
    # refused before the body is read: a flood costs the hub as little as possible
    wait = app[upload_limit_key].take(request.remote or "unknown")
    if wait > 0:
        seconds = retry_after(wait)
        raise ApiError(
            429,
            "rate_limited",
            f"Too many uploads from this address (at most {settings.upload_rate_per_minute:g} a minute); "
            f"try again in {seconds} s.",
            {"retry_after": float(seconds)},
            headers={"Retry-After": seconds},
        )
    if settings.max_pending_builds > 0:
        pending = await queries.count_pending_jobs(app[db_key])
        if pending >= settings.max_pending_builds:
            raise ApiError(
                503,
                "busy",
                f"The hub has {pending} avatars waiting to be built; try again in a minute.",
                {"pending": pending},
                headers={"Retry-After": "60"},
            )
    photo_bytes, fields = await _read_upload(request)
    stages_text = ",".join(t for t in (fields.get("stages"), request.query.get("stages")) if t)
    choice = parse_selection(stages_text)
    stages = app[registry_key].select(choice)  # SelectionError -> 400 listing the valid ones
    room = fields.get("room") or request.query.get("room") or None
    if room is not None and not ROOM_ID.fullmatch(room):
        raise ApiError(400, "bad_room", "A room id is 1-64 letters, digits, '.', '_' or '-'.")

    from vrhub.photo_io import decode_photo  # PhotoError -> 4xx with a readable message

    photo = await asyncio.to_thread(
        decode_photo, photo_bytes, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels
    )
    runner = app[jobs_key]
    async with runner.blob_lock:  # the photo blob may be shared with an avatar finishing now
        key = await asyncio.to_thread(app[blobs_key].put, photo_bytes)
        created = await queries.create_avatar(
            app[db_key],
            photo_key=key,
            request={"stages": choice},
            room=room,
            attributes={
                "requested_stages": {slot: impl.name for slot, impl in stages.items()},
                "photo": {"width": photo.width, "height": photo.height},
            },
        )
    if not await asyncio.to_thread(app[blobs_key].exists, key):
        # A worker process (arq) deleted the same photo after its build, before our row existed.
        await asyncio.to_thread(app[blobs_key].put, photo_bytes)
    await app[jobs_key].submit(created.job.id)
    body = avatar_json(created.avatar, created.job)
    body["owner_token"] = created.owner_token
    return web.json_response(body, status=202, headers={"Location": body["urls"]["self"]})


# --- read -------------------------------------------------------------------------------------


@routes.get(f"/api/avatars/{AVATAR_ID}")
async def get_avatar(request: web.Request) -> web.Response:
    avatar, job = await queries.get_avatar_and_job(request.app[db_key], request.match_info["id"])
    if avatar is None:
        raise ApiError(404, "avatar_not_found", f"There is no avatar {request.match_info['id']}.")
    return web.json_response(avatar_json(avatar, job))


@routes.get("/api/avatars")
async def list_avatars(request: web.Request) -> web.Response:
    # every student's avatar (and so their face) is listed here: the operator's admin key only
    refused = admin_refusal(request.app[settings_key], request.headers, "listing all avatars")
    if refused:
        raise ApiError(*refused)
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise ApiError(400, "bad_limit", "limit must be a whole number from 1 to 100.") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "bad_limit", "limit must be a whole number from 1 to 100.")
    try:
        rows, cursor = await queries.list_avatars(
            request.app[db_key], limit=limit, cursor=request.query.get("cursor") or None
        )
    except ValueError as exc:
        raise ApiError(400, "bad_cursor", str(exc)) from None
    return web.json_response(
        {
            "items": [avatar_json(a) for a in rows],
            "next_cursor": cursor,
            "next": f"/api/avatars?limit={limit}&cursor={cursor}" if cursor else None,
        }
    )


def _export_options(request: web.Request, fmt: str) -> ExportOptions:
    """Export options from ?lod=&texture=&visemes= (defaults: what the build used)."""
    q = request.query
    lod = q.get("lod", "high")
    if lod not in LODS:
        raise ApiError(400, "bad_lod", f"lod must be one of {', '.join(LODS)}.")
    try:
        texture = int(q.get("texture", "1024"))
    except ValueError:
        texture = -1
    if texture not in TEXTURE_SIZES:
        raise ApiError(400, "bad_texture", f"texture must be one of {', '.join(map(str, TEXTURE_SIZES))}.")
    visemes_text = q.get("visemes", "1").lower()
    if visemes_text not in ("0", "1", "true", "false"):
        raise ApiError(400, "bad_visemes", "visemes must be 1 or 0.")
    return ExportOptions(formats=(fmt,), lod=lod, texture_size=texture, visemes=visemes_text in ("1", "true"))


async def _variant_key(request: web.Request, avatar: Avatar, fmt: str, options: ExportOptions) -> str:
    """The blob of an export with ``options``, made through the export slot from the stored rig on
    first use and cached (LODs, texture sizes, and the VRM file, which builds do not make eagerly)."""
    app = request.app
    name = f"{fmt}:lod={options.lod},texture={options.texture_size},visemes={int(options.visemes)}"
    async with _export_lock(app, avatar.id, name):
        fresh = await queries.get_avatar(app[db_key], avatar.id)
        variants = dict((fresh or avatar).blobs.get("variants", {}))
        if name in variants and await asyncio.to_thread(app[blobs_key].exists, variants[name]):
            return variants[name]
        if "avatar" not in avatar.blobs:
            raise ApiError(
                409, "no_source", "This avatar was stored without its rig; it cannot be re-exported."
            )
        source = await asyncio.to_thread(app[blobs_key].get, avatar.blobs["avatar"])
        stages = avatar.attributes.get("stages") or {}
        export_name = stages.get("export") or app[registry_key].defaults["export"]
        try:
            files = await app[jobs_key].reexport(source, export_name, options)
        except Exception as exc:  # noqa: BLE001 - a failing export plugin is reported, not crashed on
            raise ApiError(500, "export_failed", f"Exporting {fmt.upper()} failed: {exc}") from None
        if fmt not in files:
            raise ApiError(
                404, f"no_{fmt}", f"The export stage {export_name!r} does not write {fmt.upper()} files."
            )
        key = await asyncio.to_thread(app[blobs_key].put, files[fmt])
        fresh = await queries.get_avatar(app[db_key], avatar.id)
        if fresh is not None:
            blobs = dict(fresh.blobs)
            blobs["variants"] = {**blobs.get("variants", {}), name: key}
            await queries.update_avatar(app[db_key], avatar.id, blobs=blobs)
        return key


def _export_lock(app: web.Application, avatar_id: str, name: str) -> asyncio.Lock:
    """One export at a time per avatar and variant (concurrent first requests wait for the first)."""
    locks = app[export_locks_key]
    return locks.setdefault((avatar_id, name), asyncio.Lock())


async def _download(request: web.Request, fmt: str) -> web.Response:
    avatar = await _load(request)
    if avatar.status != "ready":
        code = "avatar_failed" if avatar.status == "failed" else "avatar_not_ready"
        message = (
            f"Avatar {avatar.id} failed: {avatar.error_message}"
            if avatar.status == "failed"
            else f"Avatar {avatar.id} is still {avatar.status}; follow {avatar_urls(avatar)['events']}."
        )
        raise ApiError(409, code, message, {"status": avatar.status})
    options = _export_options(request, fmt)
    if options == ExportOptions(formats=(fmt,)) and fmt in avatar.blobs:
        key = avatar.blobs[fmt]  # made by the build
    else:
        key = await _variant_key(request, avatar, fmt, options)
    etag = f'"{key}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    data = await asyncio.to_thread(request.app[blobs_key].get, key)
    headers["Content-Disposition"] = f'inline; filename="avatar-{avatar.id}.{fmt}"'
    return web.Response(body=data, content_type=GLTF_BINARY, headers=headers)


@routes.get(f"/api/avatars/{AVATAR_ID}.glb")
async def get_glb(request: web.Request) -> web.Response:
    return await _download(request, "glb")


@routes.get(f"/api/avatars/{AVATAR_ID}.vrm")
async def get_vrm(request: web.Request) -> web.Response:
    return await _download(request, "vrm")


#: The order in which a build reports its stages (vrhub.jobs.build, then vrhub.pipeline.run).
PROGRESS_ORDER: tuple[str, ...] = ("decode", *SLOTS, "done")


def _stages_since(previous: str | None, current: str | None, fraction: float) -> list[tuple[str, float]]:
    """(stage, fraction) for every stage after ``previous`` up to ``current``; unknown names pass as is."""
    if current not in PROGRESS_ORDER:
        return [(current, fraction)] if current != previous or current is None else []
    start = PROGRESS_ORDER.index(previous) + 1 if previous in PROGRESS_ORDER else 0
    end = PROGRESS_ORDER.index(current)
    passed = [
        (stage, max(0.0, (PROGRESS_ORDER.index(stage) - 1) / len(SLOTS)))
        for stage in PROGRESS_ORDER[start:end]
    ]
    return [*passed, (current, fraction)]


@routes.get(f"/api/avatars/{AVATAR_ID}/events")
async def avatar_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``progress`` {stage, fraction} while it builds, then ``done`` or ``failed``."""
    db = request.app[db_key]
    avatar, job = await queries.get_avatar_and_job(db, request.match_info["id"])
    if avatar is None:
        raise ApiError(404, "avatar_not_found", f"There is no avatar {request.match_info['id']}.")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    last: tuple[Any, ...] | None = None
    idle = 0.0
    while True:
        if avatar is None:
            await response.write(b'event: failed\ndata: {"error": {"code": "avatar_deleted"}}\n\n')
            break
        state = (avatar.status, job.progress_stage if job else None, job.progress_fraction if job else 0.0)
        if avatar.status in ("ready", "failed"):
            if avatar.status == "ready" and last is not None and state[1] != last[1]:
                # the last stages can finish between two polls: announce them before "done"
                for stage, fraction in _stages_since(last[1], state[1], state[2]):
                    data = {"status": "running", "stage": stage, "fraction": fraction}
                    await response.write(f"event: progress\ndata: {json.dumps(data)}\n\n".encode())
            event = "done" if avatar.status == "ready" else "failed"
            await response.write(f"event: {event}\ndata: {json.dumps(avatar_json(avatar, job))}\n\n".encode())
            break
        if state != last:
            # Stages run in a fixed order and some take milliseconds, less than the polling step:
            # announce every stage passed since the last event, so no subscriber misses one.
            for stage, fraction in _stages_since(last[1] if last else None, state[1], state[2]):
                data = {"status": avatar.status, "stage": stage, "fraction": fraction}
                await response.write(f"event: progress\ndata: {json.dumps(data)}\n\n".encode())
            last, idle = state, 0.0
        elif idle > 15:
            await response.write(b": keep-alive\n\n")
            idle = 0.0
        await asyncio.sleep(0.2)
        idle += 0.2
        avatar, job = await queries.get_avatar_and_job(db, avatar.id)
    await response.write_eof()
    return response


# --- delete -----------------------------------------------------------------------------------


def _owner_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-Owner-Token")


@routes.delete(f"/api/avatars/{AVATAR_ID}")
async def delete_avatar(request: web.Request) -> web.Response:
    avatar = await _load(request)
    token = _owner_token(request)
    if not token:
        raise ApiError(
            401,
            "owner_token_missing",
            "Send the owner token as 'Authorization: Bearer <token>' or 'X-Owner-Token'.",
        )
    if not hmac.compare_digest(queries.hash_token(token), avatar.owner_token_hash):
        raise ApiError(403, "owner_token_wrong", "That is not the owner token of this avatar.")
    keys = queries.blob_keys(avatar)
    await queries.delete_avatar(request.app[db_key], avatar.id)
    removed = 0
    for key in keys:
        removed += bool(await request.app[jobs_key].delete_blob_if_unused(key))
    return web.json_response({"id": avatar.id, "deleted": True, "blobs_removed": removed})
