"""3D tumour segmentation (MONAI): MSD-style NIfTI datasets (the built-in ``brain-lesions``, BraTS, MSD
Task01) -> SegResNet | UNet | SwinUNETR -> TC/WT/ET channels; Dice and HD95 per region and per case."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from monai.data import CacheDataset, list_data_collate, load_decathlon_datalist
from monai.data.utils import affine_to_spacing
from monai.losses import DiceLoss
from torch import nn
from torch.utils.data import Dataset

from toolkit.config import (
    Config,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
)
from toolkit.data import builtin
from toolkit.data.image_io import IMAGE_SUFFIXES
from toolkit.data.splits import Folds, apply_folds, folds_of, take, val_holdout
from toolkit.errors import ConfigError, DataError
from toolkit.inference.ensemble import split_spread, spreading
from toolkit.inference.sliding_window import ScanSegmenter, SlidingWindow
from toolkit.medical import BRATS_LABELS, Volume, lesion_volumes_ml, load_scan, save_mask
from toolkit.medical.networks import build_network, check_roi
from toolkit.medical.nifti import is_nifti, write_nifti
from toolkit.medical.transforms import (
    REGION_NAMES,
    REGIONS,
    PipelineSpec,
    array_pipeline,
    eval_pipeline,
    label_scheme,
    regions_to_labels,
    to_meta_tensor,
    train_pipeline,
)
from toolkit.tasks.base import DataBundle
from toolkit.tasks.segment3d_metrics import RegionMetrics
from toolkit.viz.segment3d import plot_overlay, write_case_csv


@dataclass
class Segment3DData:
    source: str = "brain-lesions"  # built-in name or an MSD-style folder (dataset.json, imagesTr/, labelsTr/)
    roi: list[PositiveInt] = field(default_factory=lambda: [64, 64, 64])  # train crop and sliding window, voxels
    num_samples: PositiveInt = 2  # random crops per case per visit
    pos: NonNegativeFloat = 1.0  # crops centred on lesion : background voxels = pos : neg
    neg: NonNegativeFloat = 1.0
    spacing: list[PositiveFloat] = field(default_factory=list)  # resample to this voxel size (mm); [] = keep
    modalities: list[NonNegativeInt] = field(default_factory=list)  # image channels to use, e.g. [3] = FLAIR; [] = all
    labels: str = "auto"  # auto | brats (1, 2, 4) | msd (Task01: 1 oedema, 2 non-enhancing, 3 enhancing)
    cache: Probability = 1.0  # fraction of cases whose deterministic preprocessing is cached in memory
    val_split: Fraction = 0.2  # held out of training when dataset.json has no "validation" list
    repeat: PositiveInt = 1  # visits of each training case per epoch
    flip: Probability = 0.5  # probability of a flip along each axis
    scale: NonNegativeFloat = 0.1  # random intensity scaling +- (fraction)
    shift: NonNegativeFloat = 0.1  # random intensity shift +- (in standard deviations)
    channels: NonNegativeInt = 0  # model input channels; 0 = from the dataset (resolved into the saved config)


@dataclass
class Segment3DModel:
    arch: str = "segresnet"  # segresnet | unet | swinunetr
    init_filters: PositiveInt = 16  # width of the first level (swinunetr: feature size, a multiple of 12)
    dropout: Fraction = 0.0
    loss: str = "dicece"  # dice | dicece (Dice + binary cross-entropy, both on sigmoid outputs)
    overlap: Fraction = 0.5  # sliding-window overlap (validation and prediction)
    sw_batch_size: PositiveInt = 2  # windows per forward pass


@dataclass
class Segment3DResult:
    """A predicted BraTS label mask (X, Y, Z) uint8 (1 core, 2 oedema, 4 enhancing) on the input's grid; from an
    ensemble, also its ``uncertainty`` (X, Y, Z) float32: the members' disagreement per voxel, the largest standard
    deviation of their region probabilities (0 to 0.5)."""

    source: str
    mask: np.ndarray
    reference: Volume
    uncertainty: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        voxel_ml = float(np.prod(self.reference.spacing)) / 1000.0
        regions = {"tc_ml": np.isin(self.mask, (1, 4)), "wt_ml": self.mask > 0, "et_ml": self.mask == 4}
        return {"source": self.source, **{k: round(float(v.sum()) * voxel_ml, 3) for k, v in regions.items()},
                "shape": list(self.mask.shape), "spacing_mm": [round(s, 4) for s in self.reference.spacing],
                "labels_ml": {k: round(v, 3) for k, v in lesion_volumes_ml(self.mask, self.reference.affine,
                                                                         BRATS_LABELS).items()}}

    def save(self, out_dir: Path) -> list[Path]:
        """``<stem>_mask.nii.gz`` with the input's affine, plus ``<stem>_mask.seg.dcm`` for DICOM input, and
        ``<stem>_uncertainty.nii.gz`` (float32) from an ensemble."""
        name = Path(self.source.rstrip("/")).name
        stem = (name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem) or "scan"
        paths = list(save_mask(self.mask, self.reference, out_dir, f"{stem}_mask", BRATS_LABELS).values())
        if self.uncertainty is not None:
            path = Path(out_dir) / f"{stem}_uncertainty.nii.gz"
            paths.append(write_nifti(self.uncertainty, self.reference.affine, path, np.float32))
        return paths


def resolve_source(source: str) -> Path:
    """A built-in name (prepared on first use) or an MSD-style folder holding dataset.json."""
    root = builtin.prepare(source) if source in builtin.names("segment3d") else Path(source).expanduser()
    if not (root / "dataset.json").is_file():
        raise DataError(f"data.source={source!r}: {root / 'dataset.json'} not found; pass an MSD-style folder "
                        f"(dataset.json + imagesTr/ + labelsTr/) or a built-in name ({', '.join(builtin.names('segment3d'))})")
    return root


GROUP_KEYS = ("patient", "subject", "case", "group")  # a dataset.json entry's field naming whose scan it is


def decathlon_splits(root: Path, val_split: float, seed: int, folds: Folds | None = None
                     ) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """(dataset.json, {"train": [...], "val": [...]}) of {"image": path, "label": path}; without a "validation"
    list, ``val_split`` of the training cases is held out (seeded). ``folds``: the train / val / test of one
    cross-validation fold instead (``splits.apply_folds``), never splitting the scans of one patient when every
    entry names it (``GROUP_KEYS``)."""
    meta = json.loads((root / "dataset.json").read_text())
    lists = {"train": load_decathlon_datalist(str(root / "dataset.json"), True, "training", base_dir=str(root))}
    if meta.get("validation"):
        lists["val"] = load_decathlon_datalist(str(root / "dataset.json"), True, "validation", base_dir=str(root))
    if folds:
        key = next((k for k in GROUP_KEYS if all(k in e for e in lists["train"] + lists.get("val", []))), None)
        lists = apply_folds(lists, folds, groups=(lambda e: e[key]) if key else None)
    elif "val" not in lists:
        kept, held = val_holdout(len(lists["train"]), val_split, seed)
        lists = {"train": take(lists["train"], kept), "val": take(lists["train"], held)}
    missing = [e[k] for entries in lists.values() for e in entries for k in ("image", "label")
               if not Path(e[k]).is_file()]
    if missing:
        raise DataError(f"{root / 'dataset.json'} lists {len(missing)} missing file(s), e.g. {missing[0]}")
    return meta, lists


def collate(items: list[Any]) -> dict[str, Any]:
    """MONAI collation (lists of crops are flattened); cases of different sizes stay a list of tensors."""
    flat = [s for item in items for s in (item if isinstance(item, list) else [item])]
    if len({tuple(s["image"].shape) for s in flat}) == 1:
        return list_data_collate(flat)
    return {key: [s[key] for s in flat] for key in ("image", "label")}


class Repeated(Dataset):
    """``times`` passes over ``dataset`` per epoch (cached once); exposes its ``transform`` for epoch seeding."""

    def __init__(self, dataset: Dataset, times: int) -> None:
        self.dataset, self.times, self.transform = dataset, times, dataset.transform

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index % len(self.dataset)]


class Segment3DTask:
    name = "segment3d"
    DataConfig = Segment3DData
    ModelConfig = Segment3DModel
    monitor = "dice_mean"
    outputs = "sigmoid"  # the model's outputs, as an Ensemble of such models combines them

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.classes = list(REGIONS)
        self.loss_fn: nn.Module | None = None
        self.cases: list[str] = []
        self.example: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- data ---------------------------------------------------------------------------------
    def spec(self) -> PipelineSpec:
        d = self.cfg.data
        return PipelineSpec(roi=tuple(d.roi), spacing=tuple(d.spacing), scheme=d.labels, num_samples=d.num_samples,
                            pos=d.pos, neg=d.neg, flip=d.flip, scale=d.scale, shift=d.shift,
                            modalities=tuple(d.modalities))

    def build_data(self, splits: tuple[str, ...] = ("train", "val", "test")) -> DataBundle:
        d = self.cfg.data
        check_roi(self.cfg.model.arch, tuple(d.roi))
        meta, lists = decathlon_splits(resolve_source(d.source), d.val_split, self.cfg.train.seed,
                                       folds_of(self.cfg.train, d.val_split))
        d.labels = label_scheme(meta.get("labels", {}), d.labels)
        n_modalities = len(meta.get("modality", {})) or 1
        if any(not 0 <= m < n_modalities for m in d.modalities):
            raise ConfigError(f"data.modalities={d.modalities} is out of range: the dataset has {n_modalities} "
                            f"channels {meta.get('modality', {})}")
        d.channels = len(d.modalities) or n_modalities
        spec = self.spec()
        train = None
        if "train" in splits:
            cached = CacheDataset(lists["train"], train_pipeline(spec), cache_rate=d.cache, num_workers=1,
                                  progress=False)
            train = Repeated(cached, max(1, d.repeat))
        val, test = (CacheDataset(lists[s], eval_pipeline(spec), cache_rate=d.cache, num_workers=1, progress=False)
                     if s in splits and lists.get(s) else None for s in ("val", "test"))
        info = {"cases": {k: len(v) for k, v in lists.items()}, "labels": d.labels, "channels": d.channels}
        return DataBundle(train, val, test, classes=self.classes, collate=collate, info=info)

    # -- model and loss -----------------------------------------------------------------------
    def build_model(self, classes: list[str], pretrained: bool = True) -> nn.Module:
        m = self.cfg.model
        check_roi(m.arch, tuple(self.cfg.data.roi))
        return build_network(m.arch, self.cfg.data.channels or 4, len(classes), m.init_filters, m.dropout)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Soft Dice on sigmoid outputs (+ binary cross-entropy for ``dicece``): the regions overlap, so MONAI's
        DiceCELoss (softmax cross-entropy over channels) does not apply."""
        if self.loss_fn is None:
            if self.cfg.model.loss not in ("dice", "dicece"):
                raise ConfigError(f"model.loss={self.cfg.model.loss!r} is unknown; valid: dice, dicece")
            self.loss_fn = DiceLoss(sigmoid=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)
        loss = self.loss_fn(logits.float(), target)
        if self.cfg.model.loss == "dicece":
            loss = loss + nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
        return loss

    def train_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(model(batch["image"].as_tensor()), batch["label"].as_tensor())}

    # -- metrics ------------------------------------------------------------------------------
    def reset(self, final: bool = False) -> None:
        self.metrics = RegionMetrics(REGIONS)
        self.cases, self.example = [], None
        self._loss_sum = 0.0

    @torch.no_grad()
    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> None:
        m = self.cfg.model
        for image, label in zip(batch["image"], batch["label"]):
            logits = SlidingWindow(self.cfg.data.roi, m.overlap, m.sw_batch_size)(image.as_tensor()[None], model)
            target = label.as_tensor()[None]
            self._loss_sum += self.loss(logits, target).item()
            pred = (torch.sigmoid(logits.float()) > 0.5).float()
            self.metrics.update(pred, target, affine_to_spacing(image.affine, r=3).tolist())
            self.cases.append(Path(str(image.meta.get("filename_or_obj", f"case {len(self.cases)}"))).name)
            if self.example is None:
                self.example = (image[-1].cpu().numpy(), target[0].cpu().numpy(), pred[0].cpu().numpy())

    def per_case(self) -> dict[str, np.ndarray]:
        """{"dice", "hd95" (mm), "missed" (0/1)} each (N, 3) per case and region; see ``RegionMetrics``."""
        return self.metrics.per_case()

    def compute(self) -> dict[str, float]:
        return {"val_loss": self._loss_sum / max(1, len(self.cases)), **self.metrics.compute()}

    def report(self, metrics: dict[str, float]) -> str:
        lines = [f"mean Dice {metrics['dice_mean']:.4f}   mean HD95 {metrics['hd95']:.2f} mm   "
                 f"missed regions {metrics['missed']:.0f}   loss {metrics['val_loss']:.4f}",
                 f"{'region':<22} {'Dice':>8} {'HD95 mm':>9} {'missed':>7}"]
        for r in REGIONS:
            lines.append(f"{r + ' ' + REGION_NAMES[r]:<22} {metrics[f'dice_{r.lower()}']:>8.4f} "
                         f"{metrics[f'hd95_{r.lower()}']:>9.2f} {metrics[f'missed_{r.lower()}']:>7.0f}")
        lines.append("(MONAI DiceMetric / HausdorffDistanceMetric percentile 95, mean over cases; a region missed "
                     "entirely scores Dice 0 and HD95 the volume's diagonal; per case in cases_<split>.csv)")
        return "\n".join(lines)

    def plots(self, run_dir: Path, split: str) -> list[Path]:
        if not self.cases:
            return []
        paths = [write_case_csv(self.cases, self.per_case(), REGIONS, Path(run_dir) / f"cases_{split}.csv")]
        if self.example is not None:
            paths.append(plot_overlay(*self.example, REGIONS, Path(run_dir) / f"overlay_{split}.png", self.cases[0]))
        return paths

    # -- prediction ---------------------------------------------------------------------------
    def expand_input(self, path: Path) -> list[Path]:
        """A scan file, a zip of a DICOM series or a DICOM folder is ONE input; a folder of NIfTI files is many."""
        if path.is_dir():
            scans = sorted(p for p in path.rglob("*") if p.is_file() and is_nifti(p))
            return scans or [path]
        if not path.exists():
            raise DataError(f"input not found: {path}")
        return [path]

    def read_input(self, path: Path, *, series_uid: str | None = None) -> dict[str, Any]:
        """A .nii/.nii.gz file, a DICOM folder, a DICOM slice (its folder is read) or a zip of a series.

        ``series_uid``: the series to read where the folder or zip holds several (default: the largest)."""
        if str(path).lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"{path} is a 2D image; the segment3d model needs a 3D scan: a .nii/.nii.gz file, a "
                            "DICOM series folder or a .zip of one")
        volume = load_scan(path, series_uid)
        if min(volume.shape) < 2:
            raise DataError(f"{path} is a 2D image (shape {volume.shape}); the segment3d model needs a 3D scan "
                            "with several slices")
        return {"volume": volume, "source": str(path)}

    def _model_input(self, sample: dict[str, Any]) -> torch.Tensor:
        d, volume = self.cfg.data, sample["volume"]
        array = volume.array if volume.array.ndim == 4 else volume.array[..., None]
        if array.shape[3] != d.channels and d.modalities and array.shape[3] > max(d.modalities):
            array = array[..., list(d.modalities)]
        if array.shape[3] != d.channels:
            raise DataError(f"{sample['source']} has {array.shape[3]} channel(s); the model was trained on "
                            f"{d.channels} (e.g. T1, T1c, T2, FLAIR stacked as a 4D NIfTI (X, Y, Z, C))")
        return to_meta_tensor(array, volume.affine)

    def predict(self, model: nn.Module, samples: list[dict[str, Any]], *, overlap: float | None = None,
                progress: bool | Callable[[float], None] = True) -> list[Segment3DResult]:
        """Sliding-window segmentation of each scan; masks come back on the scan's own grid. ``overlap``: of the
        windows (fraction; default ``model.overlap``); ``progress``: show a bar with the ETA, or a callable given
        the fraction of the windows done after each model call."""
        m, results = self.cfg.model, []
        if overlap is not None and not 0 <= overlap < 1:
            raise ConfigError(f"overlap={overlap} must be in [0, 1): the fraction of a window its neighbours share")
        window = SlidingWindow(self.cfg.data.roi, m.overlap if overlap is None else overlap, m.sw_batch_size, progress)
        segment = ScanSegmenter(array_pipeline(self.spec()), window)
        model.eval()
        for sample in samples:
            if "volume" not in sample:
                raise DataError("segment3d predicts on scans: pass a .nii/.nii.gz path, a DICOM folder or a zip")
            with spreading(model):  # an ensemble also gives its members' disagreement
                values = segment.on_grid(self._model_input(sample), model, next(model.parameters()).device)
            probs, spread = split_spread(values, len(self.classes), dim=0)
            results.append(Segment3DResult(sample["source"], regions_to_labels((probs > segment.threshold).numpy()),
                                           sample["volume"], None if spread is None else spread.numpy()))
        return results

