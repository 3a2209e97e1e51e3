"""Slices of a volume for display: closest-RAS orientation, axial/coronal/sagittal planes in radiological view
(patient right on the image left, anterior/superior up, sagittal faces left), windowing to 8-bit grey, TC/WT/ET
mask overlays and the physical aspect ratio of the voxels."""
from __future__ import annotations

import nibabel as nib
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from nibabel import orientations
from PIL import Image

from toolkit.medical import Volume, apply_window
from toolkit.medical.volume import spacing_of
from toolkit.viz.segment3d import REGION_COLOURS

PLANES = ("axial", "coronal", "sagittal")
AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}  # RAS array axis each plane cuts across
# BraTS label sets drawn outer to inner: whole tumour (1, 2, 4), tumour core (1, 4), enhancing tumour (4)
REGION_LABELS = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
REGION_RGB = {r: tuple(255 * v for v in to_rgb(c)) for r, c in zip(("TC", "WT", "ET"), REGION_COLOURS)}


def orientation(affine: np.ndarray) -> str:
    """Axis codes of the voxel axes, e.g. "LPS" or "RAS" (the direction each index increases towards)."""
    return "".join(nib.aff2axcodes(affine))


def to_ras(volume: Volume) -> Volume:
    """The same voxels with axes permuted/flipped to the closest RAS+ order (affine updated; no resampling)."""
    ornt = orientations.io_orientation(volume.affine)
    array = orientations.apply_orientation(volume.array, ornt)
    affine = volume.affine @ orientations.inv_ornt_aff(ornt, volume.array.shape[:3])
    return Volume(array, affine, volume.sources, volume.meta)


def mask_to_ras(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A mask (X, Y, Z) on the scan's own grid, reordered like ``to_ras`` reorders the scan."""
    return orientations.apply_orientation(mask, orientations.io_orientation(affine))


def cut(array: np.ndarray, plane: str, index: int) -> np.ndarray:
    """Slice ``index`` of a RAS array (X, Y, Z) as a display image (rows, cols): see the module docstring."""
    section = np.take(array, index, axis=AXIS[plane])
    return section.T[::-1, ::-1]


def pixel_mm(affine: np.ndarray, plane: str) -> tuple[float, float]:
    """(row height, column width) in mm of the display image of ``plane``."""
    sx, sy, sz = spacing_of(affine)
    return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]


def render(image: np.ndarray, window: tuple[float, float], mask: np.ndarray | None = None, opacity: float = 0.5,
           pixel: tuple[float, float] = (1.0, 1.0), size: int = 512,
           marker: tuple[int, int] | None = None, heat: np.ndarray | None = None) -> np.ndarray:
    """A display image (rows, cols) in physical units -> uint8 RGB (H, W, 3), longest side ``size`` px.

    ``window`` (centre, width); ``mask`` (rows, cols) BraTS labels blended at ``opacity`` in the region colours;
    ``heat`` (rows, cols) in [0, 1] (e.g. an uncertainty map) blended in the ``inferno`` colours at ``opacity``
    times its value; ``pixel`` (row, col) size in mm sets the aspect; ``marker`` (row, col) draws a crosshair."""
    scale = max(1.0, 256.0 / window[1])  # DICOM's linear window wants width >= 1: scale small-range data (MR in
    grey = apply_window(image * scale, (window[0] * scale, window[1] * scale))  # [0, 1]) to 256+ levels first
    grey = (grey * 255).round().astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
    if mask is not None:
        for region, values in REGION_LABELS.items():
            hit = np.isin(mask, values)
            rgb[hit] = (1 - opacity) * rgb[hit] + opacity * np.asarray(REGION_RGB[region], np.float32)
    if heat is not None:
        alpha = opacity * np.clip(heat, 0, 1)[..., None]
        rgb = (1 - alpha) * rgb + alpha * 255 * colormaps["inferno"](np.clip(heat, 0, 1))[..., :3]
    rows, cols = image.shape
    height, width = rows * pixel[0], cols * pixel[1]
    scale = size / max(height, width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    out = np.asarray(Image.fromarray(rgb.round().astype(np.uint8)).resize(shape, Image.BILINEAR))
    if marker is not None:
        out = _crosshair(out.copy(), (marker[0] + 0.5) * out.shape[0] / rows, (marker[1] + 0.5) * out.shape[1] / cols)
    return out


def _crosshair(rgb: np.ndarray, y: float, x: float, arm: int = 8) -> np.ndarray:
    """Green crosshair (gap in the middle, so the probed pixel stays visible) centred at (y, x)."""
    h, w = rgb.shape[:2]
    r, c = int(min(max(y, 0), h - 1)), int(min(max(x, 0), w - 1))
    green = np.array([0, 255, 0], np.uint8)
    rgb[r, max(c - arm, 0):max(c - 2, 0)] = green
    rgb[r, min(c + 3, w):min(c + arm + 1, w)] = green
    rgb[max(r - arm, 0):max(r - 2, 0), c] = green
    rgb[min(r + 3, h):min(r + arm + 1, h), c] = green
    return rgb


def planes_for(shape: tuple[int, ...]) -> list[str]:
    """The planes whose display image has more than one row and column for a RAS array of ``shape``."""
    return [p for p in PLANES if all(shape[a] > 1 for a in range(3) if a != AXIS[p])]


def voxel_at(shape: tuple[int, ...], plane: str, index: int, row: int, col: int) -> tuple[int, int, int]:
    """RAS array index (i, j, k) shown at (row, col) of ``cut(array, plane, index)``."""
    a0, a1 = (a for a in range(3) if a != AXIS[plane])
    voxel = [0, 0, 0]
    voxel[AXIS[plane]], voxel[a0], voxel[a1] = index, shape[a0] - 1 - col, shape[a1] - 1 - row
    return tuple(voxel)
