"""`toolkit train detect data=PATH` on a YOLO set unlike nuclei (larger objects, three classes): the default
recipe fits its input size and anchors to the data and learns it with nothing but `data=` (and a shorter run)."""
import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.shapes import CLASSES, write_shapes_yolo
from toolkit.cli import main


@pytest.mark.slow
def test_default_detect_recipe_on_a_custom_yolo_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_shapes_yolo(tmp_path / "shapes")
    rc = main(["train", "detect", f"data={data}", f"train.project={tmp_path / 'runs'}", "train.epochs=8",
               "train.progress=false"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "note: all train.epochs=8 are trained" not in out  # detect.yaml has no time limit to drop
    assert "data.img_size=0: images are resized to a longest side of 256 px" in out
    run = tmp_path / "runs" / "detect" / "exp"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["img_size"] == 256 and cfg["model"]["anchor_size"] > 0  # fitted values recorded
    assert cfg["model"]["pretrained"] == "IMAGENET1K_V1"
    assert rc == 0 and main(["val", str(run / "weights" / "best.pt"), "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["map50"] >= 0.6, metrics
    assert all(f"ap/{c}" in metrics for c in CLASSES)
