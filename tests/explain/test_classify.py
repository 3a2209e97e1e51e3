"""Classification heatmaps on a real trained digits model: every method, top-k and named targets, a model left
exactly as it was (modes, frozen flags, gradients, hooks), the saved files, feature maps, filters and the walk."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.explain.conftest import assert_untouched, state_of
from toolkit.errors import ConfigError
from toolkit.explain import TASK_METHODS


@pytest.mark.parametrize("method", TASK_METHODS["classify"])
def test_every_method_gives_a_map_per_top_class_and_leaves_the_model_alone(digits_predictor, digit_images,
                                                                           method: str) -> None:
    model = digits_predictor.model
    model.backbone.body.stages[0].train()  # a module in train mode and a frozen layer must stay so
    model.head.fc.weight.requires_grad_(False)
    before = state_of(model)
    try:
        (result,) = digits_predictor.explain(digit_images[0], method=method, top_k=3)
        assert_untouched(before, model)
    finally:
        model.head.fc.weight.requires_grad_(True)
        model.eval()
    (predicted,) = digits_predictor.predict(digit_images[0], top_k=3)
    assert list(result.heatmaps) == [c for c, _ in predicted.top]  # the top-3 classes, best first
    assert [result.scores[c] for c, _ in predicted.top] == pytest.approx([s for _, s in predicted.top], abs=1e-5)
    for heatmap in result.heatmaps.values():
        assert heatmap.shape == (8, 8) and heatmap.dtype == np.float32
        assert 0 <= heatmap.min() and heatmap.max() <= 1 + 1e-6
    assert result.layer == "stage2" and result.method == method  # stage 3 of an 8-px digit is 1 x 1: no map


def test_a_named_class_at_a_chosen_layer_and_the_saved_files(digits_predictor, digit_images, tmp_path: Path) -> None:
    (result,) = digits_predictor.explain([digit_images[0]], target="7", layer="stage1")
    assert list(result.heatmaps) == ["7"] and result.layer == "stage1"
    assert len(np.unique(result.heatmaps["7"])) > 4  # stage 1 is 4 x 4: a map with detail, not a constant
    files = result.save(tmp_path)
    record = json.loads((tmp_path / "array_gradcam.json").read_text())
    assert record["method"] == "gradcam" and record["layer"] == "stage1" and record["task"] == "classify"
    assert record["targets"][0]["target"] == "7" and 0 <= record["targets"][0]["score"] <= 1
    assert np.array_equal(np.load(tmp_path / record["targets"][0]["heatmap"]), result.heatmaps["7"])
    assert {p.name for p in files} == {"array_gradcam_7.png", "array_gradcam_7.npy", "array_gradcam.json"}
    assert (tmp_path / "array_gradcam_7.png").stat().st_size > 5000


def test_bad_targets_layers_methods_and_options_name_the_valid_ones(digits_predictor, digit_images) -> None:
    image = digit_images[0]
    with pytest.raises(ConfigError, match=r"target 'cat' is not a class of this model; valid: 0, 1, 2"):
        digits_predictor.explain(image, target="cat")
    with pytest.raises(ConfigError, match=r"unknown layer 'stage9'; valid: stage1, stage2, stage3"):
        digits_predictor.explain(image, layer="stage9")
    with pytest.raises(ConfigError, match=r"'xcam' is unknown; valid for classify: gradcam, gradcam\+\+"):
        digits_predictor.explain(image, method="xcam")
    with pytest.raises(ConfigError, match=r"unknown explain option 'conf' for a classify model; valid: .*top_k"):
        digits_predictor.explain(image, conf=0.5)


def test_a_module_path_is_a_layer_too(digits_predictor, digit_images) -> None:
    (result,) = digits_predictor.explain(digit_images[0], layer="backbone.body.stages.1.0")  # stage 2's conv
    assert result.layer == "backbone.body.stages.1.0" and next(iter(result.heatmaps.values())).shape == (8, 8)


def test_layers_show_every_stage_the_first_filters_and_the_walk(digits_predictor, digit_images,
                                                               tmp_path: Path) -> None:
    (maps,) = digits_predictor.explain(digit_images[0], method="layers")
    assert [(n, m.shape) for n, m in maps.stages] == [("stage1", (32, 4, 4)), ("stage2", (64, 2, 2)),
                                                      ("stage3", (128, 1, 1))]
    assert maps.filters.shape == (32, 1, 3, 3)
    ops = [name for name, _ in maps.walk]
    assert ops[:5] == ["input", "conv 3x3, 32 filters", "batch norm", "ReLU", "max pool 2x2"]
    assert ops[-2:] == ["global average pool", "dense (class scores)"] and maps.walk[-1][1].shape == (10,)
    logits = digits_predictor.model.eval()(torch.as_tensor(maps.walk[0][1])[None]).detach().numpy()[0]
    assert np.allclose(maps.walk[-1][1], logits, atol=1e-5)  # the walk ends in the model's own class scores
    assert maps.walk[3][1].min() >= 0  # after ReLU; the batch norm row before it (copied) still has negatives
    assert maps.walk[2][1].min() < 0
    names = {p.name for p in maps.save(tmp_path)}
    assert names == {"array_features_stage1.png", "array_features_stage2.png", "array_features_stage3.png",
                     "array_filters.png", "array_walk.png", "array_layers.json"}


def test_the_command_line_writes_the_files_and_bad_input_is_one_line(digits_checkpoint: Path, digit_images,
                                                                     tmp_path: Path, capsys) -> None:
    from PIL import Image

    from toolkit.cli import main

    Image.fromarray(digit_images[0]).save(tmp_path / "digit.png")
    assert main(["explain", str(digits_checkpoint), str(tmp_path / "digit.png"), "top_k=2", "method=gradcam++",
                 "--out", str(tmp_path / "out")]) == 0
    assert "digit.png: gradcam++ @ stage2: " in capsys.readouterr().out
    assert len(list((tmp_path / "out").glob("digit_gradcam++_*.png"))) == 2
    assert main(["explain", str(digits_checkpoint), str(tmp_path / "digit.png"), "layers", "--out",
                 str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "digit_walk.png").is_file()
    for bad, message in (("target=cat", "error: target 'cat' is not a class of this model; valid: 0, 1, 2, "),
                         ("layer=fc", "error: unknown layer 'fc'; valid: stage1, stage2, stage3 (or a module path"),
                         ("method=xcam", "error: explanation method 'xcam' is unknown; valid for classify: ")):
        capsys.readouterr()
        assert main(["explain", str(digits_checkpoint), str(tmp_path / "digit.png"), bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message) and "\n" not in err
