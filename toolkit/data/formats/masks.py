"""Semantic-segmentation folders: images + masks holding one class index per pixel.

Layout (``val`` and ``test`` optional; without ``val`` a seeded share of train is held out)::

    root/classes.yaml                  optional: classes: [background, nucleus]  (or names:, or {0: a, 1: b})
                                                 ignore_index: 255               (optional)
    root/{train,val,test}/images/*.png|tif|jpg|dcm   gray or RGB, 8- or 16-bit; DICOM windowed by data.window
    root/{train,val,test}/masks/*.png|tif         same stem, same height x width, one channel

``root/images`` + ``root/masks`` without split folders is one pool split into train/val.
Masks are checked up front (size, channels, class ids) so a bad file fails before training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from toolkit.data.image_io import DICOM_SUFFIXES, IMAGE_SUFFIXES, image_size, pixel_limit
from toolkit.data.splits import Folds, apply_folds, take, val_holdout
from toolkit.errors import DataError

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")


@dataclass
class MaskSplits:
    """(image, mask) path pairs per split, class names (index = mask value), the ignore value, and notes on what
    was inferred (printed on a run's first lines)."""

    pairs: dict[str, list[tuple[Path, Path]]]
    classes: list[str]
    ignore_index: int
    notes: list[str] = field(default_factory=list)


def read_mask(path: Path) -> np.ndarray:
    """A mask file -> int64 (H, W) class indices. Palette PNGs give their indices, not colours. One over
    the pixel limit is refused from its header (``image_size``) before it is decoded."""
    if not path.is_file():
        raise DataError(f"mask not found: {path}")
    image_size(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        else:
            with pixel_limit(), Image.open(path) as img:  # the same decompression-bomb limit as images
                array = np.asarray(img)
    except Exception as e:  # PIL and tifffile raise many types for broken files
        raise DataError(f"{path}: not a readable mask ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: a mask must be one channel of integer class indices, got shape "
                        f"{array.shape} dtype {array.dtype}; save it as 8- or 16-bit grayscale PNG/TIFF "
                        "(an RGB colour mask must first be mapped to class indices)")
    return array.astype(np.int64)


def read_classes(path: Path) -> tuple[list[str] | None, int | None]:
    """``classes.yaml`` -> (names in index order, ignore index); (None, None) if there is none."""
    if not path.is_file():
        return None, None
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{path} is not valid YAML: {e}".splitlines()[0]) from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a mapping such as 'classes: [background, nucleus]'")
    ignore = content.pop("ignore_index", None)
    names = content.get("classes", content.get("names", content))
    if isinstance(names, dict):
        try:
            ids = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DataError(f"{path}: class ids must be integers (0: background, 1: ...)") from None
        if sorted(ids) != list(range(len(ids))):
            raise DataError(f"{path}: class ids {sorted(ids)} must be 0..{len(ids) - 1} without gaps")
        names = [ids[i] for i in range(len(ids))]
    if not isinstance(names, list) or not names:
        raise DataError(f"{path}: no class names found; write e.g. 'classes: [background, nucleus]'")
    if ignore is not None and not isinstance(ignore, int):
        raise DataError(f"{path}: ignore_index={ignore!r} must be an integer such as 255")
    return [str(n) for n in names], ignore


def pair_folder(split_dir: Path, masks: str = "masks") -> list[tuple[Path, Path]]:
    """Pair ``images/X.*`` with ``<masks>/X.*`` by stem; an unpaired file is an error."""
    images_dir, masks_dir = split_dir / "images", split_dir / masks
    if not masks_dir.is_dir():
        raise DataError(f"{split_dir} has images/ but no {masks}/ folder; put one mask per image in {masks_dir}")
    images = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES + DICOM_SUFFIXES}
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in MASK_SUFFIXES}
    if not images:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES + DICOM_SUFFIXES)}) in {images_dir}")
    for stem, image in images.items():
        if stem not in masks:
            raise DataError(f"{image} has no mask: add {masks_dir / (stem + '.png')} (same file stem) "
                            "or remove the image")
    for stem, mask in masks.items():
        if stem not in images:
            raise DataError(f"{mask} has no image: add {images_dir / stem}.png (same file stem) or remove the mask")
    return [(images[s], masks[s]) for s in sorted(images)]


def check_pair(image: Path, mask: Path, num_classes: int | None, ignore_index: int) -> set[int]:
    """Check sizes and class ids of one pair; return the class ids in the mask (``ignore_index`` left out)."""
    values = read_mask(mask)
    size = image_size(image)
    if tuple(values.shape) != tuple(size):
        raise DataError(f"{mask} is {values.shape[0]}x{values.shape[1]} (HxW) but its image {image} is "
                        f"{size[0]}x{size[1]}: masks must match their image pixel for pixel")
    ids = np.unique(values)
    ids = ids[ids != ignore_index]
    if len(ids) and ids.min() < 0:
        raise DataError(f"{mask} holds negative class id {ids.min()}; class ids are 0..N-1")
    top = int(ids.max()) if len(ids) else 0
    if num_classes is not None and top >= num_classes:
        raise DataError(f"{mask} holds class id {top} but there are {num_classes} classes (0..{num_classes - 1}, "
                        f"ignore {ignore_index}): fix the mask, list the class in classes.yaml, or set "
                        "ignore_index there")
    return {int(i) for i in ids}


def holdout_pairs(pairs: list[tuple[Path, Path]], fraction: float, seed: int) -> tuple[list, list]:
    """Seeded random split of ``pairs`` into (train, held out ``fraction``; 0 = none) by ``val_holdout``."""
    train, val = val_holdout(len(pairs), fraction, seed, optional=True)
    return take(pairs, train), take(pairs, val)


def load_mask_splits(root: str | Path, ignore_index: int = 255, val_split: float = 0.2, seed: int = 0,
                     splits: tuple[str, ...] = SPLITS, folds: Folds | None = None) -> MaskSplits:
    """Find, pair and check the splits under ``root``; ``classes.yaml`` overrides ``ignore_index``. ``folds``:
    the splits of one cross-validation fold (``splits.apply_folds``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"segmentation dataset not found: {root} (expected {root}/train/images and "
                        f"{root}/train/masks, or a built-in name such as 'nuclei')")
    names, ignore = read_classes(root / "classes.yaml")
    ignore_index = ignore_index if ignore is None else ignore
    pairs = apply_folds(_find_splits(root, 0.0), folds) if folds else _find_splits(root, val_split, seed)
    pairs = {s: p for s, p in pairs.items() if s in splits or s == "train"}
    num_classes = len(names) if names else None
    ids = sorted(set().union(*(check_pair(i, m, num_classes, ignore_index) for p in pairs.values() for i, m in p)))
    classes = names or [f"class{i}" for i in range(max(ids[-1] + 1 if ids else 0, 2))]
    notes = [] if names else [_inferred(root / "classes.yaml", ids, len(classes), ignore_index)]
    return MaskSplits({s: p for s, p in pairs.items() if s in splits}, classes, ignore_index, notes)


def _inferred(path: Path, ids: list[int], count: int, ignore_index: int) -> str:
    """The note on classes inferred from the mask values ``ids`` (without a ``classes.yaml`` at ``path``)."""
    shown = (", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")) or "none"
    note = (f"note: no {path}: {count} classes class0..class{count - 1} inferred from the mask values ({shown}; "
            f"ignore_index {ignore_index} left out)")
    if len(ids) < count:
        return (f"{note}; {count - len(ids)} of them occur in no mask: list the classes in that file, or set "
                "ignore_index there for a value that is no class")
    return f"{note}; name them in that file, e.g. classes: [background, nucleus]"


def _find_splits(root: Path, val_split: float, seed: int = 0) -> dict[str, list[tuple[Path, Path]]]:
    """The pairs of each split; ``val_split`` of train is held out as val when there is none (0: none)."""
    if (root / "images").is_dir():
        train, val = holdout_pairs(pair_folder(root), val_split, seed)
        return {"train": train, "val": val}
    if not (root / "train" / "images").is_dir():
        raise DataError(f"{root} has neither train/images/ nor images/: see the layout in the docs "
                        "(root/{train,val}/{images,masks}/)")
    found = {s: pair_folder(root / s) for s in SPLITS if (root / s / "images").is_dir()}
    if "val" not in found:
        found["train"], found["val"] = holdout_pairs(found["train"], val_split, seed)
    return found

