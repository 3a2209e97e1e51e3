"""YOLO txt (Ultralytics' format): a data YAML and one ``labels/.../<stem>.txt`` per image with lines
``class cx cy w h`` normalised to [0, 1].

The YAML: ``names`` (a list, or a mapping ``{0: name}``; without it ``nc`` gives class0..), ``path`` (the
dataset root; relative to the YAML's folder, which is also the fallback when it does not exist), and
``train`` / ``val`` / ``test``: each a folder of images, a ``.txt`` listing image paths (relative to the
list's folder), or a list of those. Without any of these keys the splits come from the folder layout,
``images/{train,val,test}/`` or ``{train,val|valid,test}/images/``, and a note says so.
Labels live where the image path has ``images`` replaced by ``labels`` (the Ultralytics rule).
A missing label file is an image without boxes (a negative).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

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
        if candidate.is_file() and any(key in candidate.read_text(errors="ignore") for key in ("names:", "nc:")):
            return candidate
    return None


def read_yolo(data_yaml: Path, notes: list[str] | None = None) -> tuple[dict[str, DetectionData], list[Problem]]:
    """Read every split of the data YAML; returns ``{split: data}`` and all problems. ``notes`` collects what
    was inferred (splits from the folder layout, a ``path`` that does not exist)."""
    classes, sources, problems = image_splits(data_yaml, notes)
    splits = {split: DetectionData(classes, [_record(f, len(classes), problems) for f in files])
              for split, files in sources.items()}
    return splits, problems


def image_splits(data_yaml: Path, notes: list[str] | None = None) -> tuple[list[str], dict[str, list[Path]],
                                                                          list[Problem]]:
    """(class names, ``{split: image paths}``, problems) of a data YAML; ``notes`` as in ``read_yolo``."""
    notes = [] if notes is None else notes
    try:
        spec = yaml.safe_load(data_yaml.read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", -1) + 1
        return [], {}, [Problem(data_yaml, f"line {line}" if line else "", "not valid YAML")]
    spec = spec if isinstance(spec, dict) else {}
    classes = _names(spec.get("names"), spec.get("nc"))
    if classes is None:
        return [], {}, [Problem(data_yaml, "names", "needs 'names': a list or an {id: name} mapping "
                                                    "(or 'nc: N' for unnamed classes)")]
    root = _root(data_yaml, spec, notes)
    problems: list[Problem] = []
    if any(spec.get(split) for split in SPLITS):
        sources = {split: _images_of(spec[split], root, data_yaml, split, problems)
                   for split in SPLITS if spec.get(split)}
    else:
        sources = _layout_splits(root, data_yaml, problems, notes)
    return classes, sources, problems


def _names(names: Any, count: Any = None) -> list[str] | None:
    if names is None and isinstance(count, int) and count > 0:
        return [f"class{i}" for i in range(count)]
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict) and all(str(k).isdigit() for k in names):
        ids = {int(k): str(v) for k, v in names.items()}
        return [ids[i] for i in range(len(ids))] if sorted(ids) == list(range(len(ids))) else None
    return None


def _root(data_yaml: Path, spec: dict, notes: list[str]) -> Path:
    """The dataset root: ``path`` (relative to the YAML's folder), or the YAML's folder."""
    root = data_yaml.parent / str(spec.get("path") or ".")
    if not root.is_dir():
        notes.append(f"{data_yaml}: path: {spec['path']} does not exist; reading the splits relative to "
                     f"{data_yaml.parent} (fix or remove 'path:' to silence this)")
        root = data_yaml.parent
    return root


def _images_of(value: Any, root: Path, data_yaml: Path, split: str, problems: list[Problem]) -> list[Path]:
    """Images of a split's value: a folder, a .txt list of image paths, or a list of those."""
    images: list[Path] = []
    for entry in value if isinstance(value, list) else [value]:
        path = root / str(entry)
        if not path.exists() and str(entry).startswith("../"):  # Roboflow exports: '../train/images'
            path = root / str(entry)[3:]
        if path.is_dir():
            images += _images(path)
        elif path.is_file() and path.suffix == ".txt":
            lines = (line.strip() for line in path.read_text().splitlines())
            images += [path.parent / line for line in lines if line]
        else:
            problems.append(Problem(data_yaml, split, f"image folder (or .txt list of images) {path} does not exist"))
    return images


def _layout_splits(root: Path, data_yaml: Path, problems: list[Problem], notes: list[str]) -> dict[str, list[Path]]:
    """Splits from ``images/<split>/`` or ``<split>/images/`` (``valid`` for val) when the YAML names none."""
    found: dict[str, Path] = {}
    for split in SPLITS:
        names = (split, "valid") if split == "val" else (split,)
        folders = [root / layout.format(name) for name in names for layout in ("images/{}", "{}/images")]
        folder = next((f for f in folders if f.is_dir()), None)
        if folder is not None:
            found[split] = folder
    if not found:
        problems.append(Problem(data_yaml, "train/val", f"no 'train:' or 'val:' keys, and no images/train/ + "
                                f"images/val/ (or train/images/ + val/images/) folders under {root}: add "
                                "'train: images/train' and 'val: images/val' (image folders, relative to the "
                                "YAML's folder or its 'path:')"))
        return {}
    notes.append(f"{data_yaml} names no splits (train:/val:/test:); found them by the folder layout: "
                 + ", ".join(f"{s}: {f.relative_to(root)}" for s, f in found.items())
                 + " (add these keys to the YAML to make them explicit)")
    return {split: _images(folder) for split, folder in found.items()}


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


def box_lines(rec: ImageRecord) -> list[str]:
    """The label lines ``class cx cy w h`` (normalised) of one image's objects."""
    return [f"{label} {(x1 + x2) / 2 / rec.width:.6f} {(y1 + y2) / 2 / rec.height:.6f} "
            f"{(x2 - x1) / rec.width:.6f} {(y2 - y1) / rec.height:.6f}"
            for (x1, y1, x2, y2), label in zip(rec.boxes.tolist(), rec.labels.tolist())]


def write_yolo(splits: dict[str, Any], root: Path, lines: Callable[[Any], list[str]] = box_lines) -> Path:
    """Write ``root/images/<split>/``, ``root/labels/<split>/*.txt`` and ``root/data.yaml``. ``splits``: split ->
    data with ``classes`` and ``records`` (``path``); ``lines(record)`` gives a record's label lines."""
    classes = next(iter(splits.values())).classes
    for split, data in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for rec in data.records:
            dest = root / "images" / split / rec.path.name
            if rec.path.resolve() != dest.resolve():
                shutil.copy2(rec.path, dest)
            label_path(dest).write_text("".join(line + "\n" for line in lines(rec)))
    spec = {"path": ".", **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(classes))}
    (root / DATA_YAML).write_text(yaml.safe_dump(spec, sort_keys=False))
    return root / DATA_YAML
