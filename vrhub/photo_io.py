"""Turning uploaded bytes into a Photo: format checks, size limits, EXIF rotation, colour modes.

Every refusal is a PhotoError with a code, an HTTP status and a message a person understands.
The pixel limit is checked from the image header, before any pixel is decoded, so a
decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vrhub.pipeline.run import PipelineError
from vrhub.pipeline.types import Photo

#: Photos are scaled down to this longest side before the pipeline sees them: enough for a
#: 2048 px texture of the face, and it keeps detection fast on phone-camera photos.
MAX_WORKING_SIDE = 2048
#: Smallest side we try to find a face in.
MIN_SIDE = 64

FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO", "HEIF")


def _register_heif() -> bool:
    """HEIC/HEIF (iPhones' default photo format) through pi-heif, the decode-only build of
    pillow-heif (libheif + libde265, LGPL; no encoder is bundled)."""
    try:
        import pi_heif
    except ImportError:  # an install without it answers HEIC uploads with 415, like any other format
        return False
    pi_heif.register_heif_opener()
    return True


_register_heif()


class PhotoError(PipelineError):
    """An upload that cannot be used as a photo. ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, code: str, status: int = 422, detail: dict | None = None):
        super().__init__(message, code=code, detail=detail)
        self.status = status


def decode_photo(
    data: bytes,
    *,
    max_bytes: int = 15 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    name: str = "photo",
) -> Photo:
    """Decode ``data`` into an RGB Photo, honouring EXIF orientation.

    Greyscale, palette, CMYK and 16-bit images are converted to 8-bit RGB; transparent pixels
    are composited over a neutral grey (so a cut-out portrait keeps its silhouette).
    """
    if not data:
        raise PhotoError(
            "The upload is empty: send a JPEG, PNG or HEIC photo of a face.", "empty_upload", 400
        )
    if len(data) > max_bytes:
        raise PhotoError(
            f"The photo is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB.",
            "too_large",
            413,
            {"bytes": len(data), "limit": max_bytes},
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.MAX_IMAGE_PIXELS = None  # we check ourselves, below, from the header
    except UnidentifiedImageError:
        raise PhotoError(
            "The upload is not an image we can read; send a JPEG, PNG, WebP or HEIC photo.",
            "not_an_image",
            415,
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad upload
        raise PhotoError(f"The image could not be read ({exc}).", "unreadable_image", 400) from None
    if image.format not in FORMATS:
        raise PhotoError(
            f"Images in {image.format} format are not accepted; send a JPEG, PNG, WebP or HEIC photo.",
            "unsupported_format",
            415,
        )
    width, height = image.size
    if width * height > max_pixels:
        raise PhotoError(
            f"The image is {width}x{height} = {width * height / 1e6:.0f} megapixels; the limit is "
            f"{max_pixels / 1e6:.0f} megapixels.",
            "too_many_pixels",
            413,
            {"width": width, "height": height, "limit": max_pixels},
        )
    if min(width, height) < MIN_SIDE:
        raise PhotoError(
            f"The image is only {width}x{height} pixels; a face needs at least {MIN_SIDE} pixels on each side.",
            "too_small",
            422,
        )
    try:
        image.load()
        image = ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(
            f"The image file is damaged or incomplete ({exc}); upload the whole file again.",
            "truncated_image",
            400,
        ) from None
    pixels = _to_rgb(image)
    pixels = _limit_size(pixels, MAX_WORKING_SIDE)
    return Photo(pixels=np.ascontiguousarray(pixels), name=name)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """(h, w, 3) uint8 RGB from any PIL mode."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = max(float(arr.max()), 1.0)
        grey = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        grey = np.float32(128.0)
        return np.clip(rgba[:, :, :3] * alpha + grey * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _limit_size(pixels: np.ndarray, max_side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return pixels
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
