"""Bad and odd uploads: each gets a 4xx with a message a person understands, or succeeds where it
should; never a 500. The face detector here is the real one (mediapipe); the later slots are the
fixture stages once the photo has passed detection (see hub_test_stages.py), or the real pipeline."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from conftest import (
    ASTRONAUT,
    FACES,
    builtin_stages_present,
    needs_photos,
    stored_avatar_ids,
    upload,
    wait_for_avatar,
)
from hub_test_stages import FIXTURE_STAGE_TEXT
from PIL import Image

pytestmark = needs_photos


@pytest.fixture
async def real_client(make_client: Any) -> Any:
    """The hub with the real detector (and the real pipeline when all builtin stages exist)."""
    if builtin_stages_present():
        return await make_client(plugin_modules=None)
    stages = FIXTURE_STAGE_TEXT.replace("detect=fixture", "detect=mediapipe")
    return await make_client(
        plugin_modules=("vrhub.stages.mediapipe_detect", "hub_test_stages"), stages=stages
    )


def _portrait() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def _encode(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A few hundred bytes that claim to be a width x height RGB PNG (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def _refused(resp: Any, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert len(message) > 20 and "Traceback" not in message
    return message


async def test_not_an_image_is_415(real_client: Any) -> None:
    message = await _refused(await upload(real_client, b"%PDF-1.4 not a photo at all"), 415, "not_an_image")
    assert "JPEG" in message
    assert await stored_avatar_ids(real_client) == []


async def test_a_truncated_file_is_400(real_client: Any) -> None:
    data = _encode(_portrait(), "JPEG", quality=90)
    await _refused(await upload(real_client, data[: len(data) // 2], "cut.jpg"), 400, "truncated_image")


async def test_an_empty_upload_is_400(real_client: Any) -> None:
    await _refused(await upload(real_client, b""), 400, "empty_upload")


async def test_a_form_without_photo_and_a_non_multipart_body_are_refused(real_client: Any) -> None:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("picture", io.BytesIO(b"x"), filename="x.png")
    await _refused(await real_client.post("/api/avatars", data=form), 400, "photo_missing")
    await _refused(await real_client.post("/api/avatars", data={"photo": "x"}), 415, "not_multipart")
    await _refused(
        await real_client.post("/api/avatars", data=b"\x89PNG", headers={"Content-Type": "image/png"}),
        415,
        "not_multipart",
    )


async def test_over_the_size_limit_is_413_json(real_client: Any) -> None:
    big = b"\xff\xd8" + b"\x00" * (15 * 1024 * 1024 + 10)
    message = await _refused(await upload(real_client, big, "huge.jpg"), 413, "too_large")
    assert "15.7 MB" in message


async def test_over_the_size_limit_without_content_length_is_413_json(real_client: Any) -> None:
    import aiohttp

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"\x00" * (1024 * 1024)

    with aiohttp.MultipartWriter("form-data") as writer:
        part = writer.append(chunks())
        part.set_content_disposition("form-data", name="photo", filename="stream.jpg")
    resp = await real_client.post("/api/avatars", data=writer, chunked=True)
    await _refused(resp, 413, "too_large")


async def test_a_decompression_bomb_is_refused_from_its_header(real_client: Any) -> None:
    bomb = _png_header_only(10_000, 5_000)  # 50 megapixels in ~60 bytes
    assert len(bomb) < 200
    message = await _refused(await upload(real_client, bomb, "bomb.png"), 413, "too_many_pixels")
    assert "megapixels" in message


async def test_no_face_is_accepted_then_fails_with_no_face(real_client: Any) -> None:
    rng = np.random.default_rng(1)
    sky = Image.fromarray((rng.random((300, 400, 3)) * 40 + 100).astype(np.uint8))
    resp = await upload(real_client, _encode(sky, "PNG"))
    assert resp.status == 202
    body = await wait_for_avatar(real_client, (await resp.json())["id"])
    assert body["status"] == "failed" and body["error"]["code"] == "no_face"
    assert "face" in body["error"]["message"].lower()


async def test_several_faces_use_the_largest_and_say_so(real_client: Any) -> None:
    big = Image.open(FACES / "congress_C001080.jpg").convert("RGB")
    small = Image.open(FACES / "congress_G000553.jpg").convert("RGB")
    small = small.resize((small.width * 7 // 10, small.height * 7 // 10))
    canvas = Image.new("RGB", (big.width + small.width, big.height), (200, 200, 200))
    canvas.paste(big, (0, 0))
    canvas.paste(small, (big.width, 0))
    resp = await upload(real_client, _encode(canvas, "PNG"))
    assert resp.status == 202
    body = await wait_for_avatar(real_client, (await resp.json())["id"], timeout=120)
    assert body["status"] == "ready", body["error"]
    assert body["faces_found"] >= 2
    assert any("faces found" in w and "largest" in w for w in body["warnings"])


@pytest.mark.parametrize(
    "variant", ["greyscale", "cmyk_jpeg", "png_with_alpha", "exif_rotated", "palette_gif"]
)
async def test_odd_but_valid_photos_build(real_client: Any, variant: str) -> None:
    portrait = _portrait()
    if variant == "greyscale":
        data = _encode(portrait.convert("L"), "PNG")
    elif variant == "cmyk_jpeg":
        data = _encode(portrait.convert("CMYK"), "JPEG", quality=92)
    elif variant == "png_with_alpha":
        rgba = portrait.convert("RGBA")
        alpha = np.full((portrait.height, portrait.width), 255, np.uint8)
        alpha[:, :40] = 0  # a transparent margin
        rgba.putalpha(Image.fromarray(alpha))
        data = _encode(rgba, "PNG")
    elif variant == "exif_rotated":
        exif = Image.Exif()
        exif[0x0112] = 6  # stored on its side; viewers rotate it upright
        data = _encode(portrait.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes(), quality=92)
    else:
        data = _encode(portrait.convert("P", palette=Image.Palette.ADAPTIVE), "GIF")
    resp = await upload(real_client, data)
    assert resp.status == 202, await resp.text()
    body = await wait_for_avatar(real_client, (await resp.json())["id"], timeout=120)
    assert body["status"] == "ready", body["error"]
    assert body["faces_found"] == 1


async def test_an_upload_flood_from_one_address_is_refused_with_429(
    make_client: Any, tiny_photo_bytes: bytes
) -> None:
    """Uploads cost the hub real work: past the per-address rate the hub answers 429 with
    Retry-After, before reading the photo, and creates nothing."""
    client = await make_client(upload_rate_per_minute=2)
    for i in range(2):
        assert (await upload(client, tiny_photo_bytes + bytes([i]))).status == 202
    resp = await upload(client, tiny_photo_bytes + b"x")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    body = await resp.json()
    assert body["error"]["code"] == "rate_limited" and "a minute" in body["error"]["message"]
    assert len(await stored_avatar_ids(client)) == 2


async def test_uploads_beyond_the_pending_builds_cap_get_503_busy(
    make_client: Any, tiny_photo_bytes: bytes
) -> None:
    from vrhub.appkeys import db_key
    from vrhub.db import avatars as queries

    client = await make_client(max_pending_builds=2)
    for i in range(2):  # two builds waiting (rows only: no runner picks them up)
        await queries.create_avatar(client.server.app[db_key], photo_key=f"{i:064x}", request={})
    resp = await upload(client, tiny_photo_bytes)
    assert resp.status == 503 and resp.headers["Retry-After"] == "60"
    body = await resp.json()
    assert body["error"]["code"] == "busy" and body["error"]["detail"] == {"pending": 2}
    assert len(await stored_avatar_ids(client)) == 2


def test_token_buckets_refill_and_stay_bounded() -> None:
    from vrhub.api.ratelimit import TokenBuckets

    now = [0.0]
    buckets = TokenBuckets(per_minute=6, max_clients=3, clock=lambda: now[0])
    assert all(buckets.take("a") == 0.0 for _ in range(6))  # a burst of 6
    wait = buckets.take("a")
    assert 9.9 < wait <= 10.0  # one token per 10 s
    now[0] += 10.0
    assert buckets.take("a") == 0.0 and buckets.take("a") > 0
    assert buckets.take("b") == 0.0  # addresses are independent
    for other in ("c", "d", "e"):
        buckets.take(other)
    assert len(buckets._buckets) == 3  # the least recently seen were forgotten
    assert TokenBuckets(per_minute=0).take("a") == 0.0  # 0 = no limit
