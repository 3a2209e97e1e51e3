"""The embedded brain-lesions dataset: the real MNI152 brain (from the nilearn wheel) with synthetic tumours.

Four MR-like channels (T1, T1c, T2, FLAIR) are derived from the MNI152 T1 and its grey/white matter maps;
lesions follow the BraTS labels (1 necrotic core, 2 oedema, 4 enhancing rim). Written MSD-style:
``dataset.json`` + ``imagesTr/*.nii.gz`` (X, Y, Z, 4) float32 + ``labelsTr/*.nii.gz`` (X, Y, Z) uint8."""
from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from toolkit.cache import fetch_wheel
from toolkit.medical.nifti import write_nifti

NILEARN = "nilearn==0.14.1"  # the wheel is only read as a zip, never imported
MNI_DIR = "nilearn/datasets/data/"
MNI_FILES = {k: f"{MNI_DIR}mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}
LABELS = {"0": "background", "1": "necrotic core", "2": "oedema", "4": "enhancing rim"}
GENERATOR_VERSION = 3  # bump when the generated cases change, so that old folders are rebuilt
MODALITIES = {"0": "T1", "1": "T1c", "2": "T2", "3": "FLAIR"}
# Channel levels (T1, T1c, T2, FLAIR) of CSF, grey matter, white matter and the three lesion compartments.
TISSUE_LEVELS = {"csf": (0.25, 0.25, 1.00, 0.12), "gm": (0.62, 0.62, 0.62, 0.66), "wm": (0.95, 0.95, 0.45, 0.50)}
# Oedema is bright in T2/FLAIR and the rim in T1c, as in real scans, but with bias and noise both overlap
# grey matter (and T2 oedema overlaps CSF): the best single threshold stays well below Dice 0.6
# (datasets/brain-lesions.md).
LESION_LEVELS = {1: (0.28, 0.28, 0.95, 0.38), 2: (0.57, 0.57, 0.85, 0.85), 4: (0.62, 1.20, 0.68, 0.72)}


def load_mni152(spacing_mm: float = 2.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """MNI152 2009a T1, GM, WM resampled to ``spacing_mm``, skull-stripped and cropped to the brain.

    Returns ({"t1", "gm", "wm", "csf", "brain"}: (X, Y, Z) float32 / bool, RAS affine)."""
    with zipfile.ZipFile(fetch_wheel(NILEARN)) as zf:
        images = {k: nib.Nifti1Image.from_bytes(gzip.decompress(zf.read(v))) for k, v in MNI_FILES.items()}
    affine = images["t1"].affine
    factor = spacing_mm / float(np.linalg.norm(affine[:3, 0]))
    shape = tuple(int((n - 1) // factor) + 1 for n in images["t1"].shape)
    maps = {k: ndimage.affine_transform(np.asarray(img.dataobj, np.float32), np.full(3, factor), order=1,
                                        output_shape=shape) for k, img in images.items()}
    affine = affine @ np.diag([factor, factor, factor, 1.0])
    for key in ("gm", "wm"):  # probabilities are stored as 0-255
        maps[key] = np.clip(maps[key] / 255.0, 0, 1)
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(maps["gm"] + maps["wm"] > 0.3, iterations=2))
    ranges = [np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != d))) for d in range(3)]
    box = tuple(slice(max(int(r[0]) - 2, 0), int(r[-1]) + 3) for r in ranges)
    affine[:3, 3] = affine[:3, :3] @ np.array([s.start for s in box]) + affine[:3, 3]
    maps = {k: v[box] for k, v in maps.items()}
    maps["brain"] = brain[box]
    maps["t1"] = maps["t1"] * maps["brain"] / np.percentile(maps["t1"][maps["brain"]], 99)
    maps["csf"] = np.clip(1 - maps["gm"] - maps["wm"], 0, 1) * maps["brain"]
    return maps, affine


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """Smooth random field in about [-1, 1]: a coarse random grid upsampled with cubic splines.

    Spline zoom is separable, so it runs one axis at a time as a (size, cells) matrix product: the same values
    as ``ndimage.zoom`` of the whole grid, about 50x faster."""
    field = rng.uniform(-1, 1, size=(cells,) * len(shape))
    for axis, size in enumerate(shape):
        basis = ndimage.zoom(np.eye(cells), (size / cells, 1), order=3, grid_mode=True, mode="nearest")[:size]
        field = np.moveaxis(np.tensordot(basis, field, axes=(1, axis)), 0, axis)
    return field.astype(np.float32)


def lesion_label(anatomy: dict, spacing_mm: float, rng: np.random.Generator) -> np.ndarray:
    """BraTS labels (X, Y, Z) uint8: one large lesion (radius 8-30 mm) and maybe a small one (2.5-8 mm)."""
    brain, wm = anatomy["brain"], anatomy["wm"]
    label = np.zeros(brain.shape, np.uint8)
    radii = [np.exp(rng.uniform(np.log(8), np.log(30)))]
    if rng.random() < 0.5:
        radii.append(rng.uniform(2.5, 8.0))
    candidates = np.argwhere(ndimage.binary_erosion(brain, iterations=4) & (wm > 0.5))
    grid = np.indices(brain.shape, dtype=np.float32)
    for radius in radii:
        centre = candidates[rng.integers(len(candidates))]
        axes = radius / spacing_mm * rng.uniform(0.75, 1.25, size=3)
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        offsets = np.tensordot(rotation, grid - centre[:, None, None, None], axes=1)
        dist = np.sqrt(sum((offsets[i] / axes[i]) ** 2 for i in range(3)))
        dist *= 1 + 0.3 * smooth_field(brain.shape, rng, cells=6)
        core = rng.uniform(0.4, 0.7)
        necrosis = core * rng.uniform(0.3, 0.7) if radius > 6 else 0.0
        oedema = (dist < 1) & brain & (anatomy["csf"] < 0.6)
        label[oedema & (label == 0)] = 2
        label[(dist < core) & brain] = 4
        label[(dist < necrosis) & brain] = 1
    return label


def render_channels(anatomy: dict, label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(X, Y, Z, 4) float32 T1/T1c/T2/FLAIR-like image: tissue mixture, lesions with partial-volume edges and
    texture, a smooth multiplicative bias field and Gaussian noise per channel; zero outside the brain."""
    tissue = {"csf": anatomy["csf"], "gm": anatomy["gm"], "wm": anatomy["wm"]}
    channels = []
    for c in range(4):
        image = sum(tissue[k] * TISSUE_LEVELS[k][c] * rng.uniform(0.93, 1.07) for k in tissue)
        if c < 2:  # keep the real T1 texture in the T1-like channels
            image = 0.5 * image + 0.5 * anatomy["t1"]
        for value, levels in LESION_LEVELS.items():
            weight = ndimage.gaussian_filter((label == value).astype(np.float32), 0.7)
            level = levels[c] * rng.uniform(0.9, 1.05) * (1 + 0.08 * smooth_field(label.shape, rng, cells=10))
            image = image * (1 - weight) + level * weight
        bias = np.exp(0.3 * smooth_field(label.shape, rng, cells=3))
        image = image * bias + rng.normal(0, rng.uniform(0.03, 0.06), size=label.shape)
        channels.append(np.where(anatomy["brain"], image, 0.0))
    return np.stack(channels, axis=-1).astype(np.float32)


def best_threshold_dice(image: np.ndarray, label: np.ndarray) -> float:
    """Best Dice of the whole tumour (label > 0) against any single threshold (above or below) on any one
    channel of ``image`` (X, Y, Z[, C]): how separable the lesions are by intensity alone."""
    target = (np.asarray(label) > 0).ravel()
    image = np.asarray(image)
    channels = image.reshape(-1, image.shape[-1]) if image.ndim == 4 else image.reshape(-1, 1)
    best = 0.0
    for values in channels.T:
        for ordered in (np.argsort(values, kind="stable"), np.argsort(-values, kind="stable")):
            hits = np.cumsum(target[ordered])  # true positives when the first n voxels are called lesion
            dice = 2 * hits / (np.arange(1, len(hits) + 1) + target.sum())
            best = max(best, float(dice.max()))
    return best


def make_case(anatomy: dict, spacing_mm: float, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One seeded case: image (X, Y, Z, 4) float32, label (X, Y, Z) uint8."""
    rng = np.random.default_rng([seed, index])
    label = lesion_label(anatomy, spacing_mm, rng)
    return render_channels(anatomy, label, rng), label


def prepare_brain_lesions(root: Path, n_train: int = 96, n_val: int = 16, spacing_mm: float = 2.0,
                          seed: int = 0) -> Path:
    """Build the dataset under ``root`` (skipped when complete with the same settings); returns ``root``."""
    root = Path(root)
    settings = {"n_train": n_train, "n_val": n_val, "spacing_mm": spacing_mm, "seed": seed,
                "version": GENERATOR_VERSION}
    if _is_complete(root, settings):
        return root
    anatomy, affine = load_mni152(spacing_mm)
    entries = []
    for index in tqdm(range(n_train + n_val), desc="brain-lesions cases", leave=False, mininterval=1.0):
        image, label = make_case(anatomy, spacing_mm, seed, index)
        name = f"lesions_{index:03d}.nii.gz"
        write_nifti(image, affine, root / "imagesTr" / name)
        write_nifti(label, affine, root / "labelsTr" / name)
        entries.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    _write_json(root / "dataset.json", _dataset_json(entries[:n_train], entries[n_train:], settings))
    return root


def _dataset_json(train: list, val: list, settings: dict) -> dict:
    return {
        "name": "brain-lesions", "tensorImageSize": "4D", "modality": MODALITIES, "labels": LABELS,
        "description": "MNI152 2009a brain (real) with SYNTHETIC tumour-like lesions (BraTS label values)",
        "reference": "ICBM 2009a nonlinear symmetric template via the nilearn wheel; see datasets/brain-lesions.md",
        "licence": "MNI152 template: permissive (keep the MNI copyright notice); derived lesions: MIT",
        "numTraining": len(train), "numValidation": len(val), "training": train, "validation": val,
        "test": [], "generator": settings,
    }


def _is_complete(root: Path, settings: dict) -> bool:
    try:
        meta = json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        return False
    files = [root / e[k] for e in meta.get("training", []) + meta.get("validation", []) for k in ("image", "label")]
    return meta.get("generator") == settings and all(f.is_file() for f in files)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
