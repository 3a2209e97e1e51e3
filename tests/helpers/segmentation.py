"""Small mask datasets written by the tests: bright disks (class 1) and squares (class 2) on dark noise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def blob_sample(rng: np.random.Generator, height: int, width: int, num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (H, W), mask uint8 (H, W)): a few shapes of classes 1..num_classes-1."""
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), np.uint8)
    for _ in range(3):
        cls = int(rng.integers(1, num_classes))
        cy, cx, r = rng.integers(6, height - 6), rng.integers(6, width - 6), rng.integers(3, 7)
        shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if cls == 1 else (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        mask[shape] = cls
    image = (rng.normal(30, 8, (height, width)) + 150 * (mask > 0)).clip(0, 255).astype(np.uint8)
    return image, mask


def write_mask_dataset(root: Path, splits: dict[str, int] | None = None, num_classes: int = 2,
                       sizes: tuple[tuple[int, int], ...] = ((40, 52), (48, 48)), classes_yaml: str | None = None,
                       seed: int = 0) -> Path:
    """root/{split}/{images,masks}/NNN.png; image sizes cycle through ``sizes``."""
    rng = np.random.default_rng(seed)
    for split, count in (splits or {"train": 6, "val": 2}).items():
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, mask = blob_sample(rng, *sizes[i % len(sizes)], num_classes=num_classes)
            Image.fromarray(image).save(root / split / "images" / f"{i:03d}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{i:03d}.png")
    if classes_yaml is not None:
        (root / "classes.yaml").write_text(classes_yaml)
    return root


@pytest.fixture()
def mask_dataset(tmp_path: Path) -> Path:
    return write_mask_dataset(tmp_path / "blobs", classes_yaml="classes: [background, disk]\n")
