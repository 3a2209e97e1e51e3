"""What the pages need besides widgets, on the toolkit's public API only: trained runs, images decoded from upload
bytes, filtered detections as table / PNG / JSON, segmentation volumes, and the bundled samples as uploads.

Runs are looked up under ``$TOOLKIT_RUNS`` (default ``runs``) as ``<task>/<name>/weights/best.pt``."""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolkit import sample_input
from toolkit.errors import ConfigError, DataError
from toolkit.medical import sample_file
from toolkit.predict import IMAGE_SUFFIXES, Predictor, pixel_size_um, read_image

RUNS_ENV = "TOOLKIT_RUNS"
MAX_PIXELS = 64_000_000  # larger uploads are refused before decoding (decompression bombs)


# -- models -----------------------------------------------------------------------------------------
def runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV, "runs"))


def find_checkpoints(task: str | tuple[str, ...], root: str | Path | None = None) -> list[Path]:
    """``<root>/<task>/*/weights/best.pt`` and cross-validation runs ``<root>/<task>/*`` (their folds predict as an
    ensemble) of one task or several, newest first (``root``: ``runs_dir()``)."""
    root = Path(root or runs_dir())
    found: list[Path] = []
    for name in (task,) if isinstance(task, str) else task:
        found += {p.parent.parent.parent for p in root.glob(f"{name}/*/fold*/weights/best.pt")}
        found += root.glob(f"{name}/*/weights/best.pt")
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def run_label(path: Path) -> str:
    """How the model picker names a checkpoint (by its run) or a cross-validation run."""
    if path.is_dir():
        return f"{path} (ensemble of {len(list(path.glob('fold*/weights/best.pt')))} folds)"
    return str(path.parent.parent)


def check_task(predictor: Predictor, task: str | tuple[str, ...]) -> Predictor:
    tasks = (task,) if isinstance(task, str) else task
    if predictor.task_name not in tasks:
        wanted = " or ".join(f"'{t}'" for t in tasks)
        raise ConfigError(f"{predictor.source} is a '{predictor.task_name}' checkpoint; this app needs a {wanted} one")
    return predictor


# -- detection --------------------------------------------------------------------------------------
def decode_image(name: str, data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Uploaded bytes -> float32 (H, W, 3) in [0, 1] (gray repeated, alpha dropped); DataError naming ``name``.

    The pixel count is checked from the header before decoding. The reader takes a path, so the bytes go to a
    scratch file in RAM that is deleted at once."""
    suffix = Path(name).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(f"{name}: not an image file ({suffix or 'no extension'}); upload PNG, JPEG, TIFF, BMP or WebP")
    if not data:
        raise DataError(f"{name}: the file is empty")
    from toolkit.medical.uploads import scratch_dir

    _check_pixels(name, data, max_pixels)
    with scratch_dir(len(data)) as tmp:
        path = tmp / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_image(path, 3)
        except DataError as e:
            raise DataError(str(e).replace(str(path), name)) from None


def _check_pixels(name: str, data: bytes, max_pixels: int) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        width = height = math.inf
    except (UnidentifiedImageError, OSError, ValueError):
        return  # not a PIL image: the reader names the problem
    if width * height > max_pixels:
        raise DataError(f"{name}: image is too large ({width} x {height} pixels; the app takes up to "
                        f"{max_pixels / 1e6:.0f} megapixels); downscale or crop it first")


def filter_result(result: Any, conf: float, classes: list[str] | None = None) -> Any:
    """The detections (or instances) with score >= ``conf`` (and class in ``classes``, all when empty or None)."""
    keep = result.scores >= conf
    if classes:
        keep &= np.isin(np.asarray(result.labels), [result.classes.index(c) for c in classes])
    if is_instances(result):
        return result.select(keep)
    return dataclasses.replace(result, boxes=result.boxes[keep], scores=result.scores[keep], labels=result.labels[keep])


def is_instances(result: Any) -> bool:
    """Whether ``result`` holds one mask per object (an instance model's) rather than boxes."""
    return hasattr(result, "label_image")


def count(result: Any) -> int:
    """Objects in a detection or instance result."""
    return len(result.scores)


def detection_rows(result: Any) -> list[dict[str, Any]]:
    """One row per detection: class, score, x1, y1, x2, y2 (original pixels)."""
    return [{"class": d["class"], "score": d["score"], **dict(zip(("x1", "y1", "x2", "y2"), d["box"]))}
            for d in result.to_dict()["detections"]]


def class_counts(result: Any) -> dict[str, int]:
    names, counts = np.unique([result.classes[int(i)] for i in result.labels], return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def annotated_png(result: Any) -> bytes:
    """The image with its boxes (class colours, captions up to 50 boxes) as PNG bytes at native size."""
    from toolkit.viz import save_annotated

    buffer = io.BytesIO()
    save_annotated(result.image, {"boxes": result.boxes, "labels": result.labels, "scores": result.scores},
                   result.classes, buffer)
    return buffer.getvalue()


def area_histogram_png(result: Any) -> bytes:
    """The histogram of the objects' areas (µm² when the image gives its pixel size, else pixels) as PNG bytes."""
    from toolkit.viz.instance import plot_area_histogram

    areas, unit = result.areas()
    return figure_png(lambda out: plot_area_histogram(areas, out, unit))


def figure_png(draw: Callable[[Any], Any]) -> bytes:
    """The PNG bytes a figure function writes with ``draw(buffer)`` (e.g. ``toolkit.viz.heatmap.plot_heatmap``)."""
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def result_json(result: Any) -> bytes:
    return json.dumps(result.to_dict(), indent=2).encode()


def nuclei_sample() -> tuple[str, bytes]:
    """The real 512 x 512 fluorescence image of the built-in ``nuclei`` data as (name, PNG bytes)."""
    return "nuclei.png", sample_input("nuclei").read_bytes()


# -- medical ----------------------------------------------------------------------------------------
def region_volumes(result: Any) -> list[dict[str, Any]]:
    """Rows of (region, meaning, mL) for TC, WT, ET and the BraTS labels of a 3D segmentation result."""
    from toolkit.medical.transforms import REGION_NAMES

    record = result.to_dict()
    rows = [{"region": r, "what": REGION_NAMES[r], "volume (mL)": record[f"{r.lower()}_ml"]} for r in REGION_NAMES]
    return rows + [{"region": "label", "what": name, "volume (mL)": round(ml, 3)}
                   for name, ml in record["labels_ml"].items()]


def brain_dicom_study() -> list[Path]:
    """The ``brain-dicom`` sample's slice files (T1, T1c, T2, FLAIR series), series after series."""
    return sorted(sample_input("brain-dicom").glob("*/*.dcm"))


MEDICAL_SAMPLES: dict[str, Callable[[], list[Path]]] = {
    "Brain MR study: T1, T1c, T2, FLAIR DICOM series (MNI152 + synthetic lesion)": brain_dicom_study,
    "Brain MR volume: 4-channel NIfTI (the same case)": lambda: [sample_input("brain")],
    "CT slice (pydicom CT_small.dcm)": lambda: [sample_file("CT_small.dcm")],
    "MR slice (pydicom MR_small.dcm)": lambda: [sample_file("MR_small.dcm")],
}


def read_files(paths: list[Path]) -> list[tuple[str, bytes]]:
    """Files as (name, bytes), the shape of an upload; names keep the parent folder (one series per folder)."""
    return [(f"{p.parent.name}/{p.name}", p.read_bytes()) for p in paths]
