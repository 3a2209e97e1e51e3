"""ImageFolder layout: ``root/{train,val[,test]}/CLASS/*.png`` -> file lists per split."""
from __future__ import annotations

from pathlib import Path

from toolkit.data.image_io import DICOM_SUFFIXES, IMAGE_SUFFIXES
from toolkit.errors import DataError

SPLITS = ("train", "val", "test")


def is_imagefolder(path: Path) -> bool:
    return path.is_dir() and (path / "train").is_dir()


def read_imagefolder(root: Path) -> tuple[dict[str, tuple[list[Path], list[int]]], list[str]]:
    """Return ``{split: (files, labels)}`` and the class names (sorted folder names of train/)."""
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root / 'train'} has no class folders; expected train/CLASS/*.png")
    splits = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            continue
        extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in classes)
        if extra:
            raise DataError(f"{folder} has class folders not in train/: {', '.join(extra)}")
        files, labels = [], []
        for index, name in enumerate(classes):
            found = _images_in(folder / name)
            if not found and split == "train":
                raise DataError(f"class folder {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)}); "
                                "add images or remove the folder")
            files += found
            labels += [index] * len(found)
        splits[split] = (files, labels)
    return splits, classes


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    suffixes = IMAGE_SUFFIXES + DICOM_SUFFIXES
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and not p.name.startswith("."))
