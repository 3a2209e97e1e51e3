"""A detection dataset unlike the built-in nuclei, made on the spot: 256 x 256 photos-like images (smooth colour
gradients and noise) with 1-4 filled circles, squares and triangles of 20-90 px, written as a YOLO folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ["circle", "square", "triangle"]


def draw_image(rng: np.random.Generator, side: int = 256) -> tuple[Image.Image, list[tuple[int, float, ...]]]:
    """An RGB image and its objects as (class, cx, cy, w, h) normalised YOLO rows."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = rng.uniform(0, 255, 3)[None, None] * (0.5 + 0.5 * xx[..., None]) + rng.normal(0, 12, (side, side, 3))
    image = Image.fromarray(np.clip(base + 40 * yy[..., None], 0, 255).astype(np.uint8))
    draw, rows, taken = ImageDraw.Draw(image), [], []
    for _ in range(int(rng.integers(1, 5))):
        size = int(rng.integers(20, 91))
        x, y = (int(v) for v in rng.integers(0, side - size, 2))
        if any(x < bx + bs and bx < x + size and y < by + bs and by < y + size for bx, by, bs in taken):
            continue  # no overlaps: every object stays whole
        taken.append((x, y, size))
        cls = int(rng.integers(0, len(CLASSES)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = [x, y, x + size - 1, y + size - 1]
        if cls == 0:
            draw.ellipse(box, fill=colour)
        elif cls == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(x, y + size - 1), (x + size - 1, y + size - 1), (x + size // 2, y)], fill=colour)
        rows.append((cls, (x + size / 2) / side, (y + size / 2) / side, size / side, size / side))
    return image, rows


def write_shapes_yolo(root: Path, n_train: int = 48, n_val: int = 16, seed: int = 0) -> Path:
    """``root/data.yaml`` + ``images/{train,val}`` + ``labels/{train,val}``, as Ultralytics writes them."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, rows = draw_image(rng)
            image.save(root / "images" / split / f"{split}_{i:04d}.jpg", quality=92)
            (root / "labels" / split / f"{split}_{i:04d}.txt").write_text(
                "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows))
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n"
                                    + "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASSES)))
    return root
