"""Built-in ``nuclei``: the 512x512 fluorescence image with 125 labelled nuclei (DSB2018 / BBBC038)
shipped inside the ``stardist==0.9.2`` wheel (read from the zip; stardist is never imported).

Split: the right quarter of the image (columns 384..511) is validation, the rest training.
Both are cut into 128-px tiles (train: stride 64, overlapping; val: stride 128, disjoint), so
train and val objects have the same pixel scale. A nucleus cut by a tile edge keeps the visible
part (boxes from ``regionprops`` of the cropped instance mask); slivers under 3 px are dropped.

Written under ``root``:
- ``coco/{train,val}/images/*.png`` + ``coco/{train,val}/annotations.json`` (one class "nucleus")
- ``masks/{train,val}/{images,masks}/*.png`` (mask: nucleus=1, background=0) + ``masks/classes.yaml``
- ``info.json``: tile counts and box counts per split.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.cache import fetch_wheel
from toolkit.data.formats.coco import write_coco
from toolkit.data.formats.detection import DetectionData, ImageRecord

REQUIREMENT = "stardist==0.9.2"
MEMBERS = ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif")
TILE = 128
VAL_FROM_COLUMN = 384  # right quarter of the 512-px image
MIN_SIDE = 3  # boxes with a side below this (pixels) are slivers of nuclei cut by a tile edge
CLASSES = ["nucleus"]


def read_source(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (512, 512), instance mask int32 (512, 512)) from the wheel."""
    import tifffile

    with zipfile.ZipFile(wheel) as zf:
        image, mask = (tifffile.imread(io.BytesIO(zf.read(m))) for m in MEMBERS)
    low, high = np.percentile(image, (0.0, 99.9))
    image = ((image.astype(np.float32) - low) / max(high - low, 1e-6)).clip(0, 1)
    return (image * 255).round().astype(np.uint8), mask.astype(np.int32)


def tile_origins(height: int, width: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of TILE-px tiles covering a region with the given stride."""
    ys = range(0, height - TILE + 1, stride)
    xs = range(0, width - TILE + 1, stride)
    return [(y, x) for y in ys for x in xs]


def instance_boxes(mask: np.ndarray) -> np.ndarray:
    """(N, 4) float32 xyxy pixel boxes (x2/y2 exclusive) of the instances of a label image."""
    from skimage.measure import regionprops

    boxes = [(p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]) for p in regionprops(mask)]
    boxes = [b for b in boxes if min(b[2] - b[0], b[3] - b[1]) >= MIN_SIDE]
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _write_split(root: Path, split: str, image: np.ndarray, mask: np.ndarray, stride: int) -> DetectionData:
    img_dir = root / "masks" / split / "images"
    mask_dir = root / "masks" / split / "masks"
    for d in (img_dir, mask_dir):
        d.mkdir(parents=True, exist_ok=True)
    records = []
    for y, x in tile_origins(*image.shape, stride):
        name = f"{split}_y{y:03d}_x{x:03d}.png"
        tile, tile_mask = image[y:y + TILE, x:x + TILE], mask[y:y + TILE, x:x + TILE]
        Image.fromarray(tile).save(img_dir / name)
        Image.fromarray((tile_mask > 0).astype(np.uint8)).save(mask_dir / name)
        boxes = instance_boxes(tile_mask)
        records.append(ImageRecord(img_dir / name, TILE, TILE, boxes, np.zeros(len(boxes), np.int64)))
    data = DetectionData(CLASSES, records)
    write_coco(data, root / "coco" / split)
    return data


def prepare_nuclei(root: Path) -> Path:
    """Write the COCO and mask versions of the nuclei data under ``root`` (idempotent); return ``root``."""
    root = Path(root)
    if (root / "info.json").is_file():
        return root
    image, mask = read_source(fetch_wheel(REQUIREMENT))
    train = _write_split(root, "train", image[:, :VAL_FROM_COLUMN], mask[:, :VAL_FROM_COLUMN], TILE // 2)
    val = _write_split(root, "val", image[:, VAL_FROM_COLUMN:], mask[:, VAL_FROM_COLUMN:], TILE)
    (root / "masks" / "classes.yaml").write_text("classes: [background, nucleus]\n")
    info = {"source": REQUIREMENT, "tile": TILE, "val_columns": [VAL_FROM_COLUMN, image.shape[1]],
            "train": {"images": len(train.records), "boxes": train.num_boxes},
            "val": {"images": len(val.records), "boxes": val.num_boxes}}
    tmp = root / "info.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, root / "info.json")
    return root

