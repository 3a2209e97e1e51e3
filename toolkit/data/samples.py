"""Sample inputs to try the models and the apps on, as ``skimage.data``: each is written once under
``<cache>/samples/`` from a built-in dataset and returned as a path.

- ``nuclei``: the 512 x 512 fluorescence image of the built-in ``nuclei`` data (PNG, uint8 gray).
- ``brain``: the first validation case of the built-in ``brain-lesions`` data (NIfTI, 4 channels).
- ``fashion-mnist``, ``digits``: a folder with the first test image of each class as a PNG (``0_T-shirt-top.png``).
- ``brain-dicom``: the same case as one DICOM MR series per channel (values x 1000, integers): a folder holding
  ``<c>_<channel>/`` series folders, e.g. ``0_T1/``, ``3_FLAIR/``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.cache import cache_dir
from toolkit.errors import ConfigError


def sample_input(name: str) -> Path:
    """The path of sample ``name`` (see the module docstring), written on first use."""
    if name not in SAMPLES:
        raise ConfigError(f"unknown sample '{name}'; valid: {', '.join(SAMPLES)}")
    return SAMPLES[name]()


def nuclei_png() -> Path:
    """The real 512 x 512 fluorescence image of the built-in ``nuclei`` data (stardist wheel) as a PNG."""
    from PIL import Image

    from toolkit.cache import fetch_wheel
    from toolkit.data import nuclei

    out = cache_dir() / "samples" / "nuclei.png"
    if not out.is_file():
        image, _ = nuclei.read_source(fetch_wheel(nuclei.REQUIREMENT))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.png")
        Image.fromarray(image).save(tmp)
        os.replace(tmp, out)
    return out


def brain_case() -> tuple[Path, list[str]]:
    """(NIfTI path, channel names) of the first validation case of the built-in ``brain-lesions`` data, which is
    prepared when absent (a prepared copy is used as it is, whatever its settings)."""
    from toolkit.data import builtin

    root = builtin.data_dir("brain-lesions")
    if not (root / "dataset.json").is_file():
        root = builtin.prepare("brain-lesions")
    meta = json.loads((root / "dataset.json").read_text())
    case = (meta.get("validation") or meta["training"])[0]["image"]
    return root / case, [meta["modality"][k] for k in sorted(meta["modality"], key=int)]


def brain_dicom() -> Path:
    """``brain_case()`` written as one DICOM MR series per channel, once per version of the case file."""
    from toolkit.medical import read_nifti, write_dicom_series

    case, names = brain_case()
    stat = case.stat()
    key = hashlib.sha1(f"{case}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    out = cache_dir() / "samples" / f"brain-dicom-{key}"
    if not (out / "complete").is_file():
        volume = read_nifti(case)
        for c, name in enumerate(names):
            write_dicom_series(np.round(volume.array[..., c] * 1000), volume.affine, out / f"{c}_{name}",
                               modality="MR", series_description=name)
        (out / "complete").write_text("")
    return out


def array_images(name: str) -> Path:
    """A folder of PNGs, the first test image of each class of the built-in array dataset ``name``
    (``fashion-mnist``, ``digits``), named ``<label>_<class>.png``; prepared when absent."""
    from PIL import Image

    from toolkit.data import builtin
    from toolkit.data.arrays import load_arrays

    out = cache_dir() / "samples" / name
    if not (out / "complete").is_file():
        arrays = load_arrays(builtin.prepare(name))
        out.mkdir(parents=True, exist_ok=True)
        for label, cls in enumerate(arrays["classes"].tolist()):
            image = arrays["x_test"][int(np.flatnonzero(arrays["y_test"] == label)[0])]
            Image.fromarray(image).save(out / f"{label}_{str(cls).replace('/', '-')}.png")
        (out / "complete").write_text("")
    return out


SAMPLES: dict[str, Callable[[], Path]] = {
    "fashion-mnist": lambda: array_images("fashion-mnist"),
    "digits": lambda: array_images("digits"),
    "nuclei": nuclei_png,
    "brain": lambda: brain_case()[0],
    "brain-dicom": brain_dicom,
}
