"""The in-memory description every instance-segmentation format reads into and writes from.

Each object is one pycocotools RLE (``{"size": [h, w], "counts": str}``, compressed) in the image's pixels, with a
class index and a crowd flag (COCO ``iscrowd``: an ignore region, neither a hit nor a miss at evaluation). Polygons
are lists of ``x, y`` in continuous pixel coordinates (pixel ``(row r, column c)`` covers ``[c, c+1) x [r, r+1)``),
the COCO and Ultralytics convention; ``polygons_of`` traces a mask's pixel edges so that rasterising the
polygon gives the mask back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils


@dataclass
class InstanceRecord:
    """One image and its objects: ``rles`` (N pycocotools RLEs), ``labels`` (N,) int64 class indices,
    ``crowd`` (N,) int64 0/1."""

    path: Path
    width: int
    height: int
    rles: list[dict] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    crowd: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def masks(self) -> np.ndarray:
        """(N, H, W) uint8 0/1."""
        if not self.rles:
            return np.zeros((0, self.height, self.width), np.uint8)
        return np.ascontiguousarray(mask_utils.decode(self.rles).transpose(2, 0, 1))

    def boxes(self) -> np.ndarray:
        """(N, 4) float32 xyxy pixels, x2/y2 exclusive (the masks' extents)."""
        if not self.rles:
            return np.zeros((0, 4), np.float32)
        xywh = mask_utils.toBbox(self.rles).reshape(-1, 4).astype(np.float32)
        return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)

    def areas(self) -> np.ndarray:
        """(N,) int64 pixels per object."""
        return np.asarray(mask_utils.area(self.rles), np.int64).reshape(-1) if self.rles else np.zeros(0, np.int64)


@dataclass
class InstanceData:
    """One split: class names and image records."""

    classes: list[str]
    records: list[InstanceRecord]

    @property
    def num_objects(self) -> int:
        """Objects, ignore regions not counted."""
        return int(sum((r.crowd == 0).sum() for r in self.records))

    @property
    def num_crowd(self) -> int:
        return int(sum(r.crowd.sum() for r in self.records))

    def describe(self) -> str:
        """e.g. ``"35 images, 304 objects + 57 ignore regions"``."""
        ignored = f" + {self.num_crowd} ignore regions" if self.num_crowd else ""
        return f"{len(self.records)} images, {self.num_objects} objects{ignored}"


def encode(masks: np.ndarray) -> list[dict]:
    """(N, H, W) 0/1 masks -> N compressed RLEs with ``str`` counts (JSON-ready)."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(np.asarray(masks, np.uint8).transpose(1, 2, 0)))
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def json_rle(rle: dict) -> dict:
    """A compressed RLE with ``str`` counts (pycocotools gives ``bytes``)."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]], "counts": counts.decode("ascii") if isinstance(counts, bytes)
            else counts}


def polygons_to_rle(polygons: list[list[float]], height: int, width: int) -> dict:
    """COCO polygons (each ``[x1, y1, x2, y2, ...]``, 3+ points) of one object -> one compressed RLE (their union)."""
    return json_rle(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)))


def polygons_of(mask: np.ndarray, tolerance: float = 0.0) -> list[np.ndarray]:
    """Outer outlines of a (H, W) 0/1 mask, one (K, 2) float ``x, y`` array per connected part, largest first.
    The outline runs along the pixel edges (corners cut at their midpoints), so pycocotools rasterises it back
    to the same pixels; holes are not kept. ``tolerance`` (pixels) simplifies it (Douglas-Peucker; up to 0.4 the
    pixels stay the same)."""
    from skimage.measure import approximate_polygon, find_contours

    outlines = []
    for contour in find_contours(np.pad(np.asarray(mask, np.uint8), 1), 0.5):
        xy = contour[:, ::-1] - 0.5  # (row, col) of the padded image -> continuous x, y
        area = 0.5 * float(np.dot(xy[:-1, 0], xy[1:, 1]) - np.dot(xy[1:, 0], xy[:-1, 1]))
        simple = approximate_polygon(xy, tolerance) if tolerance else xy
        xy = simple if len(simple) >= 4 else xy  # closed: 3 corners + the first again; a tiny object stays whole
        outlines.append((area, xy[:-1] if len(xy) > 1 and np.array_equal(xy[0], xy[-1]) else xy))
    if not outlines:
        return []
    outer_sign = np.sign(max(outlines, key=lambda a: abs(a[0]))[0])  # holes wind the other way
    outer = sorted((o for o in outlines if np.sign(o[0]) == outer_sign), key=lambda a: -abs(a[0]))
    return [xy for _, xy in outer if len(xy) >= 3]


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) masks -> (N, 4) float32 xyxy boxes of their pixels (x2/y2 exclusive); an empty mask gives zeros."""
    masks = np.asarray(masks).astype(bool)
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    out = np.zeros((len(masks), 4), np.float32)
    for i, (r, c) in enumerate(zip(rows, cols)):
        if r.any():
            ys, xs = np.flatnonzero(r), np.flatnonzero(c)
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out
