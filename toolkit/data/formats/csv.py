"""CSV layout: rows of ``path,label[,split]`` (paths relative to the CSV), or ``train.csv``/``val.csv``."""
from __future__ import annotations

import csv
from pathlib import Path

from toolkit.errors import DataError

SPLITS = ("train", "val", "test")


def is_csv(path: Path) -> bool:
    return (path.is_file() and path.suffix.lower() == ".csv") or (path.is_dir() and (path / "train.csv").is_file())


def read_csv_dataset(path: Path) -> tuple[dict[str, tuple[list[Path], list[int]]], list[str]]:
    """Return ``{split: (files, labels)}`` and the class names (sorted unique labels)."""
    rows: dict[str, list[tuple[Path, str]]] = {}
    if path.is_dir():
        for split in SPLITS:
            if (path / f"{split}.csv").is_file():
                rows[split] = [(p, label) for p, label, _ in _read_rows(path / f"{split}.csv")]
    else:
        for file, label, split in _read_rows(path):
            rows.setdefault(split or "train", []).append((file, label))
    if "train" not in rows or not rows["train"]:
        raise DataError(f"{path}: no training rows; give a 'split' column or a train.csv")
    classes = sorted({label for items in rows.values() for _, label in items}, key=_natural)
    index = {name: i for i, name in enumerate(classes)}
    return {s: ([p for p, _ in items], [index[lab] for _, lab in items]) for s, items in rows.items()}, classes


def _read_rows(csv_path: Path) -> list[tuple[Path, str, str]]:
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "path" not in fields or "label" not in fields:
            raise DataError(f"{csv_path}: header must name 'path' and 'label' columns (found {fields})")
        out = []
        for line, row in enumerate(reader, start=2):
            file = (csv_path.parent / row["path"]).resolve()
            if not file.is_file():
                raise DataError(f"{csv_path}:{line}: image file not found: {row['path']}")
            label = (row["label"] or "").strip()
            if not label:
                raise DataError(f"{csv_path}:{line}: empty label for {row['path']}")
            split = (row.get("split") or "").strip()
            if split and split not in SPLITS:
                raise DataError(f"{csv_path}:{line}: split {split!r} must be one of {', '.join(SPLITS)}")
            out.append((file, label, split))
    return out


def _natural(label: str) -> tuple[int, str]:
    return (0, f"{int(label):012d}") if label.isdigit() else (1, label)
