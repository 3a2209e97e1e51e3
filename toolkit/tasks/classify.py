"""Image classification: ImageFolder / CSV / built-in arrays -> backbone + linear head -> torchmetrics."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.backbones import create_backbone
from toolkit.config import Config, Fraction, NonNegativeInt, PositiveFloat, Stages
from toolkit.data.classification import common_size, load_splits
from toolkit.data.image_io import read_image
from toolkit.data.splits import folds_of
from toolkit.data.transforms import Augment, at_least, classification_pipeline, default_stats
from toolkit.errors import ConfigError
from toolkit.heads.classification import Classifier
from toolkit.tasks.base import DataBundle
from toolkit.viz import plot_confusion_matrix


@dataclass
class ClassifyData(Augment):
    source: str = "fashion-mnist"  # built-in name, ImageFolder root or CSV file
    img_size: NonNegativeInt = 0  # square resize in pixels; 0 = native size
    channels: NonNegativeInt = 0  # 1 | 3; 0 = from the first image
    window: str = ""  # DICOM images: window preset(s) or centre/width, e.g. "brain,subdural,bone" (read_image)
    val_split: Fraction = 0.1  # held out of train when the dataset has no val split
    limit: NonNegativeInt = 0  # use a stratified, seeded subset of this many training images; 0 = all
    balance: str = "none"  # none | weights (loss) | sampler (WeightedRandomSampler)
    mean: list[float] = field(default_factory=list)  # [] = ImageNet statistics
    std: list[PositiveFloat] = field(default_factory=list)


@dataclass
class ClassifyModel:
    backbone: str = "resnet18"  # any of `toolkit.list_models()`, e.g. mobilenet_v2, resnet50, efficientnet_b0
    pretrained: bool | str = False  # true | weights enum name | path to .pth/.safetensors
    trainable_stages: Stages = None  # None = all stages trainable
    dropout: Fraction = 0.0


@dataclass
class ClassifyResult:
    """Top-k classes of one image, best first."""

    source: str
    top: list[tuple[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "class": self.top[0][0], "score": self.top[0][1],
                "top": [{"class": c, "score": s} for c, s in self.top]}

    def save(self, out_dir: Path) -> list[Path]:
        return []


def min_side(model: nn.Module) -> int:
    """The smallest image side (px) a classifier takes: its backbone's total stride, below which the deepest stage
    has no pixel left (1 for a model without a backbone, e.g. an ONNX session)."""
    return max(getattr(getattr(model, "backbone", None), "strides", None) or [1])


class ClassifyTask:
    name = "classify"
    DataConfig = ClassifyData
    ModelConfig = ClassifyModel
    monitor = "accuracy"
    outputs = "softmax"  # the model's outputs, as an Ensemble of such models combines them

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.classes: list[str] = []
        self.channels = cfg.data.channels
        self.class_weights: torch.Tensor | None = None
        self.metrics: Any = None  # a torchmetrics MetricCollection after reset()
        self.confmat: np.ndarray | None = None

    # -- data ---------------------------------------------------------------------------------
    def build_data(self, splits: tuple[str, ...] = ("train", "val", "test")) -> DataBundle:
        d, seed = self.cfg.data, self.cfg.train.seed
        if d.balance not in ("none", "weights", "sampler"):
            raise ConfigError(f"data.balance={d.balance!r} is unknown; valid: none, weights, sampler")
        reader = partial(read_image, window=d.window)
        folds = folds_of(self.cfg.train, d.val_split)
        datasets, classes = load_splits(d.source, d.channels, d.val_split, seed, reader, limit=d.limit, folds=folds)
        self.classes = classes
        self.channels = d.channels = datasets["train"].channels  # resolved into the saved config
        notes = []
        if d.img_size == 0:
            d.img_size, note = common_size(datasets.values())  # 0 when all images share one size
            notes += [note] if note else []
        for split, ds in datasets.items():
            ds.transform = self.transform(train=split == "train", shape=ds.shape)
        train = datasets["train"]
        counts = np.bincount(train.labels, minlength=len(classes))
        if d.balance == "weights":
            self.class_weights = torch.as_tensor(counts.sum() / np.maximum(counts, 1) / len(classes),
                                                 dtype=torch.float32)
        info = {"train_counts": dict(zip(classes, counts.tolist())), "channels": self.channels,
                "balance_labels": train.labels if d.balance == "sampler" else None}
        return DataBundle(*(datasets.get(s) if s in splits else None for s in ("train", "val", "test")),
                          classes=classes, info=info, notes=notes)

    def transform(self, train: bool, shape: tuple[int, int] | None = None) -> Any:
        """The split's pipeline; ``shape``: (H, W) shared by all its images, when known."""
        d = self.cfg.data
        mean, std = (d.mean, d.std) if d.mean else default_stats(self.channels)
        aug = Augment(**{f.name: getattr(d, f.name) for f in dataclasses.fields(Augment)})
        return classification_pipeline(d.img_size, train, aug, mean, std, seed=self.cfg.train.seed,
                                       native_shape=shape)

    # -- model --------------------------------------------------------------------------------
    def build_model(self, classes: list[str], pretrained: bool = True) -> nn.Module:
        m = self.cfg.model
        self.classes = classes
        backbone = create_backbone(m.backbone, pretrained=m.pretrained if pretrained else False,
                                   in_chans=self.channels or 3, trainable_stages=m.trainable_stages)
        return Classifier(backbone, len(classes), m.dropout)

    def train_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = model(batch["image"])
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        loss = F.cross_entropy(logits.float(), batch["label"], weight=weight,
                               label_smoothing=self.cfg.train.label_smoothing)
        return {"loss": loss}

    # -- metrics ------------------------------------------------------------------------------
    def reset(self, final: bool = False) -> None:
        import torchmetrics.classification as tmc  # here, not at the top: prediction starts 0.7 s sooner without it
        from torchmetrics import MetricCollection

        n = len(self.classes)
        kw = {"num_classes": n, "sync_on_compute": False}
        self.metrics = MetricCollection({
            "accuracy": tmc.MulticlassAccuracy(average="micro", **kw),
            "f1_macro": tmc.MulticlassF1Score(average="macro", **kw),
            "auroc": tmc.MulticlassAUROC(average="macro", **kw),
            "precision": tmc.MulticlassPrecision(average="none", **kw),
            "recall": tmc.MulticlassRecall(average="none", **kw),
            "confmat": tmc.MulticlassConfusionMatrix(**kw),
        })
        self._loss_sum, self._count = 0.0, 0

    @torch.no_grad()
    def eval_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
        logits = model(batch["image"]).float()
        self._loss_sum += F.cross_entropy(logits, batch["label"], reduction="sum").item()
        self._count += len(logits)
        self.metrics.update(logits.softmax(1).cpu(), batch["label"].cpu())

    def compute(self) -> dict[str, float]:
        values = self.metrics.compute()
        self.confmat = values.pop("confmat").numpy()
        out = {"val_loss": self._loss_sum / max(1, self._count)}
        for name, value in values.items():
            if value.ndim == 0:
                out[name] = float(value)
            else:
                out.update({f"{name}/{c}": float(v) for c, v in zip(self.classes, value)})
        return out

    def report(self, metrics: dict[str, float]) -> str:
        lines = [f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['f1_macro']:.4f}   "
                 f"AUROC {metrics['auroc']:.4f}   loss {metrics['val_loss']:.4f}",
                 f"{'class':<20} {'precision':>9} {'recall':>9}"]
        for c in self.classes:
            lines.append(f"{c[:20]:<20} {metrics[f'precision/{c}']:>9.4f} {metrics[f'recall/{c}']:>9.4f}")
        return "\n".join(lines)

    def plots(self, run_dir: Path, split: str) -> list[Path]:
        if self.confmat is None:
            return []
        return [plot_confusion_matrix(self.confmat, self.classes, run_dir / "confusion_matrix.png")]

    # -- prediction ---------------------------------------------------------------------------
    def read_input(self, path: Path) -> dict[str, Any]:
        return {"image": read_image(path, self.channels, self.cfg.data.window), "source": str(path)}

    @torch.no_grad()
    def predict(self, model: nn.Module, samples: list[dict[str, Any]], *, top_k: int = 5) -> list[ClassifyResult]:
        """The ``top_k`` classes of each image with their softmax probabilities. At ``data.img_size=0`` (native
        size) an image smaller than the backbone's total stride (e.g. 8 px for simple_cnn) is scaled up to it."""
        pipeline = self.transform(train=False)
        device = next(model.parameters()).device
        least = 1 if self.cfg.data.img_size else min_side(model)
        images = [pipeline({"image": at_least(s["image"], least)})["image"] for s in samples]
        same_size = len({im.shape for im in images}) == 1
        batches = [torch.stack(images)] if same_size else [im[None] for im in images]
        probs = torch.cat([model(b.to(device)).float().softmax(1).cpu() for b in batches])
        k = min(top_k, len(self.classes))
        scores, indices = probs.topk(k, dim=1)
        return [ClassifyResult(s.get("source", ""), [(self.classes[i], float(p)) for p, i in zip(ps, ix)])
                for s, ps, ix in zip(samples, scores.tolist(), indices.tolist())]

