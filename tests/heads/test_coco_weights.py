"""``model.weights=coco`` through torchvision's Weights API and cache (a file the test writes)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from toolkit.backbones import weights as tv_weights
from toolkit.errors import WeightsError
from toolkit.heads.detection import build_detector


def test_coco_weights_load_from_the_cache_and_the_predictor_is_new(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    stock = torchvision.models.detection.fcos_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tv_weights.cache_file(tv_weights.resolve("fcos_resnet50_fpn"))
    path.parent.mkdir(parents=True)
    torch.save(stock.state_dict(), path)
    model = build_detector("fcos", "resnet50", 3, weights="coco", min_size=64, max_size=64).model
    ours = model.state_dict()
    for key in ("backbone.body.layer3.2.conv2.weight", "backbone.fpn.layer_blocks.1.0.weight",
                "head.regression_head.bbox_reg.weight", "head.classification_head.conv.0.weight"):
        ours_key = key.replace("backbone.body.", "backbone.body.body.")
        assert torch.equal(ours[ours_key], stock.state_dict()[key]), key
    assert ours["head.classification_head.cls_logits.weight"].shape[0] == 3  # the custom classes


def test_offline_without_cache_names_file_cache_and_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*_: object, **__: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as err:
        build_detector("fasterrcnn", "resnet50", 2, weights="coco")
    message = str(err.value)
    assert "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "toolkit weights fetch fasterrcnn_resnet50_fpn" in message
