"""Classification datasets from a built-in name, an ImageFolder tree or a CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from torch.utils.data import Dataset

from toolkit.data import builtin
from toolkit.data.arrays import load_arrays
from toolkit.data.formats.csv import is_csv, read_csv_dataset
from toolkit.data.formats.imagefolder import is_imagefolder, read_imagefolder
from toolkit.data.image_io import image_size, read_image, to_float
from toolkit.data.splits import Folds, fold_indices, holdout, take, val_holdout
from toolkit.errors import DataError

Reader = Callable[[Path, int], np.ndarray]
MAX_COMMON_SIDE = 640  # pixels: the most a computed common size (data.img_size=0, mixed sizes) may be


class ClassificationDataset(Dataset):
    """Samples ``{"image": float32 (H, W, C) in [0, 1] -> transform, "label": int, "index": int}``.

    ``items`` are file paths (read lazily) or one uint8/uint16 array (N, H, W[, C]) held in memory.
    """

    def __init__(self, items: Sequence[Path] | np.ndarray, labels: Sequence[int], channels: int,
                 transform: Callable[[dict], dict] | None = None, reader: Reader | None = None) -> None:
        self.items = items
        self.labels = np.asarray(labels, dtype=np.int64)
        self.channels = channels
        self.transform = transform
        self.reader = reader or (lambda path, ch: read_image(path, ch))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int] | None:
        """(H, W) shared by every image of an in-memory dataset; None for files (sizes may differ)."""
        return tuple(self.items.shape[1:3]) if isinstance(self.items, np.ndarray) else None

    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each image: the array's for an in-memory dataset, else from each file's header."""
        return [self.shape] * len(self) if self.shape else [image_size(path) for path in self.items]

    def image(self, i: int) -> np.ndarray:
        if isinstance(self.items, np.ndarray):
            array = self.items[i]
            return to_float(array[:, :, None] if array.ndim == 2 else array)
        return self.reader(self.items[i], self.channels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {"image": self.image(i), "label": int(self.labels[i]), "index": i}
        return self.transform(sample) if self.transform else sample


def load_splits(source: str, channels: int, val_split: float, seed: int, reader: Reader | None = None,
                limit: int = 0, folds: Folds | None = None) -> tuple[dict[str, ClassificationDataset], list[str]]:
    """Datasets (without transforms) for train/val[/test] and the class names.

    ``channels``: 0 = decide from the first training image (1 for gray, 3 for colour).
    Without a val split, ``val_split`` of train is held out (stratified, seeded); ``limit`` > 0
    keeps a stratified subset of that many training samples. ``folds``: the splits of one cross-validation fold
    instead (``splits.fold_indices``, stratified).
    """
    if source in builtin.DATASETS:
        raw, classes = _builtin(source)
    else:
        path = Path(source).expanduser()
        if is_imagefolder(path):
            raw, classes = read_imagefolder(path)
        elif is_csv(path):
            raw, classes = read_csv_dataset(path)
        else:
            raise DataError(f"data.source={source!r} is neither a built-in dataset "
                            f"({', '.join(builtin.names('classify'))}), "
                            "an ImageFolder root (with train/CLASS/*.png) nor a CSV (path,label)")
    if folds:
        raw = _folded(raw, folds)
    elif "val" not in raw:
        train, val = val_holdout(raw["train"][1], val_split, seed)
        raw["train"], raw["val"] = _subset(*raw["train"], train), _subset(*raw["train"], val)
    if 0 < limit < len(raw["train"][1]):
        raw["train"] = _subset(*raw["train"], holdout(raw["train"][1], limit / len(raw["train"][1]), seed)[1])
    first = raw["train"][0][0]
    if channels == 0:
        channels = _channels_of(first, reader)
    return {s: ClassificationDataset(items, labels, channels, reader=reader) for s, (items, labels) in raw.items()}, classes


def common_size(datasets: Iterable[ClassificationDataset]) -> tuple[int, str]:
    """For ``data.img_size=0``: (0, "") when every image has the same size, else (side, note): images of
    different sizes cannot share a batch, so all are resized to ``side`` x ``side`` px, the median of the
    images' longer sides (at most ``MAX_COMMON_SIDE``). The median keeps the typical image near its own
    resolution: the largest size would upsample most images (and cost memory and time for a few outliers),
    the smallest would throw detail away."""
    sizes = [size for ds in datasets for size in ds.sizes()]
    if len(set(sizes)) <= 1:
        return 0, ""
    side = min(MAX_COMMON_SIDE, round(float(np.median([max(size) for size in sizes]))))
    low, high = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
    return side, (f"data.img_size=0: the images come in {len(set(sizes))} sizes ({low[0]}x{low[1]} to "
                  f"{high[0]}x{high[1]} px, HxW), which cannot share a batch; all are resized to {side}x{side} px, "
                  f"the median longer side (at most {MAX_COMMON_SIDE}); set data.img_size=N to choose the size")


def _builtin(name: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """({split: (images uint8 (N, H, W[, C]), labels (N,))}, classes) of a built-in array dataset."""
    if name not in builtin.names("classify"):
        raise DataError(f"data.source={name!r} is a built-in dataset for {', '.join(builtin.BUILTIN[name][1])}; "
                        f"the classification ones are {', '.join(builtin.names('classify'))}")
    arrays = load_arrays(builtin.prepare(name))
    raw = {"train": (arrays["x_train"], arrays["y_train"]), "test": (arrays["x_test"], arrays["y_test"])}
    return raw, [str(c) for c in arrays["classes"]]


def _folded(raw: dict[str, tuple[Any, Any]], folds: Folds) -> dict[str, tuple[Any, np.ndarray]]:
    """The splits of fold ``folds.fold``, stratified by label (``fold_indices``)."""
    parts = [raw[s] for s in ("train", "val", "test") if s in raw]
    items = np.concatenate([p[0] for p in parts]) if isinstance(parts[0][0], np.ndarray) else \
        [x for p in parts for x in p[0]]
    labels = np.concatenate([np.asarray(p[1]) for p in parts])
    found = fold_indices({s: len(p[1]) for s, p in raw.items()}, folds, labels)
    return {s: _subset(items, labels, idx) for s, idx in found.items()}


def _subset(items: Any, labels: Any, indices: np.ndarray) -> tuple[Any, np.ndarray]:
    return take(items, indices), np.asarray(labels)[indices]


def _channels_of(first: Any, reader: Reader | None) -> int:
    if isinstance(first, np.ndarray):
        return 1 if first.ndim == 2 else first.shape[-1]
    image = (reader or (lambda p, c: read_image(p, c)))(first, 0)
    return image.shape[2]
