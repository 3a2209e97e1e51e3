"""The in-memory description every detection format reads into and writes from.

Boxes are ``(N, 4)`` float32 ``x1, y1, x2, y2`` in pixels of the original image (x2/y2 exclusive,
so a box covering pixel columns 0..9 is ``0, 10``); labels are ``(N,)`` int64 indices into
``classes``. Ignore regions (COCO ``iscrowd``, VOC ``difficult``) are kept apart in ``ignore_boxes`` /
``ignore_labels``: they are not objects to train on, and at evaluation a detection on one counts neither
as a hit nor as a false positive. Readers collect every ``Problem``; ``raise_problems`` turns them into
one DataError.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolkit.data import image_io
from toolkit.errors import DataError

SPLITS = ("train", "val", "test")
EDGE_SLACK = 1.0  # pixels a box may overshoot the image border before it counts as outside


@dataclass
class Problem:
    """One defect of a dataset: the file, where in it (line / entry), and what is wrong."""

    file: Path
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


@dataclass
class ImageRecord:
    """One image, its objects' boxes (xyxy pixels) and labels (class indices), and its ignore regions."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    ignore_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ignore_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def as_arrays(self) -> "ImageRecord":
        """The record with boxes and labels collected as lists by a reader turned into clipped float32 /
        int64 arrays."""
        self.boxes = clip_boxes(self.boxes, self.width, self.height)
        self.ignore_boxes = clip_boxes(self.ignore_boxes, self.width, self.height)
        self.labels, self.ignore_labels = np.asarray(self.labels, np.int64), np.asarray(self.ignore_labels, np.int64)
        return self

    def annotations(self) -> list[tuple[list[float], int, bool]]:
        """(box, label, is ignore region) for every object, then every ignore region."""
        return ([(b, lab, False) for b, lab in zip(self.boxes.tolist(), self.labels.tolist())]
                + [(b, lab, True) for b, lab in zip(self.ignore_boxes.tolist(), self.ignore_labels.tolist())])


@dataclass
class DetectionData:
    """One split: class names and image records."""

    classes: list[str]
    records: list[ImageRecord]

    @property
    def num_boxes(self) -> int:
        """Objects, ignore regions not counted."""
        return int(sum(len(r.labels) for r in self.records))

    @property
    def num_ignored(self) -> int:
        return int(sum(len(r.ignore_labels) for r in self.records))

    def describe(self) -> str:
        """e.g. ``"35 images, 304 boxes + 57 ignore regions"``."""
        ignored = f" + {self.num_ignored} ignore regions" if self.num_ignored else ""
        return f"{len(self.records)} images, {self.num_boxes} boxes{ignored}"


def raise_problems(problems: list[Problem], source: Path) -> None:
    """Raise a DataError naming the first problem (and how many more there are)."""
    if not problems:
        return
    more = f" ({len(problems) - 1} more problems; list them with `toolkit data check {source}`)" \
        if len(problems) > 1 else ""
    raise DataError(f"{problems[0]}{more}")


def detect_layout(path: Path, layouts: dict[str, Callable[[Path], Any]], expected: str) -> str:
    """The first name of ``layouts`` whose test finds its layout at ``path``; else a DataError: ``path`` does not
    exist, or ``f"{path} is not {expected}"``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist")
    for name, found in layouts.items():
        if found(path):
            return name
    raise DataError(f"{path} is not {expected}")


def load_splits(read: Callable[..., tuple[dict[str, Any], list[Problem]]], path: Path,
                notes: list[str] | None = None) -> dict[str, Any]:
    """``{split: data}`` from ``read(path, notes)`` (a format family's reader); a DataError names the first problem,
    or says that there is neither a train nor a val split."""
    splits, problems = read(path, notes)
    raise_problems(problems, Path(path))
    if "train" not in splits and "val" not in splits:
        found = f" (only {', '.join(splits)})" if splits else ""
        raise DataError(f"{path} has no train or val split{found}; training needs a train split (a val split is "
                        "held out of it by data.val_split when there is none)")
    return splits


def check_splits(read: Callable[..., tuple[dict[str, Any], list[Problem]]], path: Path) -> list[Problem]:
    """Every problem ``read(path)`` finds; a DataError it raises (no dataset there) becomes the one problem."""
    try:
        return read(path)[1]
    except DataError as e:
        return [Problem(Path(path), "", str(e))]


def class_mismatch(splits: dict[str, Any], path: Path) -> list[Problem]:
    """A problem for each split (data with ``classes``) whose class names differ from the first split's."""
    names = {s: d.classes for s, d in splits.items()}
    first = next(iter(names.values()), [])
    return [Problem(path / s, "categories", f"classes {c} differ from {first}")
            for s, c in names.items() if c != first]


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None if the file is missing or unreadable; an image over the
    pixel limit is an error (``image_io.TooLarge``)."""
    try:
        height, width = image_io.image_size(path)
    except image_io.TooLarge:
        raise
    except DataError:
        return None
    return width, height


def check_box(box: np.ndarray, width: int, height: int) -> str | None:
    """Why ``box`` (xyxy pixels) is invalid for a ``width`` x ``height`` image, or None."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.all(np.isfinite(box)):
        return f"box {_fmt(box)} is not finite"
    if x2 <= x1 or y2 <= y1:
        return f"box {_fmt(box)} has zero or negative area"
    if x1 < -EDGE_SLACK or y1 < -EDGE_SLACK or x2 > width + EDGE_SLACK or y2 > height + EDGE_SLACK:
        return f"box {_fmt(box)} lies outside the {width}x{height} image"
    return None


def clip_boxes(boxes: np.ndarray | list, width: int, height: int) -> np.ndarray:
    """(N, 4) float32 xyxy boxes (an array or a list of boxes, maybe empty) clipped to the image (removes the
    tolerated edge overshoot)."""
    out = np.array(boxes, np.float32).reshape(-1, 4)
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out


def _fmt(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in box) + "]"
