"""Instance label images (DSB2018 / StarDist / Cellpose): one integer per object, 0 = background.

Layout (``val`` and ``test`` optional; without ``val`` the task holds out ``data.val_split`` of train)::

    root/classes.yaml                            optional: classes: [nucleus]  (one class; default "object")
    root/{train,val,test}/images/<stem>.png|tif|jpg
    root/{train,val,test}/labels/<stem>.png|tif  (or masks/): 8-, 16- or 32-bit, same height x width

``root/images`` + ``root/labels`` without split folders is one pool, read as ``train``. The format holds one
class and no ignore regions. The writer stores 16-bit PNGs (32-bit TIFFs past 65,535 objects).
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from toolkit.data.formats.detection import SPLITS, Problem
from toolkit.data.formats.instance_record import InstanceData, InstanceRecord, encode
from toolkit.data.formats.masks import MASK_SUFFIXES, pair_folder, read_classes, read_mask
from toolkit.data.image_io import image_size
from toolkit.errors import DataError

LABEL_DIRS = ("labels", "masks")
CLASSES_FILE = "classes.yaml"
DEFAULT_CLASS = "object"


def split_folders(root: Path) -> dict[str, Path]:
    """``{split: folder holding images/ and labels/ (or masks/) with label images}``; empty if not this format."""
    candidates = {s: root / s for s in SPLITS} if (root / "train" / "images").is_dir() else {"train": root}
    return {s: folder for s, folder in candidates.items()
            if (folder / "images").is_dir() and _label_dir(folder) is not None}


def _label_dir(folder: Path) -> str | None:
    for name in LABEL_DIRS:
        if (folder / name).is_dir() and any(p.suffix.lower() in MASK_SUFFIXES for p in (folder / name).iterdir()):
            return name
    return None


def read_label_instances(root: Path) -> tuple[dict[str, InstanceData], list[Problem]]:
    """Every split under ``root`` and every problem (unpaired files, sizes, negative or non-integer labels)."""
    problems: list[Problem] = []
    try:
        names, _ = read_classes(root / CLASSES_FILE)
    except DataError as e:
        names = None
        problems.append(Problem(root / CLASSES_FILE, "", str(e)))
    if names is not None and len(names) != 1:
        problems.append(Problem(root / CLASSES_FILE, "classes", f"label images hold one class; got {names}"))
    classes = [names[0]] if names else [DEFAULT_CLASS]
    splits = {}
    for split, folder in split_folders(root).items():
        try:
            pairs = pair_folder(folder, _label_dir(folder))
        except DataError as e:
            problems.append(Problem(folder, "", str(e)))
            continue
        records = [_record(image, label, problems) for image, label in pairs]
        splits[split] = InstanceData(classes, [r for r in records if r is not None])
    return splits, problems


def _record(image: Path, label: Path, problems: list[Problem]) -> InstanceRecord | None:
    try:
        height, width = image_size(image)
        values = read_mask(label)
    except DataError as e:
        problems.append(Problem(label, "", str(e)))
        return None
    if values.shape != (height, width):
        problems.append(Problem(label, "", f"is {values.shape[0]}x{values.shape[1]} (HxW) but its image {image} is "
                                           f"{height}x{width}"))
        return None
    if values.min() < 0:
        y, x = np.argwhere(values < 0)[0]
        problems.append(Problem(label, f"pixel (y {y}, x {x})", f"label {values[y, x]} is negative; labels are 0 "
                                                                f"(background) and 1, 2, ... (one per object)"))
        return None
    return InstanceRecord(image, width, height, *objects_of(values))


def objects_of(values: np.ndarray) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(RLEs, labels (N,) zeros, crowd (N,) zeros) of the objects of a (H, W) label image, in label order."""
    values = np.asarray(values)
    ids = np.unique(values[values > 0])
    masks = np.zeros((len(ids), *values.shape), np.uint8)
    if len(ids):
        relabelled = np.searchsorted(ids, values) + 1
        relabelled[values == 0] = 0
        for i, box in enumerate(ndimage.find_objects(relabelled)):  # one slice per object: no full-image scans
            masks[i][box] = relabelled[box] == i + 1
    return encode(masks), np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)


def label_image(rec: InstanceRecord) -> np.ndarray:
    """(H, W) int64 label image of a record's objects (1..N in record order; crowd regions left out). Where
    objects overlap, the smaller one is kept (drawn last)."""
    masks, keep = rec.masks(), np.flatnonzero(rec.crowd == 0)
    out = np.zeros((rec.height, rec.width), np.int64)
    for i in sorted(keep, key=lambda k: -int(masks[k].sum())):
        out[masks[i] > 0] = i + 1
    return out


def write_label_instances(splits: dict[str, InstanceData], root: Path) -> Path:
    """Write ``root/<split>/images`` (copies), ``root/<split>/labels/<stem>.png`` and ``root/classes.yaml``.
    More than one class is a DataError; crowd regions and overlapping pixels are lost, with a warning."""
    classes = next(iter(splits.values())).classes
    if len(classes) != 1:
        raise DataError(f"label images hold one class; this dataset has {len(classes)} ({', '.join(classes)}): "
                        "convert to coco or yolo instead")
    crowd = overlaps = 0
    for split, data in splits.items():
        for folder in ("images", "labels"):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for rec in data.records:
            dest = root / split / "images" / rec.path.name
            if rec.path.resolve() != dest.resolve():
                shutil.copy2(rec.path, dest)
            labels = label_image(rec)
            crowd += int(rec.crowd.sum())
            overlaps += int((rec.masks()[rec.crowd == 0].sum(axis=0) > 1).sum())
            _save(labels, root / split / "labels" / rec.path.stem)
    (root / CLASSES_FILE).write_text(f"classes: [{classes[0]}]\n")
    if crowd:
        warnings.warn(f"{crowd} ignore regions (COCO iscrowd) have no label-image form and were left out")
    if overlaps:
        warnings.warn(f"objects overlap on {overlaps} pixels; a label image holds one object per pixel (the "
                      "smaller object kept)")
    return root


def _save(labels: np.ndarray, stem: Path) -> Path:
    if labels.max(initial=0) < 2 ** 16:
        Image.fromarray(labels.astype(np.uint16)).save(stem.with_suffix(".png"))
        return stem.with_suffix(".png")
    import tifffile

    tifffile.imwrite(stem.with_suffix(".tif"), labels.astype(np.uint32))
    return stem.with_suffix(".tif")
