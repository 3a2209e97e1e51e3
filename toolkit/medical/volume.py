"""A 3D scan in world space: voxel array + affine (RAS+ millimetres), the shape nibabel and MONAI use."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from toolkit.errors import DataError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """``array`` (X, Y, Z) or (X, Y, Z, C) in physical units (HU for CT); ``affine`` (4, 4) maps voxel
    indices (i, j, k) to RAS+ mm. ``sources`` lists the DICOM files (sorted like axis k) when the scan
    came from a DICOM series, else is empty. ``meta`` holds non-identifying facts (modality, series UID)."""

    array: np.ndarray
    affine: np.ndarray
    sources: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        return spacing_of(self.affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape (X, Y, Z)."""
        return tuple(self.array.shape[:3])


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size (mm) along each array axis: the lengths of the affine's first three columns."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def lesion_volumes_ml(mask: np.ndarray, affine: np.ndarray, labels: dict[int, str]) -> dict[str, float]:
    """Volume in mL of each label in an integer mask (X, Y, Z), from the voxel size."""
    voxel_ml = float(np.prod(spacing_of(affine))) / 1000.0
    return {name: float((mask == value).sum()) * voxel_ml for value, name in labels.items()}


def slice_spacing(positions: np.ndarray, name: str, tolerance: float = 0.01) -> float:
    """Mean spacing (mm) of sorted slice positions along the normal. DataError if a slice is missing (a gap
    over 1.5x the median); a warning if gaps vary by more than ``tolerance`` (relative)."""
    gaps = np.diff(positions)
    typical = float(np.median(gaps))
    missing = np.flatnonzero(gaps > 1.5 * typical)
    if missing.size:
        i = int(missing[0])
        raise DataError(f"{name}: {missing.size} gap(s) in the series, e.g. {gaps[i]:.2f} mm between slices at "
                        f"{positions[i]:.2f} and {positions[i + 1]:.2f} mm (spacing {typical:.2f} mm): slices are "
                        "missing; export the complete series")
    if np.max(np.abs(gaps - typical)) > tolerance * typical:
        error = np.max(np.abs(positions - positions[0] - gaps.mean() * np.arange(len(positions))))
        warnings.warn(f"{name}: uneven slice spacing {gaps.min():.3f}-{gaps.max():.3f} mm; the volume uses the "
                      f"mean {gaps.mean():.3f} mm, so positions are off by up to {error:.2f} mm", stacklevel=4)
    return float((positions[-1] - positions[0]) / (len(positions) - 1))


def quantise_uint16(volume: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(slope, intercept, stored uint16) with volume ~= stored * slope + intercept; exact for integer volumes."""
    lo, hi = float(volume.min()), float(volume.max())
    is_integer = np.all(volume == np.round(volume)) and hi - lo <= 65535
    slope = 1.0 if is_integer or hi == lo else (hi - lo) / 65535.0
    return slope, lo, np.round((volume - lo) / slope).astype(np.uint16)
