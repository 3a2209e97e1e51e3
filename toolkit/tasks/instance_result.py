"""The instances of one image as ``toolkit predict`` writes them: a 16-bit label image in the input's size, an
overlay with each object in its own colour, and one CSV row per object measured by scikit-image's ``regionprops``."""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from toolkit.safe_io import csv_text
from toolkit.viz.instance import instance_overlay, label_image

COLUMNS = ["id", "class", "score", "area_px", "centroid_x", "centroid_y", "x1", "y1", "x2", "y2", "mean_intensity"]


@dataclass
class InstanceResult:
    """``label_image`` (H, W) uint16: 0 background, objects 1..N by descending score; ``scores`` (N,) and ``labels``
    (N,) class indices of objects 1..N; ``image`` (H, W, 3) float in [0, 1]; ``pixel_size_um``: the width of a pixel
    in µm when the input file says (``toolkit.data.pixel_size``), for areas in µm²."""

    source: str
    image: np.ndarray
    label_image: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    classes: list[str]
    pixel_size_um: float | None = None

    @classmethod
    def from_masks(cls, source: str, image: np.ndarray, masks: np.ndarray | list[np.ndarray], scores: np.ndarray,
                   labels: np.ndarray, classes: list[str], pixel_size_um: float | None = None,
                   boxes: np.ndarray | None = None) -> "InstanceResult":
        """From (N, H, W) bool masks (``toolkit.viz.instance.label_image``): where masks overlap the higher score
        keeps the pixel; an object left without pixels is dropped, as are those past 65535. ``boxes`` (N, 4) xyxy
        pixels (x2/y2 exclusive), when given, bound each mask, so that only the boxes are read; ``masks`` may then
        also be a list of masks each over its box, as ``TiledInstances(..., dense=False)`` gives them."""
        shape = None if isinstance(masks, np.ndarray) else image.shape[:2]
        labels_image, kept = label_image(masks, scores, boxes, shape)
        return cls(source, image, labels_image, np.asarray(scores, np.float32)[kept],
                   np.asarray(labels, np.int64)[kept], list(classes), pixel_size_um)

    @property
    def count(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> "InstanceResult":
        """The objects where ``keep`` (N,) bool is true, renumbered 1.. in their order; the others' pixels become
        background."""
        keep = np.asarray(keep, bool)
        ids = np.zeros(self.count + 1, np.uint16)
        ids[1:][keep] = np.arange(1, int(keep.sum()) + 1)
        return dataclasses.replace(self, label_image=ids[self.label_image], scores=self.scores[keep],
                                   labels=self.labels[keep])

    def objects(self) -> list[dict[str, Any]]:
        """One row per object: ``COLUMNS`` (pixels; box x2/y2 exclusive; mean intensity of the image's channels, 0..1
        of the file's range), and ``area_um2`` when the pixel size is known."""
        if not self.pixel_size_um:
            return [dict(row) for row in self._measured]
        return [{**row, "area_um2": round(row["area_px"] * self.pixel_size_um ** 2, 4)} for row in self._measured]

    @cached_property
    def _measured(self) -> list[dict[str, Any]]:
        """``COLUMNS`` of every object, by regionprops once per result (the JSON record, the CSV and the app's table
        all read them)."""
        from skimage.measure import regionprops_table

        if not self.count:
            return []
        gray = np.asarray(self.image, dtype=np.float32)
        gray = gray.mean(axis=2) if gray.ndim == 3 else gray
        table = regionprops_table(self.label_image.astype(np.int32), gray,
                                  properties=("label", "area", "centroid", "bbox", "intensity_mean"))
        rows = []
        for k, label in enumerate(table["label"]):
            i = int(label) - 1
            rows.append({"id": int(label), "class": self.classes[int(self.labels[i])],
                         "score": round(float(self.scores[i]), 4), "area_px": int(table["area"][k]),
                         "centroid_x": round(float(table["centroid-1"][k]), 2),
                         "centroid_y": round(float(table["centroid-0"][k]), 2), "x1": int(table["bbox-1"][k]),
                         "y1": int(table["bbox-0"][k]), "x2": int(table["bbox-3"][k]), "y2": int(table["bbox-2"][k]),
                         "mean_intensity": round(float(table["intensity_mean"][k]), 5)})
        return rows

    def areas(self) -> tuple[np.ndarray, str]:
        """(area of each object, unit: "µm" when the pixel size is known, else "px"), for the histogram."""
        areas = np.bincount(self.label_image.ravel(), minlength=self.count + 1)[1:].astype(float)
        return (areas * self.pixel_size_um ** 2, "µm") if self.pixel_size_um else (areas, "px")

    def to_dict(self) -> dict[str, Any]:
        objects = self.objects()
        areas = [o["area_px"] for o in objects]
        return {"source": self.source, "width": int(self.label_image.shape[1]),
                "height": int(self.label_image.shape[0]), "count": self.count,
                "pixel_size_um": self.pixel_size_um, "mean_area_px": round(float(np.mean(areas)), 2) if areas else 0.0,
                "counts": {c: int((self.labels == k).sum()) for k, c in enumerate(self.classes)},
                "objects": objects}

    def objects_csv(self) -> str:
        """The per-object rows as CSV text (``COLUMNS``, then ``area_um2`` when the pixel size is known)."""
        return csv_text(self.objects(), COLUMNS + ["area_um2"] * bool(self.pixel_size_um))

    def overlay_png(self) -> bytes:
        """The image with each object in its own colour and outlined (``instance_overlay``), as PNG bytes."""
        buffer = io.BytesIO()
        Image.fromarray(instance_overlay(self.image, self.label_image)).save(buffer, format="PNG")
        return buffer.getvalue()

    def label_png(self) -> bytes:
        """The label image as 16-bit PNG bytes."""
        buffer = io.BytesIO()
        Image.fromarray(self.label_image.astype(np.uint16)).save(buffer, format="PNG")
        return buffer.getvalue()

    def save(self, out_dir: Path) -> list[Path]:
        """``<stem>_instances.png`` (16-bit label image), ``<stem>_overlay.png`` and ``<stem>_objects.csv``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = Path(self.source).stem or "image"
        paths = [out_dir / f"{stem}_instances.png", out_dir / f"{stem}_overlay.png", out_dir / f"{stem}_objects.csv"]
        paths[0].write_bytes(self.label_png())
        paths[1].write_bytes(self.overlay_png())
        paths[2].write_text(self.objects_csv())
        return paths
