"""Render synthetic hair portraits with exact labels, to augment the hair-attribute training set.

Usage:
    .venv/bin/python scripts/render_hair_synthetic.py [--data ../shared/data] [--out /tmp/vrhub_hair_synth]
        [--identities 24] [--seed 20261201]

The hair pool is mostly short straight hair (bald 5, long 6, curly 8, coily 4 of 596). This script
builds avatars from real faces and swaps in every library hairstyle, so the rare classes get images
whose labels are exact (they follow from the style that was drawn):

1. Identities: ``--identities`` portraits drawn (seeded) from the *training* part of ``hair_pool``
   (never from ``held_out_split()``, never from the other shared portraits, which are evaluation
   sets), among heads labelled short / buzz / bald so that the photo's clothes carry no hair.
2. Each identity runs the real pipeline (``run_pipeline`` with ``default_registry().select()``,
   ``hair_model=none``) once; its head then gets each style of ``STYLE_LABELS`` built by
   ``vrhub.hair.styles.build_style`` with a seeded colour, fringe, parting and baldness pattern.
3. Rendering (``vrhub.evaluation.render``: z-buffered, alpha-tested double-sided hair cards, as
   glTF alphaMode MASK; no alpha blending) through the camera fitted to the source photo's
   landmarks, turned by a small seeded yaw/pitch, at the photo's size (300x367, as the pool). The
   background is photo-like: the source photo's backdrop with the person inpainted away, and the
   photo's clothes below the chin pasted back over the render except where hair is drawn. The
   result goes through JPEG quality 90 once (the pool's compression) and is saved as PNG.
4. ``labels.csv`` in the pool's columns (length, texture, colour, fringe, parting, baldness,
   headwear, glasses, notes) plus identity, style, yaw and pitch; parting is on the viewer's side,
   as in the pool (a style parted on the subject's own left is ``right``). ``contact_sheet.png``
   shows the first images.

Nothing here is written into the repository. Deterministic for a given seed and code version.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from vrhub.evaluation.render import Camera, avatar_layers, photo_camera, render  # noqa: E402
from vrhub.hair.styles import build_style  # noqa: E402
from vrhub.pipeline.types import FaceObservation, HairAttributes, Photo, RiggedAvatar  # noqa: E402

SEED = 20261201

#: library style -> (length, texture) in the pool's label vocabulary. bun and ponytail are left out:
#: pulled-back hair has no clear length label in the pool. The library has no coily style.
STYLE_LABELS: dict[str, tuple[str, str]] = {
    "bald": ("bald", "n/a"),
    "buzz": ("buzz", "n/a"),
    "spiky_short": ("short", "straight"),
    "short_straight": ("short", "straight"),
    "short_curly": ("short", "curly"),
    "medium_straight": ("medium", "straight"),
    "medium_wavy": ("medium", "wavy"),
    "medium_curly": ("medium", "curly"),
    "long_straight": ("long", "straight"),
    "long_wavy": ("long", "wavy"),
    "long_curly": ("long", "curly"),
}

#: pool colour name -> typical RGB of such hair (jittered per image)
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (28, 24, 22),
    "dark_brown": (62, 44, 32),
    "light_brown": (118, 84, 56),
    "blonde": (196, 162, 110),
    "red": (140, 62, 34),
    "grey": (135, 132, 128),
    "white": (212, 208, 200),
}

#: the style's parting is on the subject's own side; the pool labels the viewer's side
VIEWER_PARTING = {"left": "right", "right": "left", "centre": "centre", "none": "none"}

FIELDS = [
    "file",
    "length",
    "texture",
    "colour",
    "fringe",
    "parting",
    "baldness",
    "headwear",
    "glasses",
    "notes",
    "identity",
    "style",
    "yaw",
    "pitch",
]


@dataclasses.dataclass(frozen=True)
class Variant:
    """One synthetic portrait: a style and the attributes that vary it, plus the view."""

    style: str
    colour: str
    colour_rgb: tuple[int, int, int]
    fringe: str  # none | partial | full (the style's own vocabulary)
    parting: str  # none | left | centre | right, the subject's own side
    baldness: str  # none | receding | crown_or_top | full
    yaw: float
    pitch: float

    def attributes(self) -> HairAttributes:
        length, texture = STYLE_LABELS[self.style]
        return HairAttributes(
            length=length,
            texture=texture if texture != "n/a" else "straight",
            fringe=self.fringe,
            parting=self.parting,
            baldness=self.baldness,
            colour_rgb=self.colour_rgb,
            colour_name=self.colour,
        )


def draw_variant(style: str, seed: int) -> Variant:
    """Seeded colour / fringe / parting / baldness / view for ``style`` (only combinations the style
    can show: no fringe or parting on bald or buzz heads, no bare crown under medium or long hair)."""
    rng = np.random.default_rng(seed)
    colour = str(rng.choice(list(COLOURS)))
    rgb = np.clip(np.array(COLOURS[colour]) * rng.uniform(0.85, 1.15) + rng.normal(0, 6, 3), 0, 255)
    fringe, parting, baldness = "none", "none", "none"
    if style == "bald":
        baldness = "full"
    elif style != "buzz":
        fringe = str(rng.choice(["none", "partial", "full"], p=[0.5, 0.25, 0.25]))
        parting = str(rng.choice(["none", "left", "right", "centre"], p=[0.4, 0.25, 0.2, 0.15]))
        if style.startswith(("short", "spiky")):
            baldness = str(rng.choice(["none", "receding", "crown_or_top"], p=[0.7, 0.2, 0.1]))
        else:
            baldness = str(rng.choice(["none", "receding"], p=[0.85, 0.15]))
        if baldness != "none":
            fringe = "none"  # a fringe grows from the front hairline a receding pattern removes
    return Variant(
        style=style,
        colour=colour,
        colour_rgb=(int(rgb[0]), int(rgb[1]), int(rgb[2])),
        fringe=fringe,
        parting=parting,
        baldness=baldness,
        yaw=float(rng.uniform(-8, 8)),
        pitch=float(rng.uniform(-4, 4)),
    )


def labels_of(variant: Variant) -> dict[str, str]:
    """The pool-format label row of a variant (exact: it follows from what was drawn)."""
    length, texture = STYLE_LABELS[variant.style]
    return {
        "length": length,
        "texture": texture,
        "colour": variant.colour,
        "fringe": "yes" if variant.fringe in ("partial", "full") else "no",
        "parting": VIEWER_PARTING[variant.parting],
        "baldness": variant.baldness,
        "headwear": "none",
        "style": variant.style,
        "yaw": f"{variant.yaw:.2f}",
        "pitch": f"{variant.pitch:.2f}",
    }


def turned_camera(camera: Camera, centre: np.ndarray, yaw_deg: float, pitch_deg: float) -> Camera:
    """``camera`` with the head turned by yaw/pitch about ``centre`` (head frame, metres), keeping
    the centre's projection where it was."""
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rot = camera.rotation @ rx @ ry
    t = camera.translation + camera.scale * (camera.rotation @ centre - rot @ centre)
    return Camera(rot, camera.scale, t)


@dataclasses.dataclass(frozen=True)
class Identity:
    """A source portrait turned into an avatar, with what the renders need from the photo.

    backdrop : (h, w, 3) uint8, the photo with the person inpainted away; clothes : (h, w) float32
    0..1, where the photo's clothes (below the chin) are pasted back over the render.
    """

    name: str
    photo: Photo
    face: FaceObservation
    avatar: RiggedAvatar
    backdrop: np.ndarray
    clothes: np.ndarray


def make_identity(photo: Photo) -> Identity | None:
    """Run the pipeline (no hair) on ``photo``; None when it finds no usable face."""
    from vrhub.pipeline.plugins import default_registry
    from vrhub.pipeline.run import PipelineError, StageFailed, run_pipeline
    from vrhub.stages.landmark_segment import segment_photo

    try:
        res = run_pipeline(photo, default_registry().select({"hair_model": "none"}))
    except (PipelineError, StageFailed):
        return None
    seg = segment_photo(photo, res.face)
    h, w = photo.height, photo.width
    person = (seg.background < 0.8).astype(np.uint8)
    person = cv2.dilate(person, np.ones((9, 9), np.uint8))
    small = (max(8, w // 4), max(8, h // 4))
    bg_small = cv2.inpaint(
        cv2.resize(photo.pixels, small, interpolation=cv2.INTER_AREA),
        cv2.resize(person, small, interpolation=cv2.INTER_NEAREST),
        5,
        cv2.INPAINT_TELEA,
    )
    backdrop = cv2.GaussianBlur(cv2.resize(bg_small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    # keep the photo's real texture where it is backdrop already
    keep = cv2.GaussianBlur(seg.background.astype(np.float32), (0, 0), 2)[..., None] ** 4
    backdrop = (keep * photo.pixels + (1 - keep) * backdrop).astype(np.uint8)
    chin_y = float(res.face.landmarks[152, 1])
    rows = np.arange(h, dtype=np.float32)[:, None]
    below = np.clip((rows - chin_y - 0.03 * h) / (0.03 * h), 0, 1)
    clothes = cv2.GaussianBlur(np.clip(seg.body * below, 0, 1).astype(np.float32), (0, 0), 1.0)
    return Identity(photo.name, photo, res.face, res.avatar, backdrop, clothes)


def render_variant(identity: Identity, variant: Variant, seed: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB portrait of ``identity`` wearing ``variant``."""
    head = identity.avatar.head
    hair = build_style(variant.style, variant.attributes(), head, seed=seed % 10_000)
    layers = avatar_layers(dataclasses.replace(identity.avatar, hair=hair))
    camera = photo_camera(identity.face, layers[0].vertices)
    centre = np.asarray(head.vertices, np.float64)[np.asarray(head.landmark_vertices)].mean(0)
    camera = turned_camera(camera, centre, variant.yaw, variant.pitch)
    size = (identity.photo.width, identity.photo.height)
    out = render(layers, camera, size, identity.backdrop, supersample=2)
    hair_seen = (out.layer_ids == 1).astype(np.float32) if len(layers) > 1 else np.zeros(out.coverage.shape)
    hair_seen = cv2.GaussianBlur(hair_seen, (0, 0), 0.7)
    a = (identity.clothes * (1 - hair_seen))[..., None]
    img = (a * identity.photo.pixels + (1 - a) * out.image.astype(np.float32) + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return np.asarray(Image.open(buf).convert("RGB"))


def pick_identities(data: Path, n: int, seed: int) -> list[str]:
    """``n`` training-split pool files (short / buzz / bald, no headwear), seeded."""
    from train_hair_attributes import held_out_split, pool_labels

    rows = pool_labels(data)
    held = held_out_split(rows)
    ok = [
        r["file"]
        for i, r in enumerate(rows)
        if i not in held and r["length"] in ("short", "buzz", "bald") and r["headwear"] == "none"
    ]
    rng = np.random.default_rng(seed)
    return [ok[i] for i in rng.permutation(len(ok))]  # in order; the caller skips failures


def contact_sheet(images: list[np.ndarray], captions: list[str], cols: int = 11) -> np.ndarray:
    """Tiles of ``images`` (same size) at half size with a caption each."""
    th, tw = images[0].shape[0] // 2, images[0].shape[1] // 2
    rows = -(-len(images) // cols)
    sheet = np.full((rows * th, cols * tw, 3), 255, np.uint8)
    for k, (im, cap) in enumerate(zip(images, captions, strict=True)):
        r, c = divmod(k, cols)
        tile = cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, cap, (3, th - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 0), 1, cv2.LINE_AA)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = tile
    return sheet


def main() -> None:
    from vrhub.hair.offline_face import load_photo

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("/tmp/vrhub_hair_synth"))
    ap.add_argument("--identities", type=int, default=24)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--sheet-rows", type=int, default=6, help="identities shown in contact_sheet.png")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    rows_out: list[dict[str, str]] = []
    sheet_imgs, sheet_caps = [], []
    t0 = time.time()
    used = 0
    for file in pick_identities(args.data, args.identities * 3, args.seed):
        if used == args.identities:
            break
        ident = make_identity(load_photo(args.data / "hair_pool" / file))
        if ident is None:
            print(f"  {file}: no avatar, skipped")
            continue
        for s, style in enumerate(STYLE_LABELS):
            seed = int(hashlib.sha256(f"{args.seed}|{file}|{style}".encode()).hexdigest()[:8], 16)
            variant = draw_variant(style, seed)
            img = render_variant(ident, variant, seed)
            name = f"{Path(file).stem}_{s:02d}_{style}.png"
            Image.fromarray(img).save(args.out / name)
            row = {"file": name, **labels_of(variant), "glasses": "", "notes": "synthetic", "identity": file}
            rows_out.append(row)
            if used < args.sheet_rows:
                sheet_imgs.append(img)
                sheet_caps.append(
                    f"{row['length']}/{row['texture']} f{row['fringe'][0]} p{row['parting'][0]}"
                )
        used += 1
        print(
            f"  {used}/{args.identities} {file}: {len(rows_out)} images ({time.time() - t0:.0f} s)",
            flush=True,
        )
    with open(args.out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows_out)
    if sheet_imgs:
        Image.fromarray(contact_sheet(sheet_imgs, sheet_caps, cols=len(STYLE_LABELS))).save(
            args.out / "contact_sheet.png"
        )
    print(f"wrote {len(rows_out)} images + labels.csv to {args.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
