"""MONAI dictionary pipelines for 3D tumour segmentation, and BraTS label conversion to TC/WT/ET channels.

Samples are ``{"image": MetaTensor (C, X, Y, Z), "label": MetaTensor (3, X, Y, Z)}`` after the pipeline; the
label channels are tumour core (TC), whole tumour (WT) and enhancing tumour (ET), which overlap.
Label conventions: BraTS (1 necrotic/non-enhancing core, 2 oedema, 4 enhancing) and the Medical Segmentation
Decathlon's Task01_BrainTumour (1 oedema, 2 non-enhancing, 3 enhancing), mapped onto BraTS first."""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    ConvertToMultiChannelBasedOnBratsClassesd,
    DeleteItemsd,
    EnsureChannelFirstd,
    EnsureTyped,
    FgBgToIndicesd,
    LoadImaged,
    MapLabelValued,
    MapTransform,
    NormalizeIntensityd,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Spacingd,
    SpatialPadd,
)

from toolkit.errors import ConfigError


REGIONS = ("TC", "WT", "ET")
REGION_NAMES = {"TC": "tumour core", "WT": "whole tumour", "ET": "enhancing tumour"}
LABEL_SCHEMES = ("auto", "brats", "msd")
MSD_TO_BRATS = {1: 2, 2: 1, 3: 4}  # Task01: 1 oedema, 2 non-enhancing, 3 enhancing -> BraTS 2, 1, 4


@dataclass
class PipelineSpec:
    """What the pipelines need: ``roi`` crop (voxels), ``spacing`` (mm; empty = keep), label ``scheme``."""

    roi: tuple[int, int, int] = (64, 64, 64)
    spacing: tuple[float, ...] = ()
    modalities: tuple[int, ...] = ()  # image channels to keep; () = all
    scheme: str = "brats"
    num_samples: int = 2
    pos: float = 1.0
    neg: float = 1.0
    flip: float = 0.5
    scale: float = 0.1
    shift: float = 0.1


class SeededCompose(Compose):
    """``Compose`` with the ``set_seed`` hook the toolkit's loaders call once per epoch."""

    def set_seed(self, seed: int) -> None:
        self.set_random_state(seed=seed)


class SelectChannelsd(MapTransform):
    """Keep the listed channels of each key (C, X, Y, Z), e.g. ``[3]``: FLAIR only."""

    def __init__(self, keys: str | tuple[str, ...], channels: tuple[int, ...]) -> None:
        super().__init__(keys)
        self.channels = list(channels)

    def __call__(self, data: dict) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = d[key][self.channels]
        return d


def label_scheme(labels: dict[str, str], requested: str = "auto") -> str:
    """"brats" or "msd" from a dataset.json ``labels`` mapping (auto: value 4 present -> BraTS, 3 -> MSD)."""
    if requested not in LABEL_SCHEMES:
        raise ConfigError(f"data.labels={requested!r} is unknown; valid: {', '.join(LABEL_SCHEMES)}")
    if requested != "auto":
        return requested
    values = {int(k) for k in labels}
    if 4 in values:
        return "brats"
    if 3 in values:
        return "msd"
    raise ConfigError(f"dataset labels {labels} are neither BraTS (1, 2, 4) nor MSD Task01 (1, 2, 3); set "
                      "data.labels=brats or data.labels=msd")


def label_to_regions(scheme: str) -> list:
    """Transforms: integer ``label`` (1, X, Y, Z) -> float TC/WT/ET channels (3, X, Y, Z)."""
    steps: list = []
    if scheme == "msd":
        steps.append(MapLabelValued("label", list(MSD_TO_BRATS), list(MSD_TO_BRATS.values())))
    return steps + [ConvertToMultiChannelBasedOnBratsClassesd("label"), EnsureTyped("label", dtype=torch.float32)]


def geometry(keys: tuple[str, ...], spacing: tuple[float, ...]) -> list:
    """RAS orientation and, if ``spacing`` is given, resampling (trilinear image, nearest label)."""
    steps: list = [Orientationd(keys, axcodes="RAS", labels=None)]
    if spacing:
        modes = ["bilinear" if k == "image" else "nearest" for k in keys]
        steps.append(Spacingd(keys, pixdim=tuple(spacing), mode=modes))
    return steps


@contextmanager
def _quiet_decoder_probe() -> Iterator[None]:
    """Building LoadImage probes for MONAI's CUDA DICOM decoder (a warning and a log line); without one that is
    noise, not news. Silenced inside the block only: warnings filters and the logger's level are restored."""
    logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
            yield
    finally:
        logger.setLevel(level)


def base_transforms(spec: PipelineSpec, with_label: bool = True, train: bool = False) -> list:
    """Deterministic part (cacheable): load NIfTI paths, channel first, RAS, spacing, labels, z-score of the
    non-zero (brain) voxels. ``train`` also pads to the roi and indexes lesion / brain-background voxels."""
    keys = ("image", "label") if with_label else ("image",)
    with _quiet_decoder_probe():
        steps: list = [LoadImaged(keys, reader="NibabelReader", image_only=True), EnsureChannelFirstd(keys)]
    if spec.modalities:
        steps.append(SelectChannelsd("image", spec.modalities))
    steps += geometry(keys, spec.spacing)
    if with_label:
        steps += label_to_regions(spec.scheme)
    if train:
        steps += [SpatialPadd(keys, spatial_size=spec.roi),
                  FgBgToIndicesd("label", image_key="image", image_threshold=0.0)]
    return steps + [NormalizeIntensityd("image", nonzero=True, channel_wise=True),
                    EnsureTyped("image", dtype=torch.float32)]


def random_transforms(spec: PipelineSpec) -> list:
    """Random part: crops centred on lesion / brain-background voxels (indexed by ``base_transforms``), flips,
    intensity jitter."""
    keys = ("image", "label")
    steps: list = [RandCropByPosNegLabeld(keys, label_key="label", spatial_size=spec.roi, pos=spec.pos,
                                          neg=spec.neg, num_samples=spec.num_samples,
                                          fg_indices_key="label_fg_indices", bg_indices_key="label_bg_indices",
                                          allow_smaller=True),
                   DeleteItemsd(("label_fg_indices", "label_bg_indices"))]
    if spec.flip:
        steps += [RandFlipd(keys, prob=spec.flip, spatial_axis=axis) for axis in range(3)]
    if spec.scale:
        steps.append(RandScaleIntensityd("image", factors=spec.scale, prob=1.0))
    if spec.shift:
        steps.append(RandShiftIntensityd("image", offsets=spec.shift, prob=1.0))
    return steps


def train_pipeline(spec: PipelineSpec) -> SeededCompose:
    """Training pipeline; a ``CacheDataset`` caches its deterministic head (up to the first random step)."""
    return SeededCompose(base_transforms(spec, train=True) + random_transforms(spec))


def eval_pipeline(spec: PipelineSpec, with_label: bool = True) -> Compose:
    """Whole volumes, deterministic: what validation and prediction see."""
    return Compose(base_transforms(spec, with_label))


def array_pipeline(spec: PipelineSpec) -> Compose:
    """Prediction pipeline for an in-memory scan ``{"image": MetaTensor (C, X, Y, Z) with affine}``;
    invertible, so that outputs go back to the input grid (``Invertd``)."""
    return Compose(geometry(("image",), spec.spacing) + [NormalizeIntensityd("image", nonzero=True, channel_wise=True),
                                                         EnsureTyped("image", dtype=torch.float32)])


def to_meta_tensor(array: np.ndarray, affine: np.ndarray) -> MetaTensor:
    """(X, Y, Z) or (X, Y, Z, C) array + RAS affine -> channel-first MetaTensor (C, X, Y, Z)."""
    array = np.asarray(array, dtype=np.float32)
    channels_first = array[None] if array.ndim == 3 else np.moveaxis(array, -1, 0)
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(channels_first)),
                      affine=torch.as_tensor(affine, dtype=torch.float64))


def regions_to_labels(regions: np.ndarray | torch.Tensor) -> np.ndarray:
    """Binary TC/WT/ET channels (3, X, Y, Z) -> BraTS labels (X, Y, Z) uint8: 2 oedema, 1 core, 4 enhancing."""
    tc, wt, et = (np.asarray(r, dtype=bool) for r in regions)
    labels = np.zeros(wt.shape, np.uint8)
    labels[wt] = 2
    labels[tc] = 1
    labels[et] = 4
    return labels
