"""Detection heatmaps for every torchvision architecture the toolkit builds: a box-score Grad-CAM map per detected
box (from the Predictor's own boxes), EigenCAM over the feature pyramid, tiles for large images, frozen backbones,
and a model left as it was."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.explain.conftest import assert_untouched, build_predictor, state_of
from toolkit.cli import main
from toolkit.errors import ConfigError

SIZE = 64


def _detector(arch: str, **model):
    return build_predictor("detect", {"data": {"img_size": SIZE}, "model": {
        "arch": arch, "backbone": "resnet18", "score_thresh": 0.0, "detections_per_img": 20, **model}},
        ["cell", "dot"])


@pytest.mark.parametrize("arch", ["fasterrcnn", "retinanet", "fcos", "ssdlite"])
def test_a_map_per_box_for_every_architecture(arch: str, blobs_png) -> None:
    predictor = _detector(arch)
    (found,) = predictor.predict(blobs_png(SIZE), conf=0.0, tta="none")
    areas = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
    pick = int(np.flatnonzero(areas > 4)[0])  # random weights also give empty boxes, which match nothing
    before = state_of(predictor.model)
    (result,) = predictor.explain(blobs_png(SIZE), target=pick, conf=0.0, layer="stage3")
    assert_untouched(before, predictor.model)
    ((name, heatmap),) = result.heatmaps.items()
    assert heatmap.shape == (SIZE, SIZE) and heatmap.max() == pytest.approx(1.0)  # every box depends on stage 3
    assert result.boxes[name] == pytest.approx(found.boxes[pick].tolist())
    assert result.scores[name] == pytest.approx(float(found.scores[pick]))


def test_defaults_a_pyramid_level_and_a_frozen_backbone(blobs_png, tmp_path: Path) -> None:
    predictor = _detector("fasterrcnn", trainable_stages=1)  # a frozen backbone: nothing asks for gradients there
    before = state_of(predictor.model)
    (result,) = predictor.explain(blobs_png(SIZE), target=0, conf=0.0)
    assert_untouched(before, predictor.model)
    ((name, heatmap),) = result.heatmaps.items()
    assert (result.method, result.layer) == ("hirescam", "stage4")  # the stride-16 stage
    assert name.endswith("#0") and heatmap.max() == pytest.approx(1.0)
    (level,) = predictor.explain(blobs_png(SIZE), target=0, conf=0.0, layer="fpn.stage2", method="gradcam")
    assert level.layer == "fpn.stage2" and next(iter(level.heatmaps.values())).max() == pytest.approx(1.0)
    files = result.save(tmp_path)
    record = json.loads((tmp_path / f"blobs{SIZE}_hirescam.json").read_text())
    assert len(record["targets"]) == 1 and len(record["targets"][0]["box"]) == 4 and len(files) == 3
    (pyramid,) = predictor.explain(blobs_png(SIZE), method="eigencam", conf=0.0)
    assert pyramid.layer == "fpn" and pyramid.heatmaps["all detections"].shape == (SIZE, SIZE)
    assert pyramid.heatmaps["all detections"].max() == pytest.approx(1.0)


def test_large_images_are_explained_on_the_prediction_tiles(tmp_path: Path, blobs_png) -> None:
    predictor = _detector("fasterrcnn")
    predictor.task.cfg.data.predict_tile = 48  # a 96-px image: tiles of 48 px
    (result,) = predictor.explain(blobs_png(96), conf=0.0, top_k=2, layer="stage3")
    assert len(result.heatmaps) == 2
    for name, heatmap in result.heatmaps.items():
        assert heatmap.shape == (96, 96) and heatmap.max() == pytest.approx(1.0)
        rows, cols = np.nonzero(heatmap)  # the map lies in the 48-px tile the box was explained in
        assert rows.max() - rows.min() < 48 and cols.max() - cols.min() < 48


def test_bad_input_names_the_valid_choices(blobs_png, tmp_path: Path, capsys) -> None:
    predictor = _detector("retinanet")
    with pytest.raises(ConfigError, match="'scorecam' does not apply to a detect model; valid for detect: "
                                          ".*gradcam, eigencam"):
        predictor.explain(blobs_png(SIZE), method="scorecam")
    with pytest.raises(ConfigError, match=r"layer 'stage3' does not fit method 'eigencam'"):
        predictor.explain(blobs_png(SIZE), method="eigencam", layer="stage3")
    with pytest.raises(ConfigError, match=r"target=99: the model found \d+ detection\(s\)"):
        predictor.explain(blobs_png(SIZE), target=99, conf=0.0)
    with pytest.raises(ConfigError, match="target 'cat' is not a class of this model; valid: cell, dot"):
        predictor.explain(blobs_png(SIZE), target="cat")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    assert main(["explain", str(onnx), str(blobs_png(SIZE))]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {onnx} is an ONNX export; explanations need the PyTorch "
                                               "checkpoint (.pt) it was exported from, e.g. "
                                               "runs/<task>/<name>/weights/best.pt")
