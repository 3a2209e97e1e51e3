"""Built-in ``nuclei``: the 512x512 fluorescence image with 125 labelled nuclei (DSB2018 / BBBC038)
shipped inside the ``stardist==0.9.2`` wheel (read from the zip; stardist is never imported).

Split: the right quarter of the image (columns 384..511) is validation, the rest training.
Both are cut into 128-px tiles (train: stride 64, overlapping; val: stride 128, disjoint), so
train and val objects have the same pixel scale. A nucleus cut by a tile edge or by the split line
keeps its visible part (boxes from ``regionprops`` of the cropped instance mask). When that part is
under ``MIN_VISIBILITY`` of the whole nucleus, it is an ignore region (COCO ``iscrowd``), the rule of
the detection augmentation's default ``min_visibility``. Examples are a 3x3-px corner of a nucleus,
or the edge of a nucleus that lies in the other split.

Written under ``root``:
- ``coco/{train,val}/images/*.png`` + ``coco/{train,val}/annotations.json`` (one class "nucleus")
- ``masks/{train,val}/{images,masks}/*.png`` (mask: nucleus=1, background=0) + ``masks/classes.yaml``
- ``instances/{train,val}/{images,labels}/*.png`` (16-bit label images, each nucleus its id in the source image)
  + ``instances/classes.yaml``; label images cannot mark ignore regions, so ``instances/coco/{train,val}`` holds
  the same objects as COCO RLEs with ``iscrowd`` (what ``nuclei_instances`` reads: the instance task's split).
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
from toolkit.data.formats.instance_coco import write_coco_instances
from toolkit.data.formats.instance_labels import objects_of
from toolkit.data.formats.instance_record import InstanceData, InstanceRecord
from toolkit.data.formats.instances import load_instances

REQUIREMENT = "stardist==0.9.2"
MEMBERS = ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif")
TILE = 128
VAL_FROM_COLUMN = 384  # right quarter of the 512-px image
MIN_VISIBILITY = 0.3  # a nucleus cut to less than this fraction of its area is an ignore region
CLASSES = ["nucleus"]
VERSION = 3  # of the labelling rule: a prepared copy of another version is written again


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


def instance_boxes(mask: np.ndarray, areas: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(objects (N, 4), ignore regions (M, 4)): float32 xyxy pixel boxes (x2/y2 exclusive) of the
    instances of a tile's label image. ``areas``: pixels of each label in the whole image."""
    from skimage.measure import regionprops

    boxes: dict[bool, list] = {True: [], False: []}
    for p in regionprops(mask):
        boxes[p.area >= MIN_VISIBILITY * areas[p.label]].append((p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]))
    return tuple(np.asarray(boxes[whole], np.float32).reshape(-1, 4) for whole in (True, False))


def instance_record(path: Path, mask: np.ndarray, areas: dict[int, int]) -> InstanceRecord:
    """The objects of a tile's label image ``mask`` (in label order); those cut to under ``MIN_VISIBILITY`` of
    their whole area (``areas``: pixels of each label in the whole image) are crowd (ignore regions)."""
    rles, labels, _ = objects_of(mask)
    ids, counts = np.unique(mask[mask > 0], return_counts=True)
    crowd = np.array([count < MIN_VISIBILITY * areas[i] for i, count in zip(ids.tolist(), counts.tolist())], np.int64)
    return InstanceRecord(path, mask.shape[1], mask.shape[0], rles, labels, crowd)


def _write_split(root: Path, split: str, image: np.ndarray, mask: np.ndarray, stride: int,
                 areas: dict[int, int]) -> tuple[DetectionData, InstanceData]:
    dirs = {"image": root / "masks" / split / "images", "mask": root / "masks" / split / "masks",
            "inst_image": root / "instances" / split / "images", "labels": root / "instances" / split / "labels"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    records, instances = [], []
    for y, x in tile_origins(*image.shape, stride):
        name = f"{split}_y{y:03d}_x{x:03d}.png"
        tile, tile_mask = image[y:y + TILE, x:x + TILE], mask[y:y + TILE, x:x + TILE]
        for folder in ("image", "inst_image"):
            Image.fromarray(tile).save(dirs[folder] / name)
        Image.fromarray((tile_mask > 0).astype(np.uint8)).save(dirs["mask"] / name)
        Image.fromarray(tile_mask.astype(np.uint16)).save(dirs["labels"] / name)
        boxes, ignore = instance_boxes(tile_mask, areas)
        records.append(ImageRecord(dirs["image"] / name, TILE, TILE, boxes, np.zeros(len(boxes), np.int64),
                                   ignore, np.zeros(len(ignore), np.int64)))
        instances.append(instance_record(dirs["inst_image"] / name, tile_mask, areas))
    data, inst = DetectionData(CLASSES, records), InstanceData(CLASSES, instances)
    write_coco(data, root / "coco" / split)
    write_coco_instances(inst, root / "instances" / "coco" / split)
    return data, inst


def prepare_nuclei(root: Path) -> Path:
    """Write the COCO and mask versions of the nuclei data under ``root`` (idempotent); return ``root``."""
    root = Path(root)
    if (root / "info.json").is_file() and json.loads((root / "info.json").read_text()).get("version") == VERSION:
        return root
    image, mask = read_source(fetch_wheel(REQUIREMENT))
    labels, counts = np.unique(mask, return_counts=True)
    areas = dict(zip(labels.tolist(), counts.tolist()))
    train = _write_split(root, "train", image[:, :VAL_FROM_COLUMN], mask[:, :VAL_FROM_COLUMN], TILE // 2, areas)
    val = _write_split(root, "val", image[:, VAL_FROM_COLUMN:], mask[:, VAL_FROM_COLUMN:], TILE, areas)
    (root / "masks" / "classes.yaml").write_text("classes: [background, nucleus]\n")
    (root / "instances" / "classes.yaml").write_text(f"classes: [{CLASSES[0]}]\n")
    info = {"version": VERSION, "source": REQUIREMENT, "tile": TILE, "val_columns": [VAL_FROM_COLUMN, image.shape[1]],
            **{name: {"images": len(d.records), "boxes": d.num_boxes, "ignore_regions": d.num_ignored,
                      "instances": inst.num_objects, "instance_ignore_regions": inst.num_crowd}
               for name, (d, inst) in (("train", train), ("val", val))}}
    tmp = root / "info.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, root / "info.json")
    return root


def nuclei_instances(root: Path | None = None) -> dict[str, InstanceData]:
    """The built-in's instance splits ``{"train", "val"}`` (the detection split's tiles; cut nuclei as crowd),
    prepared under ``root`` (default: the built-in's folder) if needed."""
    from toolkit.data import builtin

    return load_instances(prepare_nuclei(root or builtin.data_dir("nuclei")) / "instances" / "coco")
