"""Instance formats (COCO polygons/RLE, label images, YOLO polygons): readers, writers, round trips, files
written by other tools, and `toolkit data check|convert` on bad and good input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image
from pycocotools import mask as mask_utils

from tests.helpers.instances import SIZE, label_image, make_instance_split
from toolkit.cli import main
from toolkit.data.formats import instances
from toolkit.data.formats.instance_record import polygons_of, polygons_to_rle
from toolkit.data.formats.instance_yolo import TOLERANCE
from toolkit.errors import DataError

H, W = SIZE


@pytest.fixture
def splits(tmp_path: Path) -> dict:
    return {"train": make_instance_split(tmp_path / "raw" / "train", 3),
            "val": make_instance_split(tmp_path / "raw" / "val", 2, seed=5)}


def _by_name(data: instances.InstanceData) -> dict:
    return {r.path.name: r for r in data.records}


def _outline_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance from a point on closed polygon ``a``'s outline to ``b``'s outline (pixels)."""
    pts = np.concatenate([p + np.linspace(0, 1, 40, endpoint=False)[:, None] * (q - p)
                          for p, q in zip(a, np.roll(a, -1, axis=0))])
    dist = np.full(len(pts), np.inf)
    for p, q in zip(b, np.roll(b, -1, axis=0)):
        t = np.clip((pts - p) @ (q - p) / max(float((q - p) @ (q - p)), 1e-12), 0, 1)
        dist = np.minimum(dist, np.linalg.norm(pts - (p + t[:, None] * (q - p)), axis=1))
    return float(dist.max())


@pytest.mark.parametrize("fmt", ["coco", "labels", "yolo"])
def test_reader_reads_what_the_writer_wrote(tmp_path: Path, splits: dict, fmt: str) -> None:
    root = instances.write_instances(splits, fmt, tmp_path / fmt)
    assert instances.detect_instance_format(root) == fmt and instances.holds_masks(root)
    assert instances.check_instances(root) == []
    loaded = instances.load_instances(root)
    assert set(loaded) == {"train", "val"}
    for split, data in splits.items():
        back = _by_name(loaded[split])
        assert loaded[split].classes == ["nucleus"] and set(back) == set(_by_name(data))
        for name, rec in _by_name(data).items():
            a, b = rec.masks(), back[name].masks()
            assert a.shape == b.shape and (back[name].width, back[name].height) == (W, H)
            if fmt == "yolo":  # polygons: 6-decimal coordinates may move a pixel at the edge
                ious = mask_utils.iou(back[name].rles, rec.rles, [0] * len(rec.rles)).diagonal()
                assert ious.min() > 0.95
                assert np.abs(back[name].boxes() - rec.boxes()).max() <= 1
            else:  # RLE and label images are exact
                assert np.array_equal(a, b)


def test_polygon_round_trip_within_one_pixel(tmp_path: Path) -> None:
    """A COCO polygon read and written as YOLO comes back within 1 px of the original outline."""
    angles = np.linspace(0, 2 * np.pi, 9)[:-1] + 0.3
    polygon = np.stack([22.3 + 12.4 * np.cos(angles), 19.6 + 9.7 * np.sin(angles)], axis=1)
    root = tmp_path / "coco"
    (root / "train" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "train" / "images" / "a.png")
    (root / "train" / "annotations.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "a.png", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
                         "segmentation": [polygon.ravel().round(2).tolist()]}],
        "categories": [{"id": 3, "name": "cell"}]}))
    out = instances.convert_instances(root, "yolo", tmp_path / "yolo")
    line = (out / "labels" / "train" / "a.txt").read_text().split()
    assert line[0] == "0"
    written = np.asarray(line[1:], float).reshape(-1, 2) * (W, H)
    assert _outline_distance(polygon, written) <= 1 and _outline_distance(written, polygon) <= 1


@pytest.mark.parametrize("pixels", [[(4, 4)], [(2, x) for x in range(1, 8)], [(y, x) for y in range(3) for x in range(3)]])
def test_traced_outlines_give_the_same_pixels(pixels: list[tuple[int, int]]) -> None:
    """A single pixel, a 1-px line and a block at the image corner: the simplified outline the YOLO writer
    stores rasterises (pycocotools) back to exactly the same pixels."""
    mask = np.zeros((10, 10), np.uint8)
    mask[tuple(np.array(pixels).T)] = 1
    (outline,) = polygons_of(mask, TOLERANCE)
    assert np.array_equal(mask_utils.decode(polygons_to_rle([outline.ravel().tolist()], 10, 10)), mask)


def test_coco_written_with_pycocotools_rle_and_polygons(tmp_path: Path) -> None:
    """Compressed RLE (pycocotools ``encode``), uncompressed RLE (COCO's crowd form) and polygons."""
    labels = label_image(1)
    masks = [(labels == i).astype(np.uint8) for i in (1, 2, 3)]
    compressed = mask_utils.encode(np.asfortranarray(masks[0]))
    compressed["counts"] = compressed["counts"].decode("ascii")
    flat = masks[1].ravel(order="F")  # uncompressed COCO RLE: run lengths, column-major, starting with zeros
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    uncompressed = {"size": [H, W], "counts": np.diff(np.concatenate([[0], change])).tolist()}
    polygon = polygons_of(masks[2])[0].ravel().tolist()
    root = tmp_path / "coco"
    (root / "val" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "val" / "images" / "x.jpg")
    (root / "val" / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "x.jpg", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": compressed, "iscrowd": 0,
                         "bbox": [0, 0, 1, 1]},
                        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": uncompressed, "iscrowd": 1},
                        {"id": 3, "image_id": 1, "category_id": 2, "segmentation": [polygon], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    rec = instances.load_instances(root)["val"].records[0]
    assert np.array_equal(rec.masks(), np.stack(masks))
    assert rec.labels.tolist() == [0, 0, 1] and rec.crowd.tolist() == [0, 1, 0]
    ys, xs = np.nonzero(masks[0])
    assert rec.boxes()[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]  # from the mask, not bbox


def test_yolo_segmentation_export_as_ultralytics_writes_it(tmp_path: Path) -> None:
    """An Ultralytics ``convert_coco(use_segments=True)``-style export: '%g' coordinates, names as a mapping,
    a ``path`` that does not exist here, splits named in the YAML."""
    polygon = np.array([[10.5, 5.0], [30.0, 8.25], [26.0, 30.5], [8.0, 24.0]])
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "images" / split / "a.png")
        coords = (polygon / (W, H)).ravel()
        (tmp_path / "labels" / split / "a.txt").write_text(("%g " * 9).rstrip() % (1, *coords) + "\n")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"path": "../datasets/cells", "train": "images/train",
                                                        "val": "images/val", "names": {0: "a", 1: "b"}}))
    notes: list[str] = []
    loaded = instances.load_instances(tmp_path, notes)
    assert instances.detect_instance_format(tmp_path) == "yolo" and any("does not exist" in n for n in notes)
    rec = loaded["val"].records[0]
    assert loaded["val"].classes == ["a", "b"] and rec.labels.tolist() == [1]
    assert np.array_equal(rec.masks()[0], mask_utils.decode(polygons_to_rle([polygon.ravel().tolist()], H, W)))


def _bad_datasets(tmp_path: Path) -> dict[str, tuple[Path, list[str]]]:
    """One broken dataset per format and the problems `data check` must name (file and line/entry)."""
    yolo = tmp_path / "yolo"
    for split in ("train", "val"):
        (yolo / "images" / split).mkdir(parents=True)
        (yolo / "labels" / split).mkdir(parents=True)
        Image.fromarray(np.zeros((H, W), np.uint8)).save(yolo / "images" / split / "a.png")
    (yolo / "labels" / "train" / "a.txt").write_text(
        "0 0.1 0.1 0.5 0.1 0.3 0.5\n0 0.1 0.1 0.4 0.4\n3 0.1 0.1 0.5 0.1 0.3 0.5\n0 0.1 0.1 0.2 0.2 0.3 0.3\n")
    (yolo / "data.yaml").write_text("names: [cell]\ntrain: images/train\nval: images/val\n")
    coco = tmp_path / "coco"
    (coco / "train" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(coco / "train" / "images" / "a.png")
    empty = mask_utils.encode(np.zeros((H, W), np.uint8, order="F"))
    (coco / "train" / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1]]},
                        {"id": 2, "image_id": 1, "category_id": 1,
                         "segmentation": {"size": [H, W], "counts": empty["counts"].decode()}},
                        {"id": 3, "image_id": 1, "category_id": 5, "segmentation": [[1, 1, 9, 1, 9, 9]]},
                        {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]]}],
        "categories": [{"id": 1, "name": "cell"}]}))
    labels = tmp_path / "labels"
    for folder in ("images", "labels"):
        (labels / "train" / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(labels / "train" / "images" / "a.png")
    values = np.zeros((H, W), np.int16)
    values[5, 7] = -2
    tifffile.imwrite(labels / "train" / "labels" / "a.tif", values)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(labels / "train" / "images" / "b.png")
    Image.fromarray(np.ones((10, 10), np.uint16)).save(labels / "train" / "labels" / "b.png")
    txt = yolo / "labels" / "train" / "a.txt"
    js = coco / "train" / "annotations.json"
    return {
        "yolo": (yolo, [f"{txt}:line 2: a polygon needs at least 3 points; got 2",
                        f"{txt}:line 3: class id 3 is out of range 0..0",
                        f"{txt}:line 4: polygon encloses no pixel (empty mask)"]),
        "coco": (coco, [f"{js}:annotations[0] (id 1): polygon 0 has 2 point(s); a polygon needs at least 3",
                        f"{js}:annotations[1] (id 2): segmentation covers no pixel (empty mask)",
                        f"{js}:annotations[2] (id 3): category_id 5 is not among the categories [1]"]),
        "labels": (labels, [f"{labels / 'train' / 'labels' / 'a.tif'}:pixel (y 5, x 7): label -2 is negative",
                            f"{labels / 'train' / 'labels' / 'b.png'}: is 10x10 (HxW) but its image"]),
    }


@pytest.mark.parametrize("fmt", ["yolo", "coco", "labels"])
def test_data_check_names_file_and_line_of_each_problem(tmp_path: Path, capsys, fmt: str) -> None:
    root, expected = _bad_datasets(tmp_path)[fmt]
    assert main(["data", "check", str(root)]) == 2
    out = capsys.readouterr().out
    for line in expected:
        assert line in out, out
    assert f"({fmt}, instance masks): {len(expected)} problem(s)" in out
    with pytest.raises(DataError, match=re.escape(f"{expected[0]}") + ".* more problems; list them with"):
        instances.load_instances(root)


def test_data_convert_among_the_three(tmp_path: Path, splits: dict, capsys) -> None:
    src = instances.write_instances(splits, "labels", tmp_path / "labels")
    assert main(["data", "check", str(src)]) == 0
    assert "(labels, instance masks): no problems found" in capsys.readouterr().out
    path = src
    for fmt in ("coco", "yolo", "labels"):
        assert main(["data", "convert", str(path), "--to", fmt, "--out", str(tmp_path / f"to-{fmt}")]) == 0
        path = tmp_path / f"to-{fmt}"
        assert instances.detect_instance_format(path) == fmt
        loaded = instances.load_instances(path)
        assert {s: d.describe() for s, d in loaded.items()} == {"train": "3 images, 9 objects",
                                                                "val": "2 images, 6 objects"}


def test_label_images_hold_one_class_and_no_crowd(tmp_path: Path) -> None:
    data = make_instance_split(tmp_path / "raw", 1, classes=("a", "b"))
    with pytest.raises(DataError, match="label images hold one class; this dataset has 2"):
        instances.write_instances({"train": data}, "labels", tmp_path / "out")
    one = make_instance_split(tmp_path / "raw1", 1)
    one.records[0].crowd[0] = 1
    with pytest.warns(UserWarning, match="1 ignore regions"):
        instances.write_instances({"train": one}, "labels", tmp_path / "out1")
    assert instances.load_instances(tmp_path / "out1")["train"].num_objects == 2
