"""The detection CLI end to end on a dataset the test writes: train, val, predict, data check/convert."""
import json
from pathlib import Path

import pytest

from toolkit.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path, Path]:
    from tests.helpers.detection import make_split
    from toolkit.data.formats.coco import write_coco

    work = tmp_path_factory.mktemp("detect_cli")
    data = work / "coco"
    write_coco(make_split(work / "raw" / "train", 6, negatives=1), data / "train")
    write_coco(make_split(work / "raw" / "val", 3, seed=1), data / "val")
    runs = work / "runs"
    code = main(["train", "detect", f"data={data}", "model.arch=fcos", "model.backbone=resnet18",
                 "model.pretrained=false", "data.img_size=64",
                 "train.epochs=1", "train.batch_size=2", "train.progress=false", f"train.project={runs}"])
    assert code == 0
    return work, data, runs / "detect" / "exp" / "weights" / "best.pt"


def test_val_reports_coco_map_and_predict_writes_coco_results(run, capsys) -> None:
    work, data, ckpt = run
    assert main(["val", str(ckpt), "--json", str(work / "m.json")]) == 0
    assert "mAP@[.5:.95]" in capsys.readouterr().out
    metrics = json.loads((work / "m.json").read_text())
    assert {"map50_95", "map50", "map_small", "ap/cell"} <= set(metrics)
    out = work / "pred"
    assert main(["predict", str(ckpt), str(data / "val" / "images"), "conf=0.0", "iou=0.5", "--out", str(out)]) == 0
    records = json.loads((out / "predictions.json").read_text())
    coco = json.loads((out / "coco_results.json").read_text())
    assert len(records) == 3 and [r["image_id"] for r in records] == [0, 1, 2]
    assert len(coco) == sum(r["count"] for r in records)
    assert all(len(d["bbox"]) == 4 and d["category_id"] in (1, 2) for d in coco)
    assert all(Path(f).is_file() for r in records for f in r["files"])


def test_val_and_predict_with_test_time_views(run, capsys) -> None:
    work, data, ckpt = run
    assert main(["val", str(ckpt), "model.tta=d4", "--json", str(work / "tta.json")]) == 0
    metrics = json.loads((work / "tta.json").read_text())
    assert 0.0 <= metrics["map50_95"] <= metrics["map50"] <= 1.0
    out = work / "pred_tta"
    image = sorted((data / "val" / "images").iterdir())[0]
    assert main(["predict", str(ckpt), str(image), "conf=0.0", "tta=hflip", "--out", str(out)]) == 0
    (record,) = json.loads((out / "predictions.json").read_text())
    assert all(0 <= d["box"][0] <= d["box"][2] <= record["width"] for d in record["detections"])
    capsys.readouterr()
    assert main(["val", str(ckpt), "model.tta=flips"]) == 2
    assert "unknown model.tta 'flips'; valid: none, hflip, d4" in capsys.readouterr().err


def test_data_convert_then_check(run, capsys, tmp_path) -> None:
    _, data, _ = run
    assert main(["data", "convert", str(data), "--to", "yolo", "--out", str(tmp_path / "yolo")]) == 0
    assert main(["data", "check", str(tmp_path / "yolo")]) == 0
    assert "(yolo): no problems found" in capsys.readouterr().out


def test_data_check_lists_problems_and_fails(run, capsys, tmp_path) -> None:
    _, data, _ = run
    broken = tmp_path / "broken"
    assert main(["data", "convert", str(data), "--to", "yolo", "--out", str(broken)]) == 0
    label = sorted((broken / "labels" / "train").glob("*.txt"))[0]
    label.write_text("7 0.5 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\n")
    capsys.readouterr()
    assert main(["data", "check", str(broken)]) == 2
    out = capsys.readouterr().out
    assert f"{label}:line 1: class id 7" in out and f"{label}:line 2:" in out and "2 problem(s)" in out


def test_data_convert_to_yolo_says_it_leaves_ignore_regions_out(capsys, tmp_path) -> None:
    from toolkit.data.nuclei import prepare_nuclei

    coco = prepare_nuclei(tmp_path / "nuclei") / "coco"
    assert main(["data", "convert", str(coco), "--to", "yolo", "--out", str(tmp_path / "yolo")]) == 0
    assert "note: 63 ignore regions (COCO iscrowd / VOC difficult) have no YOLO form" in capsys.readouterr().out
