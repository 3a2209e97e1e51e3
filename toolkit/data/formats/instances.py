"""Instance-segmentation datasets as a whole: detect the format of a path, read, load, check, write, convert.

Formats: ``coco`` (polygons or RLE ``segmentation``, ``instance_coco.py``), ``labels`` (instance label images,
``instance_labels.py``) and ``yolo`` (Ultralytics polygons, ``instance_yolo.py``); all read into
``{split: InstanceData}`` (``instance_record.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

from toolkit.data.formats.coco import find_coco
from toolkit.data.formats.detection import Problem, check_splits, class_mismatch, detect_layout, load_splits
from toolkit.data.formats.instance_coco import read_coco_instances, write_coco_instances
from toolkit.data.formats.instance_labels import read_label_instances, split_folders, write_label_instances
from toolkit.data.formats.instance_record import InstanceData, InstanceRecord
from toolkit.data.formats.instance_yolo import is_segmentation, read_yolo_instances, write_yolo_instances
from toolkit.data.formats.yolo import find_yolo
from toolkit.errors import DataError

__all__ = ["FORMATS", "InstanceData", "InstanceRecord", "check_instances", "convert_instances",
           "detect_instance_format", "holds_masks", "load_instances", "read_instances", "write_instances"]
FORMATS = ("coco", "labels", "yolo")


def detect_instance_format(path: Path) -> str:
    """'coco' | 'labels' | 'yolo' for a dataset path, else a DataError describing the layouts."""
    return detect_layout(path, {"coco": find_coco, "labels": lambda p: p.is_dir() and split_folders(p),
                                "yolo": find_yolo},
                         "an instance segmentation dataset: expected COCO (<split>/annotations.json with "
                         "'segmentation'), label images (<split>/images/ + <split>/labels/ with one integer per "
                         "object) or YOLO segmentation (data.yaml with names + images/ + labels/*.txt polygons)")


def holds_masks(path: Path) -> bool:
    """Whether ``path`` is an instance dataset (label images, COCO with ``segmentation``, YOLO polygons) rather
    than boxes only; False for a path that is no dataset of these formats."""
    try:
        fmt = detect_instance_format(path)
    except DataError:
        return False
    if fmt == "labels":
        return True
    if fmt == "yolo":
        return is_segmentation(find_yolo(Path(path)))
    for json_path in find_coco(Path(path)).values():
        try:
            anns = json.loads(json_path.read_text()).get("annotations", [])
        except (OSError, ValueError, AttributeError):
            continue
        if any(isinstance(a, dict) and a.get("segmentation") for a in anns):
            return True
    return False


def read_instances(path: Path, notes: list[str] | None = None) -> tuple[dict[str, InstanceData], list[Problem]]:
    """All splits found and all problems of a dataset in any supported format; ``notes`` collects what the reader
    inferred (e.g. YOLO splits from the folder layout)."""
    path = Path(path)
    fmt = detect_instance_format(path)
    if fmt == "labels":
        return read_label_instances(path)
    if fmt == "yolo":
        return read_yolo_instances(find_yolo(path), notes)
    splits, problems = {}, []
    for split, json_path in find_coco(path).items():
        splits[split], found = read_coco_instances(json_path)
        problems += found
    return splits, problems + class_mismatch(splits, path)


def load_instances(path: Path, notes: list[str] | None = None) -> dict[str, InstanceData]:
    """``{split: InstanceData}``; a DataError names the first problem (file and entry/line)."""
    return load_splits(read_instances, path, notes)


def check_instances(path: Path) -> list[Problem]:
    """Every problem of the instance dataset at ``path`` (bad polygons, empty masks, labels out of range, ...)."""
    return check_splits(read_instances, path)


def write_instances(splits: dict[str, InstanceData], fmt: str, root: Path) -> Path:
    """Write ``splits`` in ``fmt`` under ``root``; returns ``root``. Forms a format cannot hold (crowd regions
    in labels/yolo, overlaps in labels, several parts in yolo) are dropped with a warning."""
    root = Path(root)
    if fmt == "coco":
        for split, data in splits.items():
            write_coco_instances(data, root / split)
    elif fmt == "labels":
        write_label_instances(splits, root)
    elif fmt == "yolo":
        write_yolo_instances(splits, root)
    else:
        raise DataError(f"unknown instance format '{fmt}'; choose one of {', '.join(FORMATS)}")
    return root


def convert_instances(src: Path, to: str, dst: Path) -> Path:
    """Convert the instance dataset at ``src`` to ``to`` ('coco' | 'labels' | 'yolo') under ``dst``."""
    if to not in FORMATS:
        raise DataError(f"unknown instance format '{to}'; choose one of {', '.join(FORMATS)}")
    return write_instances(load_instances(src), to, dst)
