"""YOLO segmentation (Ultralytics): the detection YOLO layout (``data.yaml`` + ``images/`` + ``labels/``) whose
label lines are ``class x1 y1 x2 y2 ... xn yn``, a polygon of n >= 3 points normalised to [0, 1]. One polygon per
object: the writer keeps an object's largest connected part (and warns about the parts it left out).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from toolkit.data.formats.detection import EDGE_SLACK, Problem
from toolkit.data.formats.instance_record import InstanceData, InstanceRecord, polygons_of, polygons_to_rle
from toolkit.data.formats.yolo import image_splits, label_path, write_yolo
from toolkit.data.image_io import image_size
from toolkit.errors import DataError

TOLERANCE = 0.4  # pixels: outlines written are simplified this far (rasterised back, they give the same pixels)


def is_segmentation(data_yaml: Path) -> bool:
    """Whether the dataset's label lines are polygons (any line with other than 5 fields)."""
    _, sources, _ = image_splits(data_yaml, [])
    for images in sources.values():
        for image in images:
            txt = label_path(image)
            for line in txt.read_text().splitlines() if txt.is_file() else []:
                if len(line.split()) not in (0, 5):
                    return True
    return False


def read_yolo_instances(data_yaml: Path, notes: list[str] | None = None) -> tuple[dict[str, InstanceData],
                                                                                 list[Problem]]:
    """Every split of the data YAML and every problem (bad lines reported with file and line)."""
    classes, sources, problems = image_splits(data_yaml, notes)
    splits = {split: InstanceData(classes, [r for r in (_record(f, len(classes), problems) for f in files) if r])
              for split, files in sources.items()}
    return splits, problems


def _record(image: Path, num_classes: int, problems: list[Problem]) -> InstanceRecord | None:
    try:
        height, width = image_size(image)
    except DataError as e:
        problems.append(Problem(image, "", str(e)))
        return None
    rles, labels = [], []
    txt = label_path(image)
    for n, line in enumerate(txt.read_text().splitlines() if txt.is_file() else [], start=1):
        if not line.strip():
            continue
        rle, label, error = _parse(line, width, height, num_classes)
        if error:
            problems.append(Problem(txt, f"line {n}", error))
        else:
            rles.append(rle)
            labels.append(label)
    return InstanceRecord(image, width, height, rles, np.asarray(labels, np.int64), np.zeros(len(labels), np.int64))


def _parse(line: str, width: int, height: int, num_classes: int) -> tuple[dict | None, int, str | None]:
    fields = line.split()
    try:
        cls, coords = int(fields[0]), np.asarray([float(v) for v in fields[1:]], np.float64)
    except ValueError:
        return None, 0, f"'{line.strip()}' is not 'class x1 y1 x2 y2 ... xn yn'"
    if len(coords) % 2:
        return None, 0, f"a polygon needs x, y pairs; got {len(coords)} coordinates"
    if len(coords) < 6:
        return None, 0, (f"a polygon needs at least 3 points; got {len(coords) // 2}"
                         + (" (a box line 'class cx cy w h'? this dataset holds polygons)" if len(coords) == 4 else ""))
    if not 0 <= cls < num_classes:
        return None, 0, f"class id {cls} is out of range 0..{num_classes - 1}"
    xy = coords.reshape(-1, 2) * (width, height)
    slack = np.array([width, height]) + EDGE_SLACK
    if not np.isfinite(xy).all() or (xy < -EDGE_SLACK).any() or (xy > slack).any():
        return None, 0, "polygon points lie outside [0, 1]"
    rle = polygons_to_rle([xy.ravel().tolist()], height, width)
    if mask_utils.area(rle) == 0:
        return None, 0, "polygon encloses no pixel (empty mask)"
    return rle, cls, None


def polygon_lines(rec: InstanceRecord) -> list[str]:
    """``class x1 y1 ... xn yn`` (normalised) per object, the outline of its largest part; crowd regions left out."""
    lines = []
    for mask, label, crowd in zip(rec.masks(), rec.labels.tolist(), rec.crowd.tolist()):
        parts = polygons_of(mask, TOLERANCE) if not crowd else []
        if parts:
            xy = parts[0] / (rec.width, rec.height)
            lines.append(f"{label} " + " ".join(f"{v:.6f}" for v in xy.ravel()))
    return lines


def write_yolo_instances(splits: dict[str, InstanceData], root: Path) -> Path:
    """Write ``root/images/<split>/``, ``root/labels/<split>/*.txt`` (polygons) and ``root/data.yaml``; warns
    about ignore regions (no YOLO form) and objects of several parts (only the largest written)."""
    crowd = sum(d.num_crowd for d in splits.values())
    parts = sum(len(polygons_of(m)) > 1 for d in splits.values() for r in d.records
                for m, c in zip(r.masks(), r.crowd) if not c)
    out = write_yolo(splits, root, polygon_lines)
    if crowd:
        warnings.warn(f"{crowd} ignore regions (COCO iscrowd) have no YOLO form and were left out")
    if parts:
        warnings.warn(f"{parts} objects have several separate parts; YOLO keeps one polygon per object, the largest")
    return out
