"""Tiny synthetic instance-segmentation splits: gray images with a few non-overlapping discs and squares."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.data.formats.instance_labels import objects_of
from toolkit.data.formats.instance_record import InstanceData, InstanceRecord

SIZE = (40, 48)  # H, W


def label_image(seed: int, count: int = 3, shape: tuple[int, int] = SIZE) -> np.ndarray:
    """(H, W) int64 label image with ``count`` objects (discs and squares, 1..count) that do not touch."""
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, np.int64)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    placed = 0
    while placed < count:
        r = int(rng.integers(3, 7))
        cy, cx = int(rng.integers(r, shape[0] - r)), int(rng.integers(r, shape[1] - r))
        shape_mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if placed % 2 == 0 else \
            ((abs(yy - cy) <= r) & (abs(xx - cx) <= r))
        grown = np.zeros_like(shape_mask)
        grown[max(cy - r - 2, 0):cy + r + 3, max(cx - r - 2, 0):cx + r + 3] = True
        if (out[grown] == 0).all():
            placed += 1
            out[shape_mask] = placed
    return out


def make_instance_split(folder: Path, images: int, seed: int = 0,
                        classes: tuple[str, ...] = ("nucleus",)) -> InstanceData:
    """Write ``images`` PNGs to ``folder`` and return their InstanceData (objects cycle through the classes)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(images):
        labels = label_image(seed * 100 + i)
        image = np.where(labels > 0, 200, 30).astype(np.uint8)
        path = folder / f"img{i}.png"
        Image.fromarray(image).save(path)
        rles, _, crowd = objects_of(labels)
        classes_of = np.arange(len(rles), dtype=np.int64) % len(classes)
        records.append(InstanceRecord(path, SIZE[1], SIZE[0], rles, classes_of, crowd))
    return InstanceData(list(classes), records)
