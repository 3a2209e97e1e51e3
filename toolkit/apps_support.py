"""What the Streamlit apps need besides widgets: trained runs and the COCO detector, images decoded from upload
bytes, filtered detections as table / PNG / JSON, bundled samples, and 3D segmentation reporting its progress.

Runs are looked up under ``$TOOLKIT_RUNS`` (default ``runs``) as ``<task>/<name>/weights/best.pt``."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch import nn

from toolkit.cache import cache_dir
from toolkit.data.image_io import IMAGE_SUFFIXES, read_image
from toolkit.errors import ConfigError, DataError
from toolkit.medical.io import sample_file
from toolkit.predict import Predictor

RUNS_ENV = "TOOLKIT_RUNS"
MAX_PIXELS = 64_000_000  # larger uploads are refused before decoding (decompression bombs)
COCO_MODEL = "fasterrcnn_resnet50_fpn"
COCO_SIZE = 800  # longest image side the COCO detector sees, as torchvision's default min_size


# -- models -----------------------------------------------------------------------------------------
def runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV, "runs"))


def find_checkpoints(task: str, root: str | Path | None = None) -> list[Path]:
    """``<root>/<task>/*/weights/best.pt``, newest first (``root``: ``runs_dir()``)."""
    root = Path(root or runs_dir())
    return sorted(root.glob(f"{task}/*/weights/best.pt"), key=lambda p: p.stat().st_mtime, reverse=True)


def coco_weights_file() -> Path | None:
    """torchvision's COCO Faster R-CNN weights in the torch cache, or None when they are not there."""
    from toolkit.backbones import weights as tv_weights

    path = tv_weights.cache_file(tv_weights.resolve(COCO_MODEL))
    return path if path.is_file() else None


def coco_predictor() -> Predictor:
    """torchvision's COCO-trained Faster R-CNN (ResNet-50 FPN, 80 classes + 'N/A' slots) as a detect Predictor."""
    import torchvision

    from toolkit import config as config_mod
    from toolkit.engine.checkpoint import load_state_dict_file
    from toolkit.heads.detection import PREDICTOR_KEYS
    from toolkit.tasks.detect import DetectData, DetectModel, DetectTask

    cfg = config_mod.build("detect", DetectData, DetectModel, [{
        "data": {"source": "coco", "img_size": COCO_SIZE},
        "model": {"arch": "fasterrcnn", "backbone": "resnet50", "weights": "coco", "score_thresh": 0.05}}])
    classes = list(torchvision.models.get_model_weights(COCO_MODEL).DEFAULT.meta["categories"][1:])
    task = DetectTask(cfg)
    model = task.build_model(classes, pretrained=True)  # everything but the box predictor
    path = coco_weights_file()
    head = {k: v for k, v in load_state_dict_file(path).items() if k.startswith(PREDICTOR_KEYS)}
    model.model.load_state_dict(head, strict=False)
    return Predictor(task, model.eval(), classes, f"torchvision {COCO_MODEL} (COCO)")


def check_task(predictor: Predictor, task: str) -> Predictor:
    if predictor.task_name != task:
        raise ConfigError(f"{predictor.source} is a '{predictor.task_name}' checkpoint; this app needs a '{task}' one")
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
    """The detections with score >= ``conf`` (and class in ``classes``, all when empty or None)."""
    keep = result.scores >= conf
    if classes:
        keep &= np.isin(np.asarray(result.labels), [result.classes.index(c) for c in classes])
    return dataclasses.replace(result, boxes=result.boxes[keep], scores=result.scores[keep], labels=result.labels[keep])


def detection_rows(result: Any) -> list[dict[str, Any]]:
    """One row per detection: class, score, x1, y1, x2, y2 (original pixels)."""
    return [{"class": d["class"], "score": d["score"], **dict(zip(("x1", "y1", "x2", "y2"), d["box"]))}
            for d in result.to_dict()["detections"]]


def class_counts(result: Any) -> dict[str, int]:
    names, counts = np.unique([result.classes[int(i)] for i in result.labels], return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def annotated_png(result: Any) -> bytes:
    """The image with its boxes (class colours, captions up to 50 boxes) as PNG bytes at native size."""
    from toolkit.viz_detect import save_annotated

    buffer = io.BytesIO()
    save_annotated(result.image, {"boxes": result.boxes, "labels": result.labels, "scores": result.scores},
                   result.classes, buffer)
    return buffer.getvalue()


def result_json(result: Any) -> bytes:
    return json.dumps(result.to_dict(), indent=2).encode()


def nuclei_sample() -> tuple[str, bytes]:
    """The real 512 x 512 fluorescence image of the built-in ``nuclei`` data (stardist wheel) as PNG bytes."""
    from PIL import Image

    from toolkit.cache import fetch_wheel
    from toolkit.data import nuclei

    image, _ = nuclei.read_source(fetch_wheel(nuclei.REQUIREMENT))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "nuclei.png", buffer.getvalue()


# -- medical ----------------------------------------------------------------------------------------
def model_channels(predictor: Predictor) -> int:
    """Input channels a segment3d model was trained on (e.g. 4: T1, T1c, T2, FLAIR)."""
    return int(predictor.task.cfg.data.channels or 1)


class _Reporting(nn.Module):
    """The model, calling ``report(fraction done)`` after each batch of sliding windows."""

    def __init__(self, model: nn.Module, total: int, report: Callable[[float], None]) -> None:
        super().__init__()
        self.model, self.total, self.report, self.done = model, max(total, 1), report, 0

    def forward(self, x: Any) -> Any:
        out = self.model(x)
        self.done += 1
        self.report(min(self.done / self.total, 1.0))
        return out


def window_batches(volume: Any, predictor: Predictor) -> int:
    """How many model calls MONAI's sliding window makes on ``volume`` (RAS order, resampled, padded to roi)."""
    from monai.data.utils import dense_patch_slices
    from nibabel.orientations import io_orientation

    d, m = predictor.task.cfg.data, predictor.task.cfg.model
    shape, spacing = [0] * 3, [0.0] * 3
    for axis, (target, _) in enumerate(io_orientation(volume.affine)):
        shape[int(target)], spacing[int(target)] = volume.shape[axis], volume.spacing[axis]
    size = [n * s / t for n, s, t in zip(shape, spacing, d.spacing)] if d.spacing else shape
    size = [max(round(n), r) for n, r in zip(size, d.roi)]
    interval = [r if r == n else max(int(r * (1 - m.overlap)), 1) for r, n in zip(d.roi, size)]
    return math.ceil(len(dense_patch_slices(size, d.roi, interval)) / m.sw_batch_size)


def segment_volume(predictor: Predictor, volume: Any, source: str = "scan",
                   report: Callable[[float], None] | None = None) -> Any:
    """Tumour segmentation of an in-memory Volume -> Segment3DResult (BraTS label mask on the volume's grid)."""
    check_task(predictor, "segment3d")
    if min(volume.shape) < 2:
        raise DataError(f"{source} is a 2D image (shape {volume.shape}); the tumour model needs a 3D scan with "
                        "several slices")
    model = predictor.model if report is None else _Reporting(predictor.model, window_batches(volume, predictor),
                                                              report)
    (result,) = predictor.task.predict(model, [{"volume": volume, "source": source}], progress=False)
    return result


def region_volumes(result: Any) -> list[dict[str, Any]]:
    """Rows of (region, meaning, mL) for TC, WT, ET and the BraTS labels of a Segment3DResult."""
    from toolkit.medical.transforms import REGION_NAMES

    record = result.to_dict()
    rows = [{"region": r, "what": REGION_NAMES[r], "volume (mL)": record[f"{r.lower()}_ml"]} for r in REGION_NAMES]
    return rows + [{"region": "label", "what": name, "volume (mL)": round(ml, 3)}
                   for name, ml in record["labels_ml"].items()]


def brain_case() -> tuple[Path, list[str]]:
    """(NIfTI path, channel names) of the first validation case of the built-in ``brain-lesions`` data."""
    from toolkit.data import builtin

    root = builtin.data_dir("brain-lesions")
    if not (root / "dataset.json").is_file():
        import toolkit.data.datasets  # noqa: F401  (registers the built-in datasets)

        root = builtin.prepare("brain-lesions")
    meta = json.loads((root / "dataset.json").read_text())
    case = (meta.get("validation") or meta["training"])[0]["image"]
    return root / case, [meta["modality"][k] for k in sorted(meta["modality"], key=int)]


def brain_dicom_study() -> list[Path]:
    """``brain_case()`` written as one DICOM MR series per channel (T1, T1c, T2, FLAIR; values x 1000, integers)
    under ``<cache>/apps/``, once; returns the slice files, series after series."""
    from toolkit.medical import read_nifti, write_dicom_series

    case, names = brain_case()
    stat = case.stat()
    key = hashlib.sha1(f"{case}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    out = cache_dir() / "apps" / f"brain-dicom-{key}"
    if not (out / "complete").is_file():
        volume = read_nifti(case)
        for c, name in enumerate(names):
            write_dicom_series(np.round(volume.array[..., c] * 1000), volume.affine, out / f"{c}_{name}",
                               modality="MR", series_description=name)
        (out / "complete").write_text("")
    return sorted(out.glob("*/*.dcm"))


MEDICAL_SAMPLES: dict[str, Callable[[], list[Path]]] = {
    "Brain MR study: T1, T1c, T2, FLAIR DICOM series (MNI152 + synthetic lesion)": brain_dicom_study,
    "Brain MR volume: 4-channel NIfTI (the same case)": lambda: [brain_case()[0]],
    "CT slice (pydicom CT_small.dcm)": lambda: [sample_file("CT_small.dcm")],
    "MR slice (pydicom MR_small.dcm)": lambda: [sample_file("MR_small.dcm")],
}


def read_files(paths: list[Path]) -> list[tuple[str, bytes]]:
    """Files as (name, bytes), the shape of an upload; names keep the parent folder (one series per folder)."""
    return [(f"{p.parent.name}/{p.name}", p.read_bytes()) for p in paths]
