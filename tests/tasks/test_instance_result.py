"""What `toolkit predict` writes for an instance model: the 16-bit label image (read back with OpenCV), the overlay,
and the per-object CSV, whose rows match scikit-image's regionprops, with µm² when the TIFF carries a pixel size."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from skimage.draw import disk
from skimage.measure import regionprops

from toolkit.data.pixel_size import pixel_size_um
from toolkit.tasks.instance_result import InstanceResult


def _masks(h: int = 60, w: int = 80) -> np.ndarray:
    """Three discs; the second overlaps the first."""
    masks = np.zeros((3, h, w), bool)
    for m, (cy, cx, r) in zip(masks, [(20, 20, 8), (20, 32, 8), (45, 60, 10)]):
        m[disk((cy, cx), r, shape=(h, w))] = True
    return masks


def _result(pixel_size: float | None = None, boxes: bool = False) -> InstanceResult:
    masks = _masks()
    image = np.random.default_rng(0).random((60, 80, 3), dtype=np.float32)
    found = np.asarray([[12, 12, 29, 29], [24, 12, 41, 29], [50, 35, 71, 56]], np.float32) if boxes else None
    return InstanceResult.from_masks("cells.tif", image, masks, np.array([0.6, 0.9, 0.7]), np.array([0, 1, 0]),
                                     ["nucleus", "other"], pixel_size, boxes=found)


@pytest.mark.parametrize("boxes", [False, True])
def test_ids_follow_the_score_and_the_higher_score_keeps_overlaps(boxes: bool) -> None:
    result = _result(boxes=boxes)
    box = np.asarray([[12, 12, 29, 29], [24, 12, 41, 29], [50, 35, 71, 56]])
    crops = [m[y1:y2, x1:x2] for m, (x1, y1, x2, y2) in zip(_masks(), box)]  # masks over their boxes only
    compact = InstanceResult.from_masks("cells.tif", result.image, crops, np.array([0.6, 0.9, 0.7]),
                                        np.array([0, 1, 0]), ["nucleus", "other"], boxes=box)
    assert np.array_equal(compact.label_image, result.label_image)
    masks = _masks()
    assert result.label_image.dtype == np.uint16 and result.count == 3
    assert result.scores.tolist() == pytest.approx([0.9, 0.7, 0.6]) and result.labels.tolist() == [1, 0, 0]
    assert np.array_equal(result.label_image == 1, masks[1])  # the best object whole
    assert np.array_equal(result.label_image == 3, masks[0] & ~masks[1])  # the overlap went to the better one
    hidden = InstanceResult.from_masks("x", np.zeros((60, 80, 3)), np.stack([masks[0], masks[0]]),
                                       np.array([0.9, 0.8]), np.array([0, 0]), ["nucleus"])
    assert hidden.count == 1  # an object left with no pixel is dropped


def test_saved_label_image_overlay_and_csv_match_regionprops(tmp_path: Path) -> None:
    result = _result()
    label_png, overlay_png, table = result.save(tmp_path)
    assert [p.name for p in (label_png, overlay_png, table)] == ["cells_instances.png", "cells_overlay.png",
                                                                 "cells_objects.csv"]
    read = cv2.imread(str(label_png), cv2.IMREAD_UNCHANGED)
    assert read.dtype == np.uint16 and np.array_equal(read, result.label_image)
    overlay = cv2.imread(str(overlay_png))
    assert overlay.shape == (60, 80, 3)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    gray = result.image.mean(axis=2)
    props = regionprops(read.astype(np.int32), gray)
    assert len(rows) == len(props) == 3 and "area_um2" not in rows[0]
    for row, p in zip(rows, props):
        assert int(row["id"]) == p.label and int(row["area_px"]) == p.area
        assert float(row["centroid_y"]) == pytest.approx(p.centroid[0], abs=0.01)
        assert float(row["centroid_x"]) == pytest.approx(p.centroid[1], abs=0.01)
        assert [int(row[k]) for k in ("y1", "x1", "y2", "x2")] == list(p.bbox)
        assert float(row["mean_intensity"]) == pytest.approx(p.intensity_mean, abs=1e-4)
    assert [r["class"] for r in rows] == ["other", "nucleus", "nucleus"]
    record = result.to_dict()
    assert record["count"] == 3 and record["counts"] == {"nucleus": 2, "other": 1} and record["width"] == 80


def test_areas_in_square_microns_from_the_tiffs_pixel_size(tmp_path: Path) -> None:
    image = (np.random.default_rng(0).random((60, 80)) * 65535).astype(np.uint16)
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / 0.5, 1 / 0.5), metadata={"unit": "um"})
    size = pixel_size_um(path)
    assert size == pytest.approx(0.5)
    result = _result(size)
    rows = result.objects()
    assert [r["area_um2"] for r in rows] == pytest.approx([r["area_px"] * 0.25 for r in rows])
    with open(result.save(tmp_path / "out")[2], newline="") as f:
        assert float(next(csv.DictReader(f))["area_um2"]) == pytest.approx(rows[0]["area_px"] * 0.25)
    areas, unit = result.areas()
    assert unit == "µm" and areas.tolist() == pytest.approx([r["area_um2"] for r in rows])


def test_no_objects_still_writes_every_file(tmp_path: Path) -> None:
    empty = InstanceResult.from_masks("none.png", np.zeros((20, 30, 3)), np.zeros((0, 20, 30), bool), np.zeros(0),
                                      np.zeros(0, int), ["nucleus"])
    paths = empty.save(tmp_path)
    assert empty.count == 0 and cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED).max() == 0
    assert paths[2].read_text().startswith("id,class,score,area_px")


def test_select_keeps_objects_renumbered_in_order() -> None:
    result = _result()
    kept = result.select(result.scores >= 0.65)
    assert kept.count == 2 and kept.scores.tolist() == pytest.approx([0.9, 0.7])
    assert np.array_equal(kept.label_image, np.where(result.label_image == 3, 0, result.label_image))
    assert [r["id"] for r in kept.objects()] == [1, 2]
