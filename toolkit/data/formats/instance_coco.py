"""COCO instance segmentation: the detection COCO layout (``root/<split>/annotations.json`` + ``images/``) whose
annotations carry ``segmentation``: polygons (``[[x1, y1, x2, y2, ...], ...]``), an uncompressed RLE (``counts``
a list, as COCO's crowd regions) or a compressed RLE (``counts`` a string, as pycocotools writes). ``bbox`` is
not needed: boxes come from the masks. The writer stores compressed RLEs (exact).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
from pycocotools import mask as mask_utils

from toolkit.data.formats.coco import (checked_annotations, default_image_dir, read_categories, read_document,
                                       read_images, write_split)
from toolkit.data.formats.detection import EDGE_SLACK, Problem
from toolkit.data.formats.instance_record import InstanceData, InstanceRecord, json_rle, polygons_to_rle


def read_coco_instances(path: Path) -> tuple[InstanceData, list[Problem]]:
    """Read one COCO JSON with segmentations; returns the data and every problem found."""
    doc, problems = read_document(path)
    if doc is None:
        return InstanceData([], []), problems
    cat_index, classes = read_categories(path, doc["categories"], problems)
    images, by_id = read_images(path, doc["images"], default_image_dir(path), problems)
    records = {id(rec): InstanceRecord(rec.path, rec.width, rec.height, [], [], []) for rec in images}
    by_id = {key: records[id(rec)] for key, rec in by_id.items()}
    for where, ann, rec in checked_annotations(path, doc["annotations"], by_id, cat_index, problems):
        rle, error = segmentation_rle(ann.get("segmentation"), rec.height, rec.width)
        if error:
            problems.append(Problem(path, where, error))
        else:
            rec.rles.append(rle)
            rec.labels.append(cat_index[ann["category_id"]])
            rec.crowd.append(int(bool(ann.get("iscrowd", 0))))
    for rec in records.values():
        rec.labels, rec.crowd = np.asarray(rec.labels, np.int64), np.asarray(rec.crowd, np.int64)
    return InstanceData(classes, list(records.values())), problems


def segmentation_rle(seg: Any, height: int, width: int) -> tuple[dict | None, str | None]:
    """(compressed RLE, None) for a COCO ``segmentation`` of a ``width`` x ``height`` image, or (None, why not)."""
    if isinstance(seg, list) and seg and all(isinstance(p, list) for p in seg):
        for k, poly in enumerate(seg):
            if not all(isinstance(v, (int, float)) for v in poly) or len(poly) % 2:
                return None, f"polygon {k} is not a flat list of x, y numbers"
            if len(poly) < 6:
                return None, f"polygon {k} has {len(poly) // 2} point(s); a polygon needs at least 3"
            xy = np.asarray(poly, np.float64).reshape(-1, 2)
            if not np.isfinite(xy).all() or (xy < -EDGE_SLACK).any() or (xy[:, 0] > width + EDGE_SLACK).any() \
                    or (xy[:, 1] > height + EDGE_SLACK).any():
                return None, f"polygon {k} has points outside the {width}x{height} image"
        rle = polygons_to_rle(seg, height, width)
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if list(seg["size"]) != [height, width]:
            return None, f"RLE size {seg['size']} differs from the image's [height, width] [{height}, {width}]"
        if isinstance(seg["counts"], list):
            if sum(seg["counts"]) != height * width:
                return None, f"uncompressed RLE counts sum to {sum(seg['counts'])}, not height x width {height * width}"
            rle = json_rle(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg["counts"], str):
            rle = {"size": [height, width], "counts": seg["counts"]}
        else:
            return None, "RLE counts must be a list (uncompressed) or a string (compressed)"
    else:
        return None, "segmentation must be a list of polygons or an RLE {size, counts}"
    if mask_utils.area(rle) == 0:
        return None, "segmentation covers no pixel (empty mask)"
    return rle, None


def write_coco_instances(data: InstanceData, split_dir: Path) -> Path:
    """Write ``split_dir/annotations.json`` (compressed RLE segmentations, boxes, areas) and copy the images to
    ``split_dir/images/``."""
    return write_split(data, split_dir, _mask_annotations)


def _mask_annotations(rec: InstanceRecord) -> Iterator[dict[str, Any]]:
    for rle, label, crowd, box, area in zip(rec.rles, rec.labels.tolist(), rec.crowd.tolist(), rec.boxes(),
                                            rec.areas()):
        x1, y1, x2, y2 = (float(v) for v in box)
        yield {"category_id": int(label) + 1, "segmentation": json_rle(rle), "bbox": [x1, y1, x2 - x1, y2 - y1],
               "area": int(area), "iscrowd": int(crowd)}
