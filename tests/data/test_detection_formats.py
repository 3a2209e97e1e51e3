"""COCO / YOLO / VOC readers, writers, round trips, and clear errors for malformed annotations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.data import detection_check as dc
from toolkit.data.formats.coco import write_coco
from toolkit.data.formats.voc import write_voc
from toolkit.data.formats.yolo import write_yolo
from toolkit.errors import DataError



CLASSES = ["cell", "dot"]  # as written by tests.helpers.detection.make_split


@pytest.fixture
def splits(tmp_path: Path, split_maker) -> dict:
    return {"train": split_maker(tmp_path / "raw" / "train", 4, negatives=1),
            "val": split_maker(tmp_path / "raw" / "val", 2, seed=3)}


def _assert_same(a: dict, b: dict, tol: float) -> None:
    assert set(a) == set(b)
    for split in a:
        assert a[split].classes == b[split].classes == CLASSES
        ra = sorted(a[split].records, key=lambda r: r.path.name)
        rb = sorted(b[split].records, key=lambda r: r.path.name)
        assert [r.path.name for r in ra] == [r.path.name for r in rb]
        for x, y in zip(ra, rb):
            assert (x.width, x.height) == (y.width, y.height)
            assert np.array_equal(x.labels, y.labels)
            assert x.boxes.shape == y.boxes.shape
            if len(x.boxes):
                assert np.abs(x.boxes - y.boxes).max() <= tol


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_reader_reads_what_the_writer_wrote(tmp_path: Path, splits: dict, fmt: str) -> None:
    root = tmp_path / fmt
    if fmt == "coco":
        for s, d in splits.items():
            write_coco(d, root / s)
    else:
        {"yolo": write_yolo, "voc": write_voc}[fmt](splits, root)
    assert dc.detect_format(root) == fmt
    assert dc.check(root) == []
    loaded = dc.load(root)
    _assert_same(splits, loaded, tol=1e-3)
    assert loaded["train"].records[-1].boxes.shape == (0, 4)  # the negative survives


def _with_ignore_regions(splits: dict) -> dict:
    """The splits with each image's first object turned into an ignore region."""
    for data in splits.values():
        for rec in data.records:
            rec.ignore_boxes, rec.ignore_labels = rec.boxes[:1], rec.labels[:1]
            rec.boxes, rec.labels = rec.boxes[1:], rec.labels[1:]
    return splits


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_ignore_regions_are_read_back_as_ignore_regions(tmp_path: Path, splits: dict, fmt: str) -> None:
    """COCO ``iscrowd: 1`` and VOC ``difficult`` keep ignore regions apart from the objects."""
    splits = _with_ignore_regions(splits)
    root = tmp_path / fmt
    if fmt == "coco":
        for s, d in splits.items():
            write_coco(d, root / s)
    else:
        write_voc(splits, root)
    loaded = dc.load(root)
    _assert_same(splits, loaded, tol=1e-3)
    for split in splits:
        for a, b in zip(*(sorted(d[split].records, key=lambda r: r.path.name) for d in (splits, loaded))):
            assert np.array_equal(a.ignore_labels, b.ignore_labels)
            assert np.abs(a.ignore_boxes - b.ignore_boxes).max(initial=0) <= 1e-3
    assert loaded["train"].num_ignored == 3 and loaded["train"].describe() == "4 images, 3 boxes + 3 ignore regions"


def test_yolo_has_no_ignore_regions_and_says_it_left_them_out(tmp_path: Path, splits: dict) -> None:
    splits = _with_ignore_regions(splits)
    for s, d in splits.items():
        write_coco(d, tmp_path / "coco" / s)
    with pytest.warns(UserWarning, match="5 ignore regions"):
        out = dc.convert(tmp_path / "coco", "yolo", tmp_path / "yolo")
    loaded = dc.load(out)
    assert loaded["train"].num_ignored == 0 and loaded["train"].num_boxes == splits["train"].num_boxes


@pytest.mark.parametrize("chain", [("yolo", "coco"), ("voc", "coco"), ("yolo", "voc", "coco"), ("voc", "yolo", "coco")])
def test_conversions_round_trip_within_one_pixel(coco_dataset: Path, tmp_path: Path, chain: tuple) -> None:
    src = coco_dataset
    for i, fmt in enumerate(chain):
        src = dc.convert(src, fmt, tmp_path / f"step{i}_{fmt}")
        assert dc.detect_format(src) == fmt
    _assert_same(dc.load(coco_dataset), dc.load(src), tol=1.0)


def _coco_doc(root: Path) -> tuple[Path, dict]:
    path = root / "train" / "annotations.json"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["annotations"][0].update(bbox=[50, 50, 40, 40]), "annotations[0] (id 1): box [50, 50, 90, 90] lies outside"),
    (lambda d: d["annotations"][1].update(category_id=7), "annotations[1] (id 2): category_id 7 is not among"),
    (lambda d: d["annotations"][0].update(bbox=[5, 5, 0, 10]), "annotations[0] (id 1): box [5, 5, 5, 15] has zero"),
    (lambda d: d["annotations"][2].update(id=1), "annotations[2] (id 1): duplicate annotation id 1"),
    (lambda d: d["images"][1].update(id=1), "images[1] (id 1): duplicate image id 1"),
    (lambda d: d["images"][0].update(file_name="nope.png"), "images[0] (id 1): image file"),
])
def test_malformed_coco_names_file_and_entry(coco_dataset: Path, edit, expected: str) -> None:
    path, doc = _coco_doc(coco_dataset)
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        dc.load(coco_dataset)
    assert f"{path}:{expected}" in str(err.value)
    assert any(expected in str(p) for p in dc.check(coco_dataset))


def test_bad_json_names_the_line(coco_dataset: Path) -> None:
    path, _ = _coco_doc(coco_dataset)
    path.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataError, match=rf"{path}:line 2: not valid JSON"):
        dc.load(coco_dataset)


def test_check_lists_every_problem(coco_dataset: Path) -> None:
    path, doc = _coco_doc(coco_dataset)
    doc["annotations"][0]["bbox"] = [60, 60, 30, 30]
    doc["annotations"][1]["category_id"] = 99
    doc["images"][2]["file_name"] = "missing.png"
    path.write_text(json.dumps(doc))
    problems = [str(p) for p in dc.check(coco_dataset)]
    assert len(problems) >= 3
    assert all(p.startswith(str(path)) for p in problems)
    with pytest.raises(DataError, match="more problems"):
        dc.load(coco_dataset)


def test_malformed_yolo_names_file_and_line(tmp_path: Path, splits: dict) -> None:
    root = tmp_path / "yolo"
    write_yolo(splits, root)
    label = sorted((root / "labels" / "train").glob("*.txt"))[0]
    label.write_text("0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.2 0.2\n0 0.9 0.9 0.5 0.5\n0 0.5 0.5\n")
    problems = [str(p) for p in dc.check(root)]
    assert f"{label}:line 2: class id 5 is out of range 0..1" in problems
    assert any(p.startswith(f"{label}:line 3: box") and "outside" in p for p in problems)
    assert f"{label}:line 4: '0 0.5 0.5' is not 'class cx cy w h'" in problems
    with pytest.raises(DataError, match=rf"{label}:line 2"):
        dc.load(root)


def test_malformed_voc_names_file_and_object(tmp_path: Path, splits: dict) -> None:
    root = tmp_path / "voc"
    write_voc(splits, root)
    xml = sorted((root / "Annotations").glob("*.xml"))[0]
    xml.write_text(xml.read_text().replace("<name>cell</name>", "<name>ghost</name>", 1)
                   .replace("<name>dot</name>", "<name>ghost</name>", 1))
    broken = sorted((root / "Annotations").glob("*.xml"))[1]
    broken.write_text("<annotation>\n<filename>x.png</filename>\n<object>\n</annotation>")
    problems = [str(p) for p in dc.check(root)]
    assert any(p.startswith(f"{xml}:object[") and "class 'ghost'" in p for p in problems)
    assert any(p.startswith(f"{broken}:line 4: not valid XML") for p in problems)


def test_not_a_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a detection dataset"):
        dc.load(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        dc.load(tmp_path / "nowhere")


# -- YOLO data YAMLs as Ultralytics / Roboflow write them (issue 16, defect 6) ----------------------------------
def _yolo_layout(root: Path, splits: dict, layout: str) -> Path:
    """A YOLO tree of ``splits`` in ``layout`` ("images/{}" or "{}/images", val named "valid" in the latter),
    labels beside the images (``images`` -> ``labels``); returns the root (data.yaml not written)."""
    write_yolo(splits, root / "_flat")
    for split in splits:
        name = "valid" if layout == "{}/images" and split == "val" else split
        for kind in ("images", "labels"):
            (root / layout.format(name).replace("images", kind)).parent.mkdir(parents=True, exist_ok=True)
            (root / "_flat" / kind / split).rename(root / layout.format(name).replace("images", kind))
    for leftover in sorted((root / "_flat").rglob("*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    (root / "_flat").rmdir()
    return root


@pytest.mark.parametrize("layout", ["images/{}", "{}/images"])
@pytest.mark.parametrize("names", ["[cell, dot]", "{0: cell, 1: dot}", "{'0': cell, '1': dot}"])
def test_yolo_without_split_keys_reads_the_folder_layout(tmp_path: Path, splits: dict, layout: str, names: str) -> None:
    root = _yolo_layout(tmp_path / "yolo", splits, layout)
    (root / "data.yaml").write_text(f"names: {names}\n")
    notes: list[str] = []
    loaded = dc.load(root, notes)
    _assert_same(splits, loaded, tol=1e-3)
    val = "valid/images" if layout == "{}/images" else "images/val"
    assert len(notes) == 1 and "folder layout" in notes[0] and f"val: {val}" in notes[0]


def test_yolo_path_key_lists_and_txt_files(tmp_path: Path, splits: dict) -> None:
    """``path:`` relative to the YAML, a split given as a list of folders, another as a .txt of image paths."""
    root = tmp_path / "datasets" / "cells"
    write_yolo(splits, root)
    val_images = sorted((root / "images" / "val").iterdir())
    (root / "val.txt").write_text("".join(f"./images/val/{p.name}\n" for p in val_images))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "cells.yaml").write_text("path: ../datasets/cells\ntrain: [images/train]\nval: val.txt\n"
                                                 "nc: 2\nnames: {0: cell, 1: dot}\n")
    _assert_same(splits, dc.load(tmp_path / "cfg" / "cells.yaml"), tol=1e-3)


def test_yolo_roboflow_parent_paths_and_nc_only(tmp_path: Path, splits: dict) -> None:
    """Roboflow's ``train: ../train/images`` (read from the YAML's own folder) and ``nc`` without ``names``."""
    root = _yolo_layout(tmp_path / "rf", splits, "{}/images")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\n")
    loaded = dc.load(root)
    assert loaded["train"].classes == ["class0", "class1"]
    assert [r.path.name for r in loaded["val"].records] == [r.path.name for r in splits["val"].records]


def test_yolo_without_keys_or_layout_names_the_keys(tmp_path: Path, splits: dict) -> None:
    root = tmp_path / "yolo"
    write_yolo(splits, root)
    (root / "images").rename(root / "pictures")
    (root / "data.yaml").write_text("names: [cell, dot]\n")
    with pytest.raises(DataError, match=r"data\.yaml:train/val: no 'train:' or 'val:' keys.*'train: images/train' "
                                        r"and 'val: images/val'"):
        dc.load(root)


def test_detect_task_prints_the_inferred_yolo_splits(tmp_path: Path, splits: dict) -> None:
    from toolkit.config import build
    from toolkit.tasks.detect import DetectData, DetectModel, DetectTask

    root = _yolo_layout(tmp_path / "yolo", splits, "images/{}")
    (root / "data.yaml").write_text("names: [cell, dot]\n")
    task = DetectTask(build("detect", DetectData, DetectModel, [{"data": {"source": str(root), "img_size": 64}}]))
    bundle = task.build_data()
    assert len(bundle.train) == 4 and len(bundle.val) == 2
    assert any("folder layout" in note for note in bundle.notes)
