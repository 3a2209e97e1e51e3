"""Instance segmentation: COCO (polygons / RLE), instance label images (DSB2018, StarDist, Cellpose) or YOLO
segmentation, or built-in ``nuclei`` -> Mask R-CNN on our backbones -> one mask per object.

A ``DetectTask`` whose targets carry masks: the same data splits, folds, size fitting, model options and trainer.
Scores (``InstanceMetrics``): COCO mask and box mAP (pycocotools) and the microscopy matching scores at IoU
0.5 .. 0.9 (accuracy TP / (TP + FP + FN), F1, precision, recall; StarDist's), panoptic quality and the object
count, all in the files' pixels: predicted mask probabilities are resized back from ``data.img_size`` before the
``mask_thresh`` cut. Objects count for the matching scores at a score >= ``model.conf``; COCO mAP uses all.
Large images at prediction time: ``data.predict_tile`` > 0 predicts tiles, objects merged across tile borders
(``inference/instance_tiles.py``). Built-in ``nuclei`` sets it to its 128-px training tiles.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.config import Config, PositiveInt, Probability
from toolkit.data.formats.detection import DetectionData, ImageRecord
from toolkit.data.formats.instance_record import InstanceData
from toolkit.data.formats.instances import load_instances
from toolkit.data.image_io import read_image
from toolkit.data.instance_dataset import InstanceDataset, collate
from toolkit.data.pixel_size import pixel_size_um
from toolkit.data.transforms import instance_pipeline
from toolkit.errors import ConfigError
from toolkit.safe_io import atomic_write_csv
from toolkit.inference.instance_tiles import TiledInstances
from toolkit.tasks.base import DataBundle
from toolkit.tasks.detect import DetectorData, DetectorModel, DetectTask, _fp32, _rgb
from toolkit.tasks.instance_metrics import InstanceMetrics
from toolkit.tasks.instance_result import InstanceResult
from toolkit.viz.instance import plot_instance_samples

N_PLOT_SAMPLES = 8
MATCH_IOUS = (50, 60, 70, 80, 90)  # IoU thresholds (percent) of the matching scores


@dataclass
class InstanceDataConfig(DetectorData):
    source: str = "nuclei"  # built-in name, or a COCO (polygons / RLE), label-image or YOLO-seg dataset path


@dataclass
class InstanceModel(DetectorModel):
    arch: str = "maskrcnn"  # maskrcnn (Mask R-CNN: Faster R-CNN + a mask head on the same FPN)
    mask_channels: PositiveInt = 256  # width of the mask head's four 3x3 convs (torchvision: 256)
    mask_thresh: Probability = 0.5  # a pixel belongs to an object where its mask probability is at least this
    conf: Probability = 0.5  # objects scored at least this count (matching scores, counts, predict); mAP uses all


class InstanceTask(DetectTask):
    name = "instance"
    DataConfig = InstanceDataConfig
    ModelConfig = InstanceModel
    monitor = "segm_map50_95"
    outputs = "instances"  # masks per object: an Ensemble does not fuse them
    dataset = InstanceDataset
    collate = staticmethod(collate)

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.files: dict[str, list[str]] = {}  # per split, the image file names by dataset index (for the CSV)

    # -- data ---------------------------------------------------------------------------------
    def build_data(self, splits: tuple[str, ...] = ("train", "val", "test")) -> DataBundle:
        bundle = super().build_data(splits)
        self.files = {s: [r.path.name for r in getattr(bundle, s).data.records]
                      for s in ("train", "val", "test") if getattr(bundle, s) is not None}
        return bundle

    def read_splits(self, notes: list[str]) -> dict[str, InstanceData]:
        d = self.cfg.data
        if d.source == "nuclei":
            from toolkit.data import nuclei  # as in detect: preparing the built-in, not predicting

            d.predict_tile = d.predict_tile or nuclei.TILE  # resolved into the saved config
            return nuclei.nuclei_instances()
        return load_instances(Path(d.source), notes)

    @staticmethod
    def as_boxes(data: InstanceData) -> DetectionData:
        """The objects' boxes (ignore regions left out): the input and anchor sizes are fitted as detection's."""
        records = []
        for r in data.records:
            keep = r.crowd == 0
            records.append(ImageRecord(r.path, r.width, r.height, r.boxes()[keep], r.labels[keep]))
        return DetectionData(data.classes, records)

    def transform(self, train: bool) -> Any:
        d = self.cfg.data
        return instance_pipeline(d.img_size, train, self.augment(), seed=self.cfg.train.seed, crop=d.crop)

    # -- model --------------------------------------------------------------------------------
    def build_model(self, classes: list[str], pretrained: bool = True) -> nn.Module:
        if self.cfg.model.arch != "maskrcnn":
            raise ConfigError(f"model.arch={self.cfg.model.arch!r}: instance segmentation has one architecture, "
                              "maskrcnn (for boxes only, train detect)")
        return self.detector(classes, pretrained, mask_channels=self.cfg.model.mask_channels)

    # -- metrics ------------------------------------------------------------------------------
    def reset(self, final: bool = False) -> None:
        self.metric = InstanceMetrics(len(self.classes), conf=self.cfg.model.conf)
        self.samples = []

    @torch.no_grad()
    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> None:
        was_training = model.training
        model.eval()
        found = model(batch["images"])
        model.train(was_training)
        scales = batch["scale"].tolist() if "scale" in batch else [1.0] * len(found)
        preds, targets = [], []
        for image, pred, target, scale in zip(batch["images"], found, batch["targets"], scales):
            size = (round(image.shape[-2] / scale), round(image.shape[-1] / scale))  # the file's pixels
            probs = _resized(_fp32(pred["masks"].cpu()), size, "bilinear")[:, 0]
            preds.append({"masks": (probs >= self.cfg.model.mask_thresh).numpy(),
                          "scores": _fp32(pred["scores"].cpu()).numpy(), "labels": pred["labels"].cpu().numpy()})
            targets.append({"masks": _resized(target["masks"][:, None].cpu(), size, "nearest-exact")[:, 0].numpy(),
                            "labels": target["labels"].cpu().numpy(), "iscrowd": target["iscrowd"].cpu().numpy()})
            if len(self.samples) < N_PLOT_SAMPLES:
                shown = _resized(image.cpu()[None].float(), size, "bilinear")[0].permute(1, 2, 0).numpy()
                self.samples.append({"image": shown, "gt": targets[-1], "pred": preds[-1]})
        self.metric.update(preds, targets, names=[str(int(i)) for i in batch["index"]])

    def compute(self) -> dict[str, float]:
        return self.metric.compute()

    def report(self, metrics: dict[str, float]) -> str:
        m = metrics
        lines = [f"mask mAP@[.5:.95] {m['segm_map50_95']:.4f}   mask mAP@.5 {m['segm_map50']:.4f}   "
                 f"box mAP@[.5:.95] {m['box_map50_95']:.4f}   box mAP@.5 {m['box_map50']:.4f}",
                 f"{'IoU':<10}" + "".join(f"{t / 100:>8.1f}" for t in MATCH_IOUS)]
        for key, label in (("acc", "accuracy"), ("f1_", "F1"), ("precision", "precision"), ("recall", "recall")):
            lines.append(f"{label:<10}" + "".join(f"{m[f'{key}{t}']:>8.4f}" for t in MATCH_IOUS))
        lines.append(f"panoptic quality {m['pq']:.4f}   objects: {m['count_true']:.0f} true, {m['count_pred']:.0f} "
                     f"predicted (score >= {self.cfg.model.conf}; {m['count_error_pct']:+.1f}%)")
        return "\n".join(lines)

    def plots(self, run_dir: Path, split: str) -> list[Path]:
        out = []
        rows = self.metric.per_image() if self.metric is not None else []
        files = self.files.get(split, [])
        rows = [{**r, "name": files[int(r["name"])] if int(r["name"]) < len(files) else r["name"]} for r in rows]
        if rows:
            out.append(run_dir / f"images_{split}.csv")
            atomic_write_csv(rows, list(rows[0]), out[-1])
        if self.samples:
            out.append(plot_instance_samples(self.samples, self.classes, run_dir / f"{split}_predictions.png",
                                             conf=self.cfg.model.conf))
        return out

    # -- prediction ---------------------------------------------------------------------------
    def read_input(self, path: Path) -> dict[str, Any]:
        return {"image": read_image(path, 3), "source": str(path), "pixel_size_um": pixel_size_um(path)}

    @torch.no_grad()
    def predict(self, model: nn.Module, samples: list[dict[str, Any]], *, conf: float | None = None,
                iou: float = 0.5, mask_thresh: float | None = None) -> list[InstanceResult]:
        """Objects scored >= ``conf`` after class-wise NMS at box ``iou``, masks cut at ``mask_thresh``, in the
        input's pixels; ``None`` = the checkpoint's ``model.conf`` / ``model.mask_thresh``."""
        m = self.cfg.model
        conf = m.conf if conf is None else conf
        mask_thresh = m.mask_thresh if mask_thresh is None else mask_thresh
        was_training = model.training
        model.eval()
        tiles = TiledInstances(self.cfg.data.predict_tile, self.transform(train=False), conf, iou, mask_thresh)
        results = []
        for sample in samples:
            image = _rgb(sample["image"])
            found = tiles(image, model, dense=False)  # masks over their boxes: no N x H x W array for large images
            results.append(InstanceResult.from_masks(sample.get("source", ""), image, found["masks"], found["scores"],
                                                     found["labels"], self.classes, sample.get("pixel_size_um"),
                                                     boxes=found["boxes"]))
        model.train(was_training)
        return results


def _resized(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, *size), dtype kept (float math inside)."""
    if x.shape[-2:] == size:
        return x
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x.float(), size=size, mode=mode, **kw).to(x.dtype)

