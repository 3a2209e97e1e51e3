"""COCO detection JSON: ``{images, annotations, categories}``, boxes ``[x, y, w, h]`` pixels.

Layout written by the toolkit: ``root/<split>/annotations.json`` + ``root/<split>/images/*``.
Readers also take any JSON file; ``file_name`` resolves against ``images/`` next to it, else
the JSON's own folder. Category ids may be any integers: classes are ordered by id. Annotations with
``iscrowd: 1`` are read as ignore regions.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from toolkit.data.formats.detection import DetectionData, ImageRecord, Problem, check_box, image_size

ANNOTATIONS = "annotations.json"


def find_coco(root: Path) -> dict[str, Path]:
    """``{split: json}`` for a COCO dataset folder (or one JSON file, taken as ``train``)."""
    if root.is_file() and root.suffix == ".json":
        return {"train": root}
    return {p.parent.name: p for p in sorted(root.glob(f"*/{ANNOTATIONS}"))}


def read_coco(path: Path, image_dir: Path | None = None) -> tuple[DetectionData, list[Problem]]:
    """Read one COCO JSON; returns the data and every problem found (never raises on content)."""
    doc, problems = read_document(path)
    if doc is None:
        return DetectionData([], []), problems
    cat_index, classes = read_categories(path, doc["categories"], problems)
    records, by_id = read_images(path, doc["images"], image_dir or default_image_dir(path), problems)
    _annotations(path, doc["annotations"], by_id, cat_index, problems)
    return DetectionData(classes, [rec.as_arrays() for rec in records]), problems


def read_document(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The parsed JSON with lists ``images``, ``annotations`` and ``categories``, or None and the problem."""
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return None, [Problem(path, f"line {e.lineno}", f"not valid JSON ({e.msg})")]
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem(path, "", f"cannot read ({e})")]
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        return None, [Problem(path, "", "needs lists 'images', 'annotations' and 'categories'")]
    return doc, []


def default_image_dir(path: Path) -> Path:
    """Where a JSON's ``file_name``s resolve: ``images/`` next to it if there is one, else its own folder."""
    return path.parent / "images" if (path.parent / "images").is_dir() else path.parent


def read_categories(path: Path, cats: list[Any], problems: list[Problem]) -> tuple[dict[int, int], list[str]]:
    """({category id: class index}, class names ordered by id); bad entries are added to ``problems``."""
    valid: dict[int, str] = {}
    for i, cat in enumerate(cats):
        where = f"categories[{i}]"
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or "name" not in cat:
            problems.append(Problem(path, where, "a category needs an integer 'id' and a 'name'"))
        elif cat["id"] in valid:
            problems.append(Problem(path, where, f"duplicate category id {cat['id']}"))
        else:
            valid[cat["id"]] = str(cat["name"])
    ids = sorted(valid)
    return {cid: i for i, cid in enumerate(ids)}, [valid[c] for c in ids]


def read_images(path: Path, images: list[Any], image_dir: Path,
                problems: list[Problem]) -> tuple[list[ImageRecord], dict[Any, ImageRecord]]:
    """(records in file order, {image id: record}) of the readable images; the rest go to ``problems``."""
    records, by_id = [], {}
    for i, img in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            problems.append(Problem(path, where, "an image needs an 'id' and a 'file_name'"))
            continue
        where += f" (id {img['id']})"
        if img["id"] in by_id:
            problems.append(Problem(path, where, f"duplicate image id {img['id']}"))
            continue
        file = image_dir / img["file_name"]
        size = image_size(file)
        if size is None:
            problems.append(Problem(path, where, f"image file {file} is missing or unreadable"))
            continue
        width, height = int(img.get("width") or size[0]), int(img.get("height") or size[1])
        rec = ImageRecord(file, width, height, [], [], [], [])  # lists while collecting; arrays after
        records.append(rec)
        by_id[img["id"]] = rec
    return records, by_id


def checked_annotations(path: Path, anns: list[Any], by_id: dict[Any, Any], cat_index: dict[int, int],
                        problems: list[Problem]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, annotation, its image's record) for each annotation that is an object with a new id, a known
    ``image_id`` and a known ``category_id``; the others go to ``problems``."""
    seen: set[Any] = set()
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]" + (f" (id {ann.get('id')})" if isinstance(ann, dict) else "")
        if not isinstance(ann, dict):
            problems.append(Problem(path, where, "an annotation must be an object"))
            continue
        if ann.get("id") is not None and ann["id"] in seen:
            problems.append(Problem(path, where, f"duplicate annotation id {ann['id']}"))
            continue
        seen.add(ann.get("id"))
        rec = by_id.get(ann.get("image_id"))
        if rec is None:
            problems.append(Problem(path, where, f"image_id {ann.get('image_id')!r} is not among the images"))
        elif ann.get("category_id") not in cat_index:
            problems.append(Problem(path, where, f"category_id {ann.get('category_id')!r} is not among the "
                                                 f"categories {sorted(cat_index)}"))
        else:
            yield where, ann, rec


def _annotations(path: Path, anns: list[Any], by_id: dict[Any, ImageRecord], cat_index: dict[int, int],
                 problems: list[Problem]) -> None:
    for where, ann, rec in checked_annotations(path, anns, by_id, cat_index, problems):
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            problems.append(Problem(path, where, f"bbox {bbox!r} is not [x, y, width, height]"))
            continue
        box = np.array([bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]], np.float32)
        error = check_box(box, rec.width, rec.height)
        if error:
            problems.append(Problem(path, where, error))
        elif ann.get("iscrowd", 0):
            rec.ignore_boxes.append(box)
            rec.ignore_labels.append(cat_index[ann["category_id"]])
        else:
            rec.boxes.append(box)
            rec.labels.append(cat_index[ann["category_id"]])


def write_coco(data: DetectionData, split_dir: Path) -> Path:
    """Write ``split_dir/annotations.json`` and copy the images to ``split_dir/images/``."""
    return write_split(data, split_dir, _box_annotations)


def _box_annotations(rec: ImageRecord) -> Iterator[dict[str, Any]]:
    for box, label, crowd in rec.annotations():
        w, h = box[2] - box[0], box[3] - box[1]
        yield {"category_id": int(label) + 1, "bbox": [round(box[0], 2), round(box[1], 2), round(w, 2), round(h, 2)],
               "area": round(w * h, 2), "iscrowd": int(crowd)}


def write_split(data: Any, split_dir: Path, annotations: Callable[[Any], Iterable[dict[str, Any]]]) -> Path:
    """Write ``split_dir/annotations.json`` for ``data`` (``classes`` + ``records``) and copy the images to
    ``split_dir/images/``; ``annotations(record)`` gives the record's annotations, less ``id`` and ``image_id``."""
    (split_dir / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for image_id, rec in enumerate(data.records, start=1):
        dest = split_dir / "images" / rec.path.name
        if rec.path.resolve() != dest.resolve():
            shutil.copy2(rec.path, dest)
        images.append({"id": image_id, "file_name": rec.path.name, "width": rec.width, "height": rec.height})
        anns += [{"id": len(anns) + k, "image_id": image_id, **fields}
                 for k, fields in enumerate(annotations(rec), start=1)]
    cats = [{"id": i + 1, "name": name} for i, name in enumerate(data.classes)]
    out = split_dir / ANNOTATIONS
    out.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return out
