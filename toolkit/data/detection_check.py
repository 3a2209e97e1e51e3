"""Detection datasets as a whole: detect the format of a path, load, check and convert.

``load(path)`` -> ``{split: DetectionData}`` (raises DataError on the first problem),
``check(path)`` -> every Problem with file and line/entry, ``convert(src, to, dst)``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from toolkit.data.formats.coco import find_coco, read_coco, write_coco
from toolkit.data.formats.detection import (DetectionData, Problem, check_splits, class_mismatch, detect_layout,
                                            load_splits)
from toolkit.data.formats.voc import is_voc, read_voc, write_voc
from toolkit.data.formats.yolo import find_yolo, read_yolo, write_yolo
from toolkit.errors import DataError

FORMATS = ("coco", "yolo", "voc")


def detect_format(path: Path) -> str:
    """'coco' | 'yolo' | 'voc' for a dataset path, else a DataError describing the layouts."""
    return detect_layout(path, {"coco": find_coco, "yolo": find_yolo, "voc": is_voc},
                         "a detection dataset: expected COCO (<split>/annotations.json), "
                         "YOLO (data.yaml with names + images/ + labels/) or VOC (Annotations/*.xml)")


def read(path: Path, notes: list[str] | None = None) -> tuple[dict[str, DetectionData], list[Problem]]:
    """All splits and all problems of a dataset in any supported format; ``notes`` collects what the reader
    inferred (e.g. YOLO splits from the folder layout)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "yolo":
        splits, problems = read_yolo(find_yolo(path), notes)
    elif fmt == "voc":
        splits, problems = read_voc(path)
    else:
        splits, problems = {}, []
        for split, json_path in find_coco(path).items():
            splits[split], found = read_coco(json_path)
            problems += found
        problems += class_mismatch(splits, path)
    return splits, problems


def load(path: Path, notes: list[str] | None = None) -> dict[str, DetectionData]:
    """``{split: DetectionData}``; a DataError names the first problem (file and entry/line). ``notes``
    collects what the reader inferred, to show the user."""
    return load_splits(read, path, notes)


def check(path: Path) -> list[Problem]:
    """Every problem of the dataset at ``path`` (missing images, bad boxes, unknown classes, ...)."""
    return check_splits(read, path)


def convert(src: Path, to: str, dst: Path) -> Path:
    """Convert the dataset at ``src`` to ``to`` ('coco' | 'yolo' | 'voc') under ``dst``. YOLO has no ignore
    flag: ignore regions (COCO iscrowd, VOC difficult) are left out of it, with a warning."""
    if to not in FORMATS:
        raise DataError(f"unknown format '{to}'; choose one of {', '.join(FORMATS)}")
    splits = load(src)
    names = [r.path.name for d in splits.values() for r in d.records]
    if to == "voc" and len(set(names)) != len(names):
        raise DataError(f"{src}: image file names repeat across splits; VOC keeps all images in one folder")
    dst = Path(dst)
    if to == "coco":
        for split, data in splits.items():
            write_coco(data, dst / split)
        return dst
    if to == "voc":
        return write_voc(splits, dst)
    ignored = sum(d.num_ignored for d in splits.values())
    if ignored:
        warnings.warn(f"{ignored} ignore regions (COCO iscrowd / VOC difficult) have no YOLO form and were left out")
    return write_yolo(splits, dst).parent
