"""NIfTI in and out with nibabel, keeping the affine (RAS+ mm) exactly."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from toolkit.errors import DataError
from toolkit.medical.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path: str | Path) -> Volume:
    """Read .nii / .nii.gz -> Volume with float32 array (X, Y, Z[, C]) and the file's affine (sform/qform)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"NIfTI file not found: {path}")
    try:
        img = nib.load(str(path))
        array = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as e:  # nibabel raises many types for broken files
        raise DataError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if array.ndim == 5 and array.shape[3] == 1:  # (X, Y, Z, 1, C) as some tools write vectors
        array = array[:, :, :, 0]
    if array.ndim not in (3, 4):
        raise DataError(f"{path}: expected a 3D or 4D (X, Y, Z, C) image, got shape {array.shape}")
    return Volume(array, np.asarray(img.affine, dtype=np.float64), meta={"modality": "NIfTI"})


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str | Path, dtype=None) -> Path:
    """Write (X, Y, Z[, C]) with ``affine`` as both sform and qform (code 1, scanner)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return path


def write_mask_nifti(mask: np.ndarray, reference: Volume, path: str | Path) -> Path:
    """Write an integer mask (X, Y, Z) as uint8 NIfTI on the reference scan's grid (same affine)."""
    if tuple(mask.shape) != reference.shape:
        raise DataError(f"mask shape {tuple(mask.shape)} does not match the scan {reference.shape}; resample the "
                        "prediction back to the input grid first")
    return write_nifti(np.asarray(mask).astype(np.uint8), reference.affine, path)
