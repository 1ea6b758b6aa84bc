"""Decoding uploads: every bad photo is refused with a code and a readable message; odd but valid ones decode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vrhub.photo_io import MAX_WORKING_SIDE, PhotoError, decode_photo

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASTRONAUT = SHARED / "faces" / "skimage_astronaut_eileen_collins.png"


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    if not ASTRONAUT.exists():
        pytest.skip("shared data not present")
    return Image.open(ASTRONAUT).convert("RGB")


def test_real_photo_decodes_to_rgb_uint8(portrait: Image.Image) -> None:
    photo = decode_photo(ASTRONAUT.read_bytes())
    assert photo.pixels.dtype == np.uint8
    assert photo.pixels.shape == (512, 512, 3)
    assert np.array_equal(photo.pixels, np.asarray(portrait))


def test_exif_orientation_is_applied(portrait: Image.Image) -> None:
    # Store the portrait rotated on its side with EXIF orientation 6 ("rotate 90 CW to view").
    stored = portrait.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = decode_photo(_encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    upright = np.asarray(portrait, dtype=np.float32)
    assert photo.pixels.shape == upright.shape
    assert np.abs(photo.pixels.astype(np.float32) - upright).mean() < 6.0


def test_greyscale_becomes_three_equal_channels(portrait: Image.Image) -> None:
    photo = decode_photo(_encode(portrait.convert("L"), "PNG"))
    assert photo.pixels.shape == (512, 512, 3)
    assert np.array_equal(photo.pixels[:, :, 0], photo.pixels[:, :, 2])


def test_cmyk_jpeg_becomes_rgb(portrait: Image.Image) -> None:
    photo = decode_photo(_encode(portrait.convert("CMYK"), "JPEG", quality=95))
    diff = np.abs(photo.pixels.astype(np.float32) - np.asarray(portrait, dtype=np.float32)).mean()
    assert diff < 12.0


def test_png_alpha_is_composited_over_grey(portrait: Image.Image) -> None:
    rgba = portrait.convert("RGBA")
    alpha = np.full((512, 512), 255, np.uint8)
    alpha[:, :100] = 0
    rgba.putalpha(Image.fromarray(alpha))
    photo = decode_photo(_encode(rgba, "PNG"))
    assert (photo.pixels[:, :100] == 128).all()
    assert np.array_equal(photo.pixels[:, 200:], np.asarray(portrait)[:, 200:])


def test_large_photo_is_scaled_to_working_size() -> None:
    big = Image.new("RGB", (4000, 3000), (120, 100, 90))
    photo = decode_photo(_encode(big, "JPEG"))
    assert max(photo.pixels.shape[:2]) == MAX_WORKING_SIDE
    assert photo.pixels.shape[:2] == (1536, 2048)


@pytest.mark.parametrize(
    ("payload", "code", "status"),
    [
        (b"", "empty_upload", 400),
        (b"this is a text file, not a photo" * 10, "not_an_image", 415),
        (b"%PDF-1.4\n" + b"0" * 500, "not_an_image", 415),
    ],
)
def test_non_images_are_refused(payload: bytes, code: str, status: int) -> None:
    with pytest.raises(PhotoError) as info:
        decode_photo(payload)
    assert info.value.code == code
    assert info.value.status == status
    assert "photo" in str(info.value) or "image" in str(info.value)


def test_truncated_jpeg_is_refused(portrait: Image.Image) -> None:
    data = _encode(portrait, "JPEG", quality=95)
    with pytest.raises(PhotoError) as info:
        decode_photo(data[: len(data) // 2])
    assert info.value.code == "truncated_image"
    assert info.value.status == 400


def test_over_size_limit_is_refused_before_decoding() -> None:
    with pytest.raises(PhotoError) as info:
        decode_photo(b"\xff\xd8" + b"0" * 2000, max_bytes=1000)
    assert info.value.code == "too_large"
    assert info.value.status == 413
    assert info.value.detail["limit"] == 1000


def test_decompression_bomb_is_refused_from_header() -> None:
    # 9000 x 9000 one-bit PNG: a few kilobytes on disk, 81 megapixels decoded.
    bomb = _encode(Image.new("1", (9000, 9000)), "PNG")
    assert len(bomb) < 100_000
    with pytest.raises(PhotoError) as info:
        decode_photo(bomb)
    assert info.value.code == "too_many_pixels"
    assert info.value.status == 413
    assert "megapixels" in str(info.value)


def test_tiny_image_is_refused() -> None:
    with pytest.raises(PhotoError) as info:
        decode_photo(_encode(Image.new("RGB", (20, 30)), "PNG"))
    assert info.value.code == "too_small"


HEIC = Path(__file__).resolve().parent / "data" / "pattern.heic"  # 320x240, made with pillow-heif


def test_heic_from_an_iphone_decodes() -> None:
    """HEIC is the iPhone's default photo format: it decodes like any other upload (pi-heif)."""
    photo = decode_photo(HEIC.read_bytes())
    assert photo.pixels.shape == (240, 320, 3) and photo.pixels.dtype == np.uint8
    assert np.abs(photo.pixels[120, 160].astype(int) - (200, 40, 40)).max() < 12  # the red block
    assert photo.pixels[5, 300, 0] > 200 and photo.pixels[230, 5, 1] > 200  # the gradients


def test_a_truncated_heic_is_refused() -> None:
    data = HEIC.read_bytes()
    with pytest.raises(PhotoError) as err:
        decode_photo(data[: len(data) // 3])
    assert err.value.status in (400, 415) and err.value.code in (
        "truncated_image",
        "unreadable_image",
        "not_an_image",
    )
