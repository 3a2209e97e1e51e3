"""2D semantic segmentation: image/mask folders or the built-in ``nuclei`` -> backbone + decoder
(unet | fpn | deeplabv3 | lraspp) -> per-pixel classes; Dice/IoU from torchmetrics."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tifffile
import torch
from annotated_types import Ge
from PIL import Image
from torch import nn

from toolkit.config import Config, Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Stages
from toolkit.data import builtin
from toolkit.data.formats.masks import load_mask_splits
from toolkit.data.image_io import image_size, match_channels, read_image
from toolkit.data.segmentation_dataset import PadCollate, SegmentationDataset
from toolkit.data.splits import folds_of
from toolkit.data.transforms import Augment, default_stats, segmentation_pipeline
from toolkit.heads.segmentation import build_segmenter
from toolkit.inference.ensemble import split_spread, spreading
from toolkit.tasks.base import DataBundle
from toolkit.tasks.seg_losses import build_loss
from toolkit.tasks.seg_metrics import SegMetrics
from toolkit.viz.segment import overlay, plot_samples

PLOT_SAMPLES = 6


@dataclass
class SegmentData(Augment):
    source: str = "nuclei"  # built-in name or root of {train,val[,test]}/{images,masks}/
    crop: NonNegativeInt = 256  # square train crop in pixels (at most the smallest train image side); 0 = whole images
    channels: NonNegativeInt = 0  # 1 | 3; 0 = from the first image
    window: str = ""  # DICOM images: window preset(s) or centre/width, e.g. "brain,subdural,bone" (read_image)
    ignore_index: int = 255  # mask value that counts nowhere; classes.yaml may set it
    background: Annotated[int, Ge(-1)] = 0  # class left out of the `dice`/`iou` means; -1 = none
    val_split: Fraction = 0.2  # held out of train when the dataset has no val split
    repeat: PositiveInt = 1  # visits of each train image per epoch (random crops of few large images)
    mean: list[float] = field(default_factory=list)  # [] = ImageNet statistics
    std: list[PositiveFloat] = field(default_factory=list)


@dataclass
class SegmentModel:
    head: str = "unet"  # unet | fpn | deeplabv3 | lraspp
    backbone: str = "resnet18"  # any of `toolkit.list_models()`, e.g. mobilenet_v2, resnet50, efficientnet_b0
    pretrained: bool | str = False  # true | weights enum name | path to .pth/.safetensors
    trainable_stages: Stages = None  # None = all stages trainable
    decoder_channels: NonNegativeInt = 0  # widest decoder layer; 0 = the head's default
    loss: str = "dicece"  # ce | dice | dicece | focal
    class_weights: list[NonNegativeFloat] = field(default_factory=list)  # one per class; [] = equal


@dataclass
class SegmentResult:
    """Per-pixel classes of one image: ``mask`` (H, W) class indices at the input's size; from an ensemble, also its
    ``uncertainty`` (H, W) float32: the members' disagreement per pixel, the largest standard deviation of their
    class probabilities (0 to 0.5)."""

    source: str
    mask: np.ndarray
    classes: list[str]
    image: np.ndarray | None = None  # (H, W, C) float in [0, 1], for the overlay
    uncertainty: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        counts = np.bincount(self.mask.ravel(), minlength=len(self.classes))
        total = max(1, self.mask.size)
        return {"source": self.source, "height": int(self.mask.shape[0]), "width": int(self.mask.shape[1]),
                "classes": self.classes,
                "pixels": {c: int(n) for c, n in zip(self.classes, counts)},
                "fraction": {c: round(float(n) / total, 6) for c, n in zip(self.classes, counts)}}

    def save(self, out_dir: Path) -> list[Path]:
        """``<stem>_mask.png`` (class indices, 8-bit, 16-bit past 256 classes), ``<stem>_overlay.png`` and, from an
        ensemble, ``<stem>_uncertainty.tif`` (float32)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = Path(self.source).stem or "image"
        dtype = np.uint8 if len(self.classes) <= 256 else np.uint16
        paths = [out_dir / f"{stem}_mask.png"]
        Image.fromarray(self.mask.astype(dtype)).save(paths[0])
        if self.image is not None:
            paths.append(out_dir / f"{stem}_overlay.png")
            Image.fromarray(overlay(self.image, self.mask, len(self.classes))).save(paths[1])
        if self.uncertainty is not None:
            paths.append(out_dir / f"{stem}_uncertainty.tif")
            tifffile.imwrite(paths[-1], self.uncertainty.astype(np.float32))
        return paths


def resolve_source(source: str) -> Path:
    """The built-in ``nuclei`` (prepared on first use; its ``masks/`` layout) or a dataset folder."""
    if source == "nuclei":
        return builtin.prepare("nuclei") / "masks"
    return Path(source).expanduser()


class SegmentTask:
    name = "segment"
    DataConfig = SegmentData
    ModelConfig = SegmentModel
    monitor = "dice"
    outputs = "softmax"  # the model's outputs, as an Ensemble of such models combines them

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.classes: list[str] = []
        self.channels = cfg.data.channels
        self.loss_fn: nn.Module | None = None
        self.metrics: SegMetrics | None = None
        self.examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.example_sources: list[str] = []

    # -- data ---------------------------------------------------------------------------------
    def build_data(self, splits: tuple[str, ...] = ("train", "val", "test")) -> DataBundle:
        d = self.cfg.data
        found = load_mask_splits(resolve_source(d.source), d.ignore_index, d.val_split, self.cfg.train.seed, splits,
                                 folds_of(self.cfg.train, d.val_split))
        self.classes = found.classes
        d.ignore_index = found.ignore_index  # resolved into the saved config
        train_pairs = found.pairs.get("train", [])
        channels = d.channels or SegmentationDataset(next(p for p in found.pairs.values() if p), window=d.window).channels
        self.channels = d.channels = channels
        crop = min([d.crop, *(min(image_size(i)) for i, _ in train_pairs)]) if d.crop and train_pairs else 0
        datasets = {}
        for split in ("train", "val", "test"):
            if split in splits and found.pairs.get(split):
                train = split == "train"
                datasets[split] = SegmentationDataset(found.pairs[split], channels, self.transform(train, crop),
                                                      d.repeat if train else 1, d.window)
        notes = list(found.notes)
        if "train" in datasets and "val" not in datasets and "test" not in datasets:  # e.g. data.val_split=0
            datasets["val"] = SegmentationDataset(train_pairs, channels, self.transform(False), 1, d.window)
            notes.append(f"note: no val split (data.val_split={d.val_split}): the {len(train_pairs)} train image(s) "
                         "are evaluated as val, so its Dice/IoU measure fit, not generalisation; add val/ images")
        info = {"images": {s: len(p) for s, p in found.pairs.items()}, "channels": channels, "crop": crop,
                "ignore_index": found.ignore_index}
        return DataBundle(datasets.get("train"), datasets.get("val"), datasets.get("test"), classes=self.classes,
                          collate=PadCollate(found.ignore_index), info=info, notes=notes)

    def stats(self) -> tuple[list[float], list[float]]:
        d = self.cfg.data
        return (list(d.mean), list(d.std)) if d.mean else tuple(map(list, default_stats(self.channels or 3)))

    def transform(self, train: bool, crop: int = 0) -> Any:
        d = self.cfg.data
        aug = Augment(**{f.name: getattr(d, f.name) for f in dataclasses.fields(Augment)})
        mean, std = self.stats()
        return segmentation_pipeline(crop, train, aug, mean, std, d.ignore_index, seed=self.cfg.train.seed)

    # -- model and loss -----------------------------------------------------------------------
    def build_model(self, classes: list[str], pretrained: bool = True) -> nn.Module:
        m = self.cfg.model
        self.classes = list(classes)
        self.loss_fn = build_loss(m.loss, len(classes), m.class_weights, self.cfg.data.ignore_index)
        return build_segmenter(m.head, m.backbone, len(classes), pretrained=m.pretrained if pretrained else False,
                               in_chans=self.channels or 3, trainable_stages=m.trainable_stages,
                               decoder_channels=m.decoder_channels)

    def loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.loss_fn is None:
            m = self.cfg.model
            self.loss_fn = build_loss(m.loss, len(self.classes), m.class_weights, self.cfg.data.ignore_index)
        return self.loss_fn.to(logits.device)(logits.float(), mask)

    def train_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(model(batch["image"]), batch["mask"])}

    # -- metrics ------------------------------------------------------------------------------
    def reset(self, final: bool = False) -> None:
        self.metrics = SegMetrics(self.classes, self.cfg.data.ignore_index, self.cfg.data.background)
        self.examples, self.example_sources = [], []
        self._loss_sum, self._count = 0.0, 0

    @torch.no_grad()
    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> None:
        logits = model(batch["image"]).float()
        self._loss_sum += self.loss(logits, batch["mask"]).item() * len(logits)
        self._count += len(logits)
        pred = logits.argmax(1)
        self.metrics.update(pred, batch["mask"])
        self._keep_examples(batch, pred)

    def _keep_examples(self, batch: dict[str, Any], pred: torch.Tensor) -> None:
        mean, std = (torch.tensor(v).view(-1, 1, 1) for v in self.stats())
        for i in range(len(pred)):
            if len(self.examples) >= PLOT_SAMPLES:
                return
            h, w = batch["size"][i].tolist() if "size" in batch else pred.shape[-2:]
            image = (batch["image"][i, :, :h, :w].float().cpu() * std + mean).permute(1, 2, 0).numpy()
            self.examples.append((image, batch["mask"][i, :h, :w].cpu().numpy(), pred[i, :h, :w].cpu().numpy()))
            self.example_sources.append(batch.get("source", [""] * len(pred))[i])

    def compute(self) -> dict[str, float]:
        return {"val_loss": self._loss_sum / max(1, self._count), **self.metrics.compute()}

    def report(self, metrics: dict[str, float]) -> str:
        lines = [f"Dice {metrics['dice']:.4f}   IoU {metrics['iou']:.4f}   mean Dice (all classes) "
                 f"{metrics['mdice']:.4f}   mIoU {metrics['miou']:.4f}   pixel accuracy {metrics['pixel_acc']:.4f}   "
                 f"loss {metrics['val_loss']:.4f}",
                 f"{'class':<20} {'Dice':>8} {'IoU':>8}"]
        for c in self.classes:
            lines.append(f"{c[:20]:<20} {metrics[f'dice/{c}']:>8.4f} {metrics[f'iou/{c}']:>8.4f}")
        lines.append("(torchmetrics, pixels pooled over the split; nan = class in neither truth nor prediction)")
        return "\n".join(lines)

    def plots(self, run_dir: Path, split: str) -> list[Path]:
        if not self.examples:
            return []
        out = Path(run_dir) / f"predictions_{split}.png"
        return [plot_samples(self.examples, self.classes, out, self.cfg.data.ignore_index, self.example_sources)]

    # -- prediction ---------------------------------------------------------------------------
    def read_input(self, path: Path) -> dict[str, Any]:
        return {"image": read_image(path, self.channels or 3, self.cfg.data.window), "source": str(path)}

    @torch.no_grad()
    def predict(self, model: nn.Module, samples: list[dict[str, Any]]) -> list[SegmentResult]:
        """One forward pass per image (any size; padding to the stride happens in the model)."""
        pipeline = self.transform(train=False)
        device = next(model.parameters()).device
        model.eval()
        results = []
        for sample in samples:
            image = pipeline({"image": match_channels(sample["image"], self.channels or 3)})["image"]
            with spreading(model):  # an ensemble also gives its members' disagreement
                scores, spread = split_spread(model(image[None].to(device)), len(self.classes))
            uncertainty = None if spread is None else torch.sigmoid(spread[0]).cpu().numpy()
            mask = scores.argmax(1)[0].cpu().numpy()
            results.append(SegmentResult(sample.get("source", ""), mask, list(self.classes), sample["image"], uncertainty))
        return results


def otsu_baseline(source: str = "nuclei", split: str = "val") -> dict[str, float]:
    """The non-learned reference for two-class data: each image thresholded at its own Otsu level
    (class 1 = brighter than the level), scored like the models (``SegMetrics``)."""
    from skimage.filters import threshold_otsu

    from toolkit.data.formats.masks import read_mask

    found = load_mask_splits(resolve_source(source), splits=(split,))
    metrics = SegMetrics(found.classes, found.ignore_index)
    for image_path, mask_path in found.pairs[split]:
        image = read_image(image_path, 1)[..., 0]
        pred = torch.from_numpy((image > threshold_otsu(image)).astype(np.int64))
        metrics.update(pred[None], torch.from_numpy(read_mask(mask_path))[None])
    return metrics.compute()

