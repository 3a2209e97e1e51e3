"""Object detection: COCO / YOLO / VOC or built-in ``nuclei`` -> torchvision detectors on our
backbones -> COCO mAP (torchmetrics with the pycocotools backend).

Sizes: every image is resized so its longest side is ``data.img_size`` (boxes follow); the model's
own resize is then a no-op (``min_size = max_size = img_size``). Large images at prediction time:
with ``data.predict_tile`` > 0 an image larger than the tile is predicted in overlapping tiles merged
with class-wise NMS (``inference/tiles.py``). Built-in ``nuclei`` sets ``predict_tile`` to its 128-px
training tiles. Test-time views (``model.tta``): ``inference/tta.py``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from annotated_types import Interval
from torch import nn

from toolkit.config import (
    Config,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Stages,
)
from toolkit.data import builtin
from toolkit.data.detection_check import load
from toolkit.data.detection_dataset import DetectionDataset, collate, objects_only
from toolkit.data.formats.detection import DetectionData
from toolkit.data.image_io import read_image
from toolkit.data.splits import apply_folds, folds_of, take, val_holdout
from toolkit.data.transforms import Augment, detection_pipeline
from toolkit.errors import ConfigError
from toolkit.heads.detection import build_detector
from toolkit.inference.tiles import TiledDetector
from toolkit.inference.tta import DetectionTTA, check_tta
from toolkit.tasks.detect_fit import fit_sizes
from toolkit.tasks.base import DataBundle
from toolkit.viz.detect import plot_pr_curve, plot_samples, save_annotated

N_PLOT_SAMPLES = 8
# pycocotools' own float64 thresholds (torchmetrics' defaults are float32-rounded, which moves IoU ties)
COCO_IOUS = np.linspace(0.5, 0.95, 10).tolist()
COCO_RECALLS = np.linspace(0.0, 1.0, 101).tolist()


@dataclass
class DetectorData(Augment):
    """Data settings shared by the tasks on torchvision detectors (detect, instance)."""

    source: str = "nuclei"  # built-in name or a COCO / YOLO / VOC dataset path
    img_size: NonNegativeInt = 320  # longest image side in pixels after resizing; 0 = fitted to the training images
    crop: Annotated[float, Interval(ge=0, lt=0.5)] = 0.0  # train: random crop of up to this fraction from each border, resized back (zoom)
    val_split: Fraction = 0.1  # images held out of train when the dataset has no val split
    predict_tile: NonNegativeInt = 0  # prediction on images larger than this (pixels) runs on tiles; 0 = whole image


@dataclass
class DetectData(DetectorData):
    min_visibility: Probability = 0.3  # augmented boxes keeping less of their area are dropped
    min_side: NonNegativeFloat = 0.0  # augmented boxes with a side under this (pixels at img_size) are dropped


@dataclass
class DetectorModel:
    """Model settings shared by the tasks on torchvision detectors (detect, instance)."""

    arch: str = "fasterrcnn"  # fasterrcnn | retinanet | fcos | ssdlite
    backbone: str = "resnet18"  # any of `toolkit.list_models()`, e.g. mobilenet_v2, resnet50, efficientnet_b0
    pretrained: bool | str = False  # ImageNet backbone: true | enum name | .pth/.safetensors path
    weights: str = ""  # "coco": torchvision's COCO detector weights (resnet50 + fasterrcnn/maskrcnn/retinanet/fcos)
    trainable_stages: Stages = None  # None = every backbone stage trains
    min_size: NonNegativeInt = 0  # model's internal resize; 0 = data.img_size
    max_size: NonNegativeInt = 0  # longest side of the internal resize; 0 = min_size
    fpn_min_stride: NonNegativeInt = 0  # shallowest FPN level; 0 = 4 (fasterrcnn, maskrcnn) or 8 (retinanet, fcos)
    fpn_channels: PositiveInt = 256  # channels of every FPN level (and so of the RPN / box head inputs)
    anchor_size: NonNegativeInt = 32  # Faster R-CNN / RetinaNet anchor on the finest FPN level (px), doubling per level; 0 = fitted
    anchor_ratios: list[PositiveFloat] = field(default_factory=lambda: [0.5, 1.0, 2.0])  # anchor height / width
    box_batch_size_per_image: PositiveInt = 128  # Faster R-CNN RoIs sampled per image for the box head
    box_iou_thresh: Probability = 0.5  # Faster R-CNN RoIs overlapping an object at least this much are its positives
    score_thresh: Probability = 0.01  # detections below are discarded before NMS
    detections_per_img: PositiveInt = 100  # most objects kept per image (by score)


@dataclass
class DetectModel(DetectorModel):
    tta: str = "none"  # test-time views fused by `toolkit val`, predict and a run's final evaluation: none | hflip | d4


@dataclass
class DetectResult:
    """Detections of one image: ``boxes`` (N, 4) xyxy in ORIGINAL image pixels, ``scores``, ``labels``."""

    source: str
    image: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "width": int(self.image.shape[1]), "height": int(self.image.shape[0]),
                "count": len(self.boxes), "detections": [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4),
                                "label": int(lab), "class": self.classes[int(lab)]}
                               for b, s, lab in zip(self.boxes, self.scores, self.labels)]}

    def to_coco(self, image_id: int) -> list[dict[str, Any]]:
        """COCO results entries (``bbox`` = x, y, w, h pixels; ``category_id`` = label + 1)."""
        return [{"image_id": image_id, "category_id": int(lab) + 1, "score": round(float(s), 5),
                 "bbox": [round(float(b[0]), 2), round(float(b[1]), 2), round(float(b[2] - b[0]), 2),
                          round(float(b[3] - b[1]), 2)]}
                for b, s, lab in zip(self.boxes, self.scores, self.labels)]

    def save(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / f"{Path(self.source).stem or 'image'}_pred.png"
        pred = {"boxes": self.boxes, "labels": self.labels, "scores": self.scores}
        return [save_annotated(self.image, pred, self.classes, out)]


class DetectTask:
    name = "detect"
    DataConfig = DetectData
    ModelConfig = DetectModel
    monitor = "map50_95"
    outputs = "boxes"  # the model's outputs, as an Ensemble of such models combines them
    dataset = DetectionDataset  # Dataset class of a split: (data, transform)
    collate = staticmethod(collate)  # its batches

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.classes: list[str] = []
        self.metric: Any = None  # a torchmetrics MeanAveragePrecision after reset()
        self.samples: list[dict[str, Any]] = []
        self.precision: np.ndarray | None = None
        self.tta = "none"  # of the evaluation under way

    # -- data ---------------------------------------------------------------------------------
    def build_data(self, splits: tuple[str, ...] = ("train", "val", "test")) -> DataBundle:
        d = self.cfg.data
        notes: list[str] = []  # what the reader inferred, then the fitted sizes
        data = self.read_splits(notes)
        folds = folds_of(self.cfg.train, d.val_split)
        if folds:
            first = next(iter(data.values()))  # DetectionData, or another (classes, records) container
            classes, kind = first.classes, type(first)
            found = apply_folds({s: v.records for s, v in data.items()}, folds)
            data = {s: kind(classes, records) for s, records in found.items()}
        elif "val" not in data:
            data["train"], data["val"] = _holdout(data["train"], d.val_split, self.cfg.train.seed)
        self.classes = next(iter(data.values())).classes
        notes += fit_sizes(self.cfg, self.as_boxes(data["train"])) if "train" in data else []
        datasets = {s: self.dataset(data[s], self.transform(train=s == "train"))
                    for s in ("train", "val", "test") if s in data and s in splits}
        info = {s: v.describe() for s, v in data.items()}
        return DataBundle(datasets.get("train"), datasets.get("val"), datasets.get("test"),
                          classes=self.classes, collate=self.collate, info=info, notes=notes)

    def read_splits(self, notes: list[str]) -> dict[str, DetectionData]:
        """The dataset's splits (``notes``: what the reader inferred); built-in nuclei sets its prediction tiles."""
        d = self.cfg.data
        source = Path(d.source)
        if d.source == "nuclei":
            from toolkit.data import nuclei  # here: its label-image readers are for preparing data, not predicting

            source = builtin.prepare("nuclei") / "coco"
            d.predict_tile = d.predict_tile or nuclei.TILE  # resolved into the saved config
        return load(source, notes)

    @staticmethod
    def as_boxes(data: DetectionData) -> DetectionData:
        """The split's objects as boxes (for fitting the input and anchor sizes)."""
        return data

    def augment(self) -> Augment:
        """The ``Augment`` settings of ``cfg.data``."""
        return Augment(**{f.name: getattr(self.cfg.data, f.name) for f in dataclasses.fields(Augment)})

    def transform(self, train: bool) -> Any:
        d = self.cfg.data
        return detection_pipeline(d.img_size, train, self.augment(), min_visibility=d.min_visibility, crop=d.crop,
                                  min_side=d.min_side, seed=self.cfg.train.seed)

    # -- model --------------------------------------------------------------------------------
    def build_model(self, classes: list[str], pretrained: bool = True) -> nn.Module:
        check_tta(self.cfg.model.tta)
        return self.detector(classes, pretrained)

    def detector(self, classes: list[str], pretrained: bool = True, **options: Any) -> nn.Module:
        """``build_detector`` from ``cfg.model`` (``options``: more ``DetectorOptions`` fields)."""
        m, size = self.cfg.model, self.cfg.data.img_size
        self.classes = classes
        if (m.min_size or size) <= 0:
            raise ConfigError("set data.img_size (or model.min_size) to a positive number of pixels")
        return build_detector(m.arch, m.backbone, len(classes), pretrained=m.pretrained if pretrained else False,
                              trainable_stages=m.trainable_stages, weights=m.weights if pretrained else None,
                              min_size=m.min_size or size, max_size=m.max_size or m.min_size or size,
                              box_batch_size_per_image=m.box_batch_size_per_image,
                              box_iou_thresh=m.box_iou_thresh, fpn_min_stride=m.fpn_min_stride,
                              fpn_channels=m.fpn_channels, anchor_size=m.anchor_size,
                              anchor_ratios=m.anchor_ratios, score_thresh=m.score_thresh,
                              detections_per_img=m.detections_per_img, **options)

    def train_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        losses = model(batch["images"], batch["targets"])
        total = sum(losses.values())
        return {"loss": total, **{k: v.detach() for k, v in losses.items()}}

    # -- metrics ------------------------------------------------------------------------------
    def reset(self, final: bool = False) -> None:
        from torchmetrics.detection import MeanAveragePrecision  # here: prediction starts 0.7 s sooner without it

        self.tta = self.cfg.model.tta if final else "none"
        self.metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True,
                                           extended_summary=True, backend="pycocotools", sync_on_compute=False,
                                           iou_thresholds=COCO_IOUS, rec_thresholds=COCO_RECALLS)
        self.samples = []

    @torch.no_grad()
    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> None:
        was_training = model.training
        model.eval()
        found = DetectionTTA(self.tta)(batch["images"], model)
        preds = [{k: _fp32(v.detach().cpu()) for k, v in p.items()} for p in found]
        model.train(was_training)
        targets = [{k: v.cpu() for k, v in t.items()} for t in batch["targets"]]
        # COCO's small / medium / large are areas in the file's pixels, not the resized ones
        scales = batch["scale"].tolist() if "scale" in batch else [1.0] * len(preds)
        self.metric.update(_unscaled(preds, scales), _unscaled(targets, scales))
        for image, target, pred in zip(batch["images"], targets, preds):
            if len(self.samples) < N_PLOT_SAMPLES:
                self.samples.append({"image": image.cpu().permute(1, 2, 0).numpy(),
                                     "gt": {k: v.numpy() for k, v in objects_only(target).items()},
                                     "pred": {k: v.numpy() for k, v in pred.items()}})

    def compute(self) -> dict[str, float]:
        r = self.metric.compute()
        self.precision = r["precision"].numpy()
        out = {"map50_95": float(r["map"]), "map50": float(r["map_50"]), "map75": float(r["map_75"])}
        for size in ("small", "medium", "large"):
            value = float(r[f"map_{size}"])
            out[f"map_{size}"] = value if value >= 0 else float("nan")  # nan: no object of that size
        out["mar100"] = float(r["mar_100"])
        for k, ap in zip(r["classes"].reshape(-1).tolist(), r["map_per_class"].reshape(-1).tolist()):
            if 0 <= k < len(self.classes):
                out[f"ap/{self.classes[k]}"] = ap
        return out

    def report(self, metrics: dict[str, float]) -> str:
        lines = [f"mAP@[.5:.95] {metrics['map50_95']:.4f}   mAP@.5 {metrics['map50']:.4f}   "
                 f"mAP@.75 {metrics['map75']:.4f}   AR@100 {metrics['mar100']:.4f}",
                 "mAP small {map_small:.4f}   medium {map_medium:.4f}   large {map_large:.4f}".format(**metrics),
                 f"{'class':<24} {'AP@[.5:.95]':>11}"]
        lines += [f"{c[:24]:<24} {metrics.get(f'ap/{c}', float('nan')):>11.4f}" for c in self.classes]
        return "\n".join(lines)

    def plots(self, run_dir: Path, split: str) -> list[Path]:
        out = []
        if self.precision is not None:
            out.append(plot_pr_curve(self.precision, self.classes, run_dir / f"{split}_pr_curve.png"))
        if self.samples:
            out.append(plot_samples(self.samples, self.classes, run_dir / f"{split}_predictions.png"))
        return out

    # -- prediction ---------------------------------------------------------------------------
    def read_input(self, path: Path) -> dict[str, Any]:
        return {"image": read_image(path, 3), "source": str(path)}

    @torch.no_grad()
    def predict(self, model: nn.Module, samples: list[dict[str, Any]], *, conf: float = 0.25, iou: float = 0.5,
                tta: str = "") -> list[DetectResult]:
        """Detections with score >= ``conf`` after class-wise NMS at ``iou``, in original pixels.
        ``tta``: test-time views (``inference/tta.py``); "" = the checkpoint's ``model.tta``."""
        tta = tta or self.cfg.model.tta
        was_training = model.training
        model.eval()
        tiles = TiledDetector(self.cfg.data.predict_tile, self.transform(train=False), DetectionTTA(tta), conf, iou)
        results = []
        for sample in samples:
            image = _rgb(sample["image"])
            found = {k: v.numpy() for k, v in tiles(image, model).items()}
            results.append(DetectResult(sample.get("source", ""), image, found["boxes"], found["scores"],
                                        found["labels"], self.classes))
        model.train(was_training)
        return results


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W[, 1|3|4]) float -> (H, W, 3): gray repeated, alpha dropped (the detectors take RGB)."""
    image = image if image.ndim == 3 else image[:, :, None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


def _unscaled(dets: list[dict[str, torch.Tensor]], scales: list[float]) -> list[dict[str, torch.Tensor]]:
    """Boxes divided by each image's resize factor: back in the file's pixels."""
    return [{**d, "boxes": d["boxes"] / s} for d, s in zip(dets, scales)]


def _fp32(t: torch.Tensor) -> torch.Tensor:
    """Float tensors as float32 (bf16/fp16 outputs of an autocast eval), others unchanged."""
    return t.float() if t.is_floating_point() else t


def _holdout(data: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """Seeded random split of the images (``val_holdout``) of a (classes, records) container such as
    ``DetectionData``: (train, held out ``fraction``, at least one image)."""
    train, val = val_holdout(len(data.records), fraction, seed)
    kind = type(data)
    return kind(data.classes, take(data.records, train)), kind(data.classes, take(data.records, val))

