"""YOLO txt: a data YAML (``path``, ``train``/``val``/``test`` image folders, ``names``) and one
``labels/.../<stem>.txt`` per image with lines ``class cx cy w h`` normalised to [0, 1].

Labels live where the image path has ``images`` replaced by ``labels`` (the Ultralytics rule).
A missing label file is an image without boxes (a negative).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from toolkit.data.formats.detection import (
    SPLITS,
    DetectionData,
    ImageRecord,
    Problem,
    check_box,
    image_size,
)
from toolkit.data.image_io import IMAGE_SUFFIXES

DATA_YAML = "data.yaml"


def find_yolo(root: Path) -> Path | None:
    """The data YAML of a YOLO dataset (the file itself, or ``data.yaml``/one ``*.yaml`` with ``names``)."""
    if root.is_file() and root.suffix in (".yaml", ".yml"):
        return root
    if not root.is_dir():
        return None
    for candidate in [root / DATA_YAML, *sorted(root.glob("*.y*ml"))]:
        if candidate.is_file() and "names:" in candidate.read_text(errors="ignore"):
            return candidate
    return None


def read_yolo(data_yaml: Path) -> tuple[dict[str, DetectionData], list[Problem]]:
    """Read every split named in the data YAML; returns ``{split: data}`` and all problems."""
    try:
        spec = yaml.safe_load(data_yaml.read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", -1) + 1
        return {}, [Problem(data_yaml, f"line {line}" if line else "", "not valid YAML")]
    classes = _names(spec.get("names") if isinstance(spec, dict) else None)
    if classes is None:
        return {}, [Problem(data_yaml, "names", "needs 'names': a list or an {id: name} mapping")]
    root = data_yaml.parent / str(spec.get("path", "."))
    problems: list[Problem] = []
    splits = {}
    for split in SPLITS:
        if spec.get(split):
            folder = root / str(spec[split])
            if not folder.is_dir():
                problems.append(Problem(data_yaml, split, f"image folder {folder} does not exist"))
                continue
            splits[split] = DetectionData(classes, [_record(f, len(classes), problems) for f in _images(folder)])
    return splits, problems


def _names(names: Any) -> list[str] | None:
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            return None
        return [str(names[i]) for i in range(len(names))]
    return None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def label_path(image: Path) -> Path:
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images") if "images" in parts else None
    if idx is None:
        return image.with_suffix(".txt")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _record(image: Path, num_classes: int, problems: list[Problem]) -> ImageRecord:
    size = image_size(image)
    if size is None:
        problems.append(Problem(image, "", "image is unreadable"))
        size = (1, 1)
    rec = ImageRecord(image, *size, [], [], [], [])  # lists while collecting; arrays after
    txt = label_path(image)
    for n, line in enumerate(txt.read_text().splitlines() if txt.is_file() else [], start=1):
        if not line.strip():
            continue
        box, label, error = _parse(line, rec.width, rec.height, num_classes)
        if error:
            problems.append(Problem(txt, f"line {n}", error))
        else:
            rec.boxes.append(box)
            rec.labels.append(label)
    return rec.as_arrays()


def _parse(line: str, width: int, height: int, num_classes: int) -> tuple[Any, int, str | None]:
    fields = line.split()
    try:
        cls, cx, cy, w, h = int(fields[0]), *map(float, fields[1:5])
        if len(fields) != 5:
            raise ValueError
    except (ValueError, IndexError):
        return None, 0, f"'{line.strip()}' is not 'class cx cy w h'"
    if not 0 <= cls < num_classes:
        return None, 0, f"class id {cls} is out of range 0..{num_classes - 1}"
    box = np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height],
                   np.float32)
    return box, cls, check_box(box, width, height)


def write_yolo(splits: dict[str, DetectionData], root: Path) -> Path:
    """Write ``root/images/<split>/``, ``root/labels/<split>/*.txt`` and ``root/data.yaml``."""
    classes = next(iter(splits.values())).classes
    for split, data in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for rec in data.records:
            dest = root / "images" / split / rec.path.name
            if rec.path.resolve() != dest.resolve():
                shutil.copy2(rec.path, dest)
            lines = []
            for (x1, y1, x2, y2), label in zip(rec.boxes.tolist(), rec.labels.tolist()):
                lines.append(f"{label} {(x1 + x2) / 2 / rec.width:.6f} {(y1 + y2) / 2 / rec.height:.6f} "
                             f"{(x2 - x1) / rec.width:.6f} {(y2 - y1) / rec.height:.6f}")
            label_path(dest).write_text("".join(line + "\n" for line in lines))
    spec = {"path": ".", **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(classes))}
    (root / DATA_YAML).write_text(yaml.safe_dump(spec, sort_keys=False))
    return root / DATA_YAML
