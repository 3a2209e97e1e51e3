"""Every detector builds, trains one step and predicts (CPU, 64 px) on backbones of each kind;
``test_backbone_sweep.py`` runs every registered backbone."""
from __future__ import annotations

import pytest
import torch

import toolkit.backbones  # noqa: F401  (registers the backbones)
from toolkit.errors import ConfigError
from toolkit.heads.detection import build_detector
from toolkit.registry import DETECTORS

SIZE = 64
FEW = ("resnet18", "mobilenet_v3_large", "simple_cnn")  # stride 2-32 torchvision, and stride 2-8 only
PAIRS = [(a, b) for a in DETECTORS.names() if a != "maskrcnn" for b in FEW]  # box detectors (the detect task)


@pytest.mark.parametrize("arch, backbone", PAIRS)
def test_train_step_and_predict(train_and_predict, arch: str, backbone: str) -> None:
    train_and_predict(arch, backbone, SIZE)


@pytest.mark.parametrize("backbone", FEW)
def test_mask_rcnn_trains_on_masks_and_predicts_a_mask_per_box(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_detector("maskrcnn", backbone, 2, min_size=SIZE, max_size=SIZE, mask_channels=16)
    masks = torch.zeros(2, SIZE, SIZE, dtype=torch.uint8)
    masks[0, 8:30, 10:34], masks[1, 36:60, 30:50] = 1, 1
    target = {"boxes": torch.tensor([[10.0, 8, 34, 30], [30, 36, 50, 60]]), "labels": torch.tensor([0, 1]),
              "masks": masks}
    model.train()
    losses = model([torch.rand(3, SIZE, SIZE)], [target])
    assert "loss_mask" in losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        (found,) = model([torch.rand(3, 40, 56)])
    assert found["masks"].shape[1:] == (1, 40, 56) and len(found["masks"]) == len(found["boxes"])
    assert set(found["labels"].tolist()) <= {0, 1}


def test_nothing_is_frozen_by_default_and_trainable_stages_freezes_bn() -> None:
    model = build_detector("fasterrcnn", "resnet18", 1, min_size=SIZE, max_size=SIZE)
    assert all(p.requires_grad for p in model.parameters())
    assert not any("Frozen" in type(m).__name__ for m in model.modules())
    model = build_detector("fasterrcnn", "resnet18", 1, trainable_stages=2, min_size=SIZE, max_size=SIZE)
    body = model.model.backbone.body
    model.train()
    assert not body.body.conv1.weight.requires_grad and not body.body.bn1.training
    assert body.body.get_submodule("layer4.0.conv1").weight.requires_grad
    assert body.body.get_submodule("layer4.0.bn1").training


def test_box_iou_thresh_makes_a_loosely_overlapping_roi_background() -> None:
    iou = torch.tensor([[0.55, 0.65]])  # one object x two RoIs
    for thresh, matches in ((0.5, [0, 0]), (0.6, [-1, 0])):  # -1: background
        model = build_detector("fasterrcnn", "resnet18", 1, min_size=SIZE, max_size=SIZE, box_iou_thresh=thresh)
        assert model.model.roi_heads.proposal_matcher(iou).tolist() == matches


def test_fpn_taps_stride_8_and_16_on_mobilenet() -> None:
    model = build_detector("retinanet", "mobilenet_v2", 1, min_size=SIZE, max_size=SIZE)
    assert model.model.backbone.strides == [8, 16, 32, 64, 128]
    model = build_detector("fasterrcnn", "mobilenet_v3_large", 1, min_size=SIZE, max_size=SIZE)
    assert model.model.backbone.strides == [4, 8, 16, 32, 64]


def test_anchors_start_at_anchor_size_on_the_finest_level_and_double() -> None:
    model = build_detector("fasterrcnn", "mobilenet_v2", 1, min_size=SIZE, max_size=SIZE, anchor_size=16)
    assert model.model.rpn.anchor_generator.sizes == ((16,), (32,), (64,), (128,), (256,))
    model = build_detector("retinanet", "resnet18", 1, min_size=SIZE, max_size=SIZE)
    assert [round(s[0]) for s in model.model.anchor_generator.sizes] == [32, 64, 128, 256, 512]


def test_anchor_ratios_and_fpn_channels_reach_the_heads() -> None:
    model = build_detector("fasterrcnn", "mobilenet_v2", 1, min_size=SIZE, max_size=SIZE,
                           anchor_ratios=(0.25, 1.0, 4.0), fpn_channels=64)
    rpn = model.model.rpn
    assert rpn.anchor_generator.aspect_ratios == ((0.25, 1.0, 4.0),) * 5
    assert rpn.head.cls_logits.out_channels == 3 and rpn.head.conv[0][0].in_channels == 64
    assert model.model.roi_heads.box_head.fc6.in_features == 64 * 7 * 7


def test_coco_weights_only_for_known_pairs() -> None:
    with pytest.raises(ConfigError, match="valid pairs: fasterrcnn\\+resnet50"):
        build_detector("ssdlite", "mobilenet_v2", 1, weights="coco")
    with pytest.raises(ConfigError, match="unknown detector architecture 'yolo'"):
        build_detector("yolo", "resnet18", 1)


@pytest.mark.parametrize("arch", ["fasterrcnn", "fcos"])
def test_ignore_regions_are_not_trained_on(arch: str) -> None:
    model = build_detector(arch, "simple_cnn", 2, min_size=SIZE, max_size=SIZE)
    image = torch.rand(3, SIZE, SIZE)
    boxes, labels = torch.tensor([[5.0, 5.0, 30.0, 30.0], [35.0, 35.0, 60.0, 60.0]]), torch.tensor([1, 0])
    targets = {"object only": {"boxes": boxes[:1], "labels": labels[:1]},
               "object + ignore region": {"boxes": boxes, "labels": labels, "iscrowd": torch.tensor([0, 1])},
               "two objects": {"boxes": boxes, "labels": labels, "iscrowd": torch.tensor([0, 0])}}
    losses = {}
    for name, target in targets.items():
        torch.manual_seed(0)  # the same anchor / RoI sampling for each
        losses[name] = float(sum(model([image], [target]).values()).detach())
    assert losses["object + ignore region"] == losses["object only"] != losses["two objects"]
