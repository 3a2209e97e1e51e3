"""torchvision detectors (Faster R-CNN, Mask R-CNN, RetinaNet, FCOS, SSDlite) around OUR backbones.

Every registered backbone works with every detector: the neck (``backbones/necks.py``) taps the
backbone's own stages, and anchors follow the strides of the tapped levels. Nothing is frozen
unless ``trainable_stages`` says so, and BatchNorm stays a normal (trainable) BatchNorm.

Labels are 0..K-1 outside, as everywhere in the toolkit. Faster R-CNN and SSD keep index 0 for
the background, so ``Detector`` shifts labels by one for them; RetinaNet and FCOS (sigmoid
classifiers) use 0..K-1 as they are. Mask R-CNN is Faster R-CNN plus a mask head on the same FPN
(targets then carry ``masks``; eval outputs add ``masks`` (N, 1, H, W) probabilities).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead

from toolkit.backbones import create_backbone
from toolkit.backbones import weights as tv_weights
from toolkit.backbones.necks import BackboneFPN, SSDFeatures
from toolkit.data.detection_dataset import objects_only
from toolkit.errors import ConfigError, WeightsError
from toolkit.heads.anchors import anchor_sizes
from toolkit.heads.roi_align import LevelGatherRoIAlign
from toolkit.registry import DETECTORS
from toolkit.safe_io import load_state_dict_file

TWO_STAGE = ("fasterrcnn", "maskrcnn")  # RPN + RoI heads on the FPN with a max-pooled top level
BACKGROUND_ARCHS = (*TWO_STAGE, "ssdlite")  # softmax over classes + background at index 0
# (arch, backbone) -> torchvision COCO model whose weights fit our module layout
COCO_MODELS = {("fasterrcnn", "resnet50"): "fasterrcnn_resnet50_fpn",
               ("maskrcnn", "resnet50"): "maskrcnn_resnet50_fpn",
               ("retinanet", "resnet50"): "retinanet_resnet50_fpn",
               ("fcos", "resnet50"): "fcos_resnet50_fpn"}
PREDICTOR_KEYS = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.",
                  "head.classification_head.cls_logits.")
DEFAULT_MIN_STRIDE = {"fasterrcnn": 4, "maskrcnn": 4, "retinanet": 8, "fcos": 8}


class Detector(nn.Module):
    """``forward(images: list[(3, H, W) float in [0, 1]], targets=None)``: in train mode the loss dict,
    in eval mode ``[{"boxes": (N, 4) xyxy pixels, "scores": (N,), "labels": (N,) in 0..K-1}]`` (Mask R-CNN adds
    ``"masks"`` (N, 1, H, W) float probabilities). Targets with ``iscrowd`` 1 (ignore regions) are not trained
    on; Mask R-CNN targets carry ``"masks"`` (N, H, W) uint8 0/1."""

    def __init__(self, model: nn.Module, arch: str, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.arch = arch
        self.num_classes = num_classes
        self.offset = int(arch in BACKGROUND_ARCHS)

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None) -> Any:
        if targets is not None:
            targets = [{**{k: t[k] for k in ("boxes", "masks") if k in t}, "labels": t["labels"] + self.offset}
                       for t in map(objects_only, targets)]
        out = self.model(images, targets)
        if self.training or not self.offset:
            return out
        return [{**d, "labels": d["labels"] - self.offset} for d in out]


@dataclass
class DetectorOptions:
    """Settings every architecture reads what it needs from (pixels at the model's input size).

    ``min_size``/``max_size``: the model's internal resize (SSDlite: a fixed ``min_size`` square).
    ``fpn_min_stride``: shallowest FPN level (0 = 4 for Faster R-CNN, 8 else); ``fpn_channels``: its maps' channels.
    ``box_iou_thresh``: a Faster R-CNN RoI is a positive of the object it overlaps by at least this IoU,
    background below (torchvision: 0.5). ``anchor_size``: Faster R-CNN / RetinaNet anchor on the finest level,
    doubling per level; ``anchor_ratios``: their height / width ratios. ``mask_channels``: width of Mask R-CNN's
    four 3x3 convs on the 14x14 RoI features (torchvision: 256)."""

    min_size: int = 320
    max_size: int = 320
    box_batch_size_per_image: int = 128
    box_iou_thresh: float = 0.5
    fpn_min_stride: int = 0
    fpn_channels: int = 256
    anchor_size: int = 32
    anchor_ratios: Sequence[float] = (0.5, 1.0, 2.0)
    score_thresh: float = 0.01
    detections_per_img: int = 100
    mask_channels: int = 256


def build_detector(arch: str, backbone_name: str, num_classes: int, *, pretrained: bool | str = False,
                   trainable_stages: int | None = None, weights: str | None = None, **options: Any) -> Detector:
    """Build ``arch`` (a ``DETECTORS`` name) on ``create_backbone(backbone_name)`` for ``num_classes`` classes (no
    background); ``options`` are ``DetectorOptions`` fields.

    ``pretrained``: ImageNet backbone weights (see ``create_backbone``). ``weights="coco"``: the
    whole detector from torchvision's COCO weights (resnet50 only), box predictor replaced.
    """
    builder = DETECTORS.get(arch)
    coco = _coco_model_name(arch, backbone_name, weights)
    backbone = create_backbone(backbone_name, pretrained=False if coco else pretrained,
                               trainable_stages=trainable_stages)
    model = builder(backbone, num_classes + int(arch in BACKGROUND_ARCHS), DetectorOptions(**options))
    if coco:
        load_coco(model, coco)
    return Detector(model, arch, num_classes)


def _neck(backbone: nn.Module, arch: str, o: DetectorOptions) -> BackboneFPN:
    return BackboneFPN(backbone, o.fpn_min_stride or DEFAULT_MIN_STRIDE[arch],
                       "pool" if arch in TWO_STAGE else "p6p7", o.fpn_channels)


def _anchors(arch: str, strides: list[int], size: int, ratios: Sequence[float]) -> AnchorGenerator:
    """Anchors as torchvision's COCO models: ``size`` px (default 32) on the finest FPN level, doubling per level,
    with each of ``ratios`` (RetinaNet: x 3 scales); FCOS one point per location (size = stride). Whichever
    stride the finest level has (``fpn_min_stride``), the smallest anchor stays ``size`` px."""
    if arch == "fcos":
        return AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
    return AnchorGenerator(anchor_sizes(arch, len(strides), size), (tuple(ratios),) * len(strides))


def fpn_levels(arch: str, fpn_min_stride: int = 0) -> int:
    """Number of FPN levels ``arch`` predicts from: the stride 4|8 .. 32 stages, plus a pooled level (Faster
    R-CNN) or P6 and P7 (RetinaNet, FCOS)."""
    first = fpn_min_stride or DEFAULT_MIN_STRIDE[arch]
    return int(np.log2(32 // first)) + 1 + (1 if arch in TWO_STAGE else 2)


# Proposals kept per image at inference (torchvision: 1000). 300 is ample for up to ~100 objects per image
# and makes the box head, the dominant CPU cost on small tiles, 1.8x faster.
RPN_PROPOSALS_TEST = 300


def _fasterrcnn(backbone: nn.Module, k: int, o: DetectorOptions, masks: bool = False) -> FasterRCNN:
    """Faster R-CNN; ``masks``: Mask R-CNN, torchvision's mask head (14x14 RoIAlign, four 3x3 convs of
    ``o.mask_channels``, 28x28 masks) on the same FPN levels."""
    neck = _neck(backbone, "fasterrcnn", o)
    roi_pool = LevelGatherRoIAlign(featmap_names=neck.levels, output_size=7, sampling_ratio=2)
    c = o.mask_channels
    heads = {"mask_roi_pool": LevelGatherRoIAlign(featmap_names=neck.levels, output_size=14, sampling_ratio=2),
             "mask_head": MaskRCNNHeads(o.fpn_channels, (c, c, c, c), 1)} if masks else {}
    model = (MaskRCNN if masks else FasterRCNN)(
        neck, k, rpn_anchor_generator=_anchors("fasterrcnn", neck.strides, o.anchor_size, o.anchor_ratios),
        box_roi_pool=roi_pool, box_batch_size_per_image=o.box_batch_size_per_image,
        box_fg_iou_thresh=o.box_iou_thresh, box_bg_iou_thresh=o.box_iou_thresh,
        box_score_thresh=o.score_thresh, box_detections_per_img=o.detections_per_img,
        rpn_post_nms_top_n_test=RPN_PROPOSALS_TEST, min_size=o.min_size, max_size=o.max_size, **heads)
    if masks:  # torchvision sizes its default predictor for 256-channel heads
        model.roi_heads.mask_predictor = MaskRCNNPredictor(c, c, k)
    return model


def _maskrcnn(backbone: nn.Module, k: int, o: DetectorOptions) -> MaskRCNN:
    return _fasterrcnn(backbone, k, o, masks=True)


def _one_stage(cls: type) -> Any:
    """RetinaNet / FCOS on the p6p7 FPN."""
    arch = cls.__name__.lower()

    def build(backbone: nn.Module, k: int, o: DetectorOptions) -> nn.Module:
        neck = _neck(backbone, arch, o)
        return cls(neck, k, anchor_generator=_anchors(arch, neck.strides, o.anchor_size, o.anchor_ratios),
                   score_thresh=o.score_thresh, detections_per_img=o.detections_per_img, min_size=o.min_size,
                   max_size=o.max_size)
    return build


def _ssdlite(backbone: nn.Module, k: int, o: DetectorOptions) -> SSD:
    features = SSDFeatures(backbone)
    n_maps = len(features.out_channels)
    anchors = DefaultBoxGenerator([[2, 3]] * n_maps, min_ratio=0.2, max_ratio=0.95)
    norm = torch.nn.BatchNorm2d
    head = SSDLiteHead(features.out_channels, anchors.num_anchors_per_location(), k, norm)
    return SSD(features, anchors, (o.min_size, o.min_size), k, head=head, score_thresh=o.score_thresh,
               detections_per_img=o.detections_per_img, topk_candidates=300, image_mean=[0.485, 0.456, 0.406],
               image_std=[0.229, 0.224, 0.225])


DETECTORS.register("fasterrcnn", _fasterrcnn)
DETECTORS.register("maskrcnn", _maskrcnn)
DETECTORS.register("retinanet", _one_stage(RetinaNet))
DETECTORS.register("fcos", _one_stage(FCOS))
DETECTORS.register("ssdlite", _ssdlite)


def _coco_model_name(arch: str, backbone: str, weights: str | None) -> str | None:
    if weights in (None, "", "none"):
        return None
    if weights != "coco":
        raise ConfigError(f"model.weights={weights!r}: use 'coco' or leave it empty")
    if (arch, backbone) not in COCO_MODELS:
        pairs = ", ".join(f"{a}+{b}" for a, b in COCO_MODELS)
        raise ConfigError(f"torchvision has no COCO weights for {arch} on {backbone}; valid pairs: {pairs} "
                          "(or drop model.weights and use model.pretrained for ImageNet backbone weights)")
    return COCO_MODELS[(arch, backbone)]


def load_coco(model: nn.Module, tv_name: str) -> None:
    """Load torchvision's COCO weights for ``tv_name`` into our ``model``, except the class-specific predictors."""
    path = tv_weights.ensure_cached(tv_name, tv_weights.resolve(tv_name, True))
    state = {k.replace("backbone.body.", "backbone.body.body.", 1): v for k, v in load_state_dict_file(path).items()
             if not k.startswith(PREDICTOR_KEYS)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise WeightsError(f"{path.name} does not fit this detector ({str(e).splitlines()[1].strip()}); "
                           "keep model.fpn_min_stride at 0 and fpn_channels / mask_channels at 256") from None
    missing = [m for m in missing if not m.startswith(PREDICTOR_KEYS) and not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(f"{path.name} does not fit this detector: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
