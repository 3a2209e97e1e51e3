"""Mask R-CNN exports with its masks in the graph: at other image shapes than the traced one it finds the boxes and
masks PyTorch finds, and the parity check refuses a graph whose masks differ."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.export.conftest import instance_data, write_run
from toolkit.engine.checkpoint import restore
from toolkit.engine.onnx_runtime import OnnxModel
from toolkit.export import graphs, parity


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def test_mask_rcnn_graph_matches_pytorch_at_other_sizes(tmp_path: Path) -> None:
    ckpt = write_run("instance", tmp_path, {
        "data": {"source": str(instance_data(tmp_path / "cells")), "img_size": 64},
        "model": {"backbone": "simple_cnn", "fpn_channels": 32, "mask_channels": 32, "detections_per_img": 10}},
        head_noise=0.5)
    task, model, _ = restore(ckpt, "cpu", backend="torch")
    dataset, _ = parity.val_inputs(task)
    proto, io = graphs.export_graph("instance", model, parity.example_input(task, model, dataset))
    assert io == "instances" and [o.name for o in proto.graph.output] == ["boxes", "scores", "labels", "masks"]
    graph = OnnxModel(proto.SerializeToString(), io)
    wanted = matched = 0
    for size in ((64, 48), (40, 64), (64, 24)):  # traced on 53 x 64; the toolkit resizes to a longest side of 64
        image = torch.nn.functional.interpolate(dataset[0]["image"][None], size=size, mode="bilinear")[0].clamp(0, 1)
        with torch.no_grad():
            (ours,), (theirs,) = model([image]), graph([image])
        assert theirs["masks"].shape[1:] == (1, *size)
        n, pairs = parity.box_pairs(ours, theirs, conf=0.0)
        wanted, matched = wanted + n, matched + len(pairs)
        assert all(_mask_iou(ours["masks"][i, 0], theirs["masks"][j, 0]) >= parity.MASK_IOU_MIN for i, j, _ in pairs)
    assert wanted and matched >= 0.8 * wanted  # the untrained RPN still ties a few proposals


def _found(masks: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor([[2.0, 2.0, 12.0, 12.0]]), "scores": torch.tensor([0.9]),
            "labels": torch.tensor([0]), "masks": masks}


@pytest.mark.parametrize("shift, ok", [(0, True), (3, False)])
def test_parity_refuses_masks_that_differ(shift: int, ok: bool) -> None:
    metrics = {"segm_map50_95": 0.5, "segm_map50": 0.7, "box_map50_95": 0.6}
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 2:12, 2:12] = 0.9
    check = parity.compare("instance", (metrics, [[_found(mask)]]),
                                 (metrics, [[_found(torch.roll(mask, shift, dims=3))]]))
    assert (check.failure == "") is ok and check.figures["boxes_matched"] == 1
    assert "lowest mask IoU" in check.summary
    assert check.figures["min_mask_iou"] == pytest.approx(1.0 if ok else 70 / 130)  # 10 x 10 squares 3 px apart
