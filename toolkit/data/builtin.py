"""The table of built-in datasets, and the one place that fills ``DATASETS``: ``toolkit data list|prepare``
and every task read it through this module. ``toolkit data prepare NAME`` puts NAME under ``data_dir(NAME)``.

Locations: ``$TOOLKIT_DATA/<name>`` (default ``~/.cache/toolkit/data/<name>``); downloaded source
archives go to ``$TOOLKIT_CACHE/sources`` (default ``~/.cache/toolkit/sources``). Each preparer,
``prepare(root) -> root``, is idempotent and imported on first use (``Registry.register_lazy``).
"""
from __future__ import annotations

import os
from pathlib import Path

from toolkit.cache import cache_dir
from toolkit.registry import DATASETS

BUILTIN = {  # name: (preparer, the tasks that train on it)
    "fashion-mnist": ("toolkit.data.arrays:prepare_fashion_mnist", ("classify",)),  # 70k 28x28 gray, 10 classes
    "digits": ("toolkit.data.arrays:prepare_digits", ("classify",)),  # scikit-learn's 1,797 8x8 digits
    "nuclei": ("toolkit.data.nuclei:prepare_nuclei", ("detect", "segment", "instance")),  # fluorescence nuclei
    "brain-lesions": ("toolkit.medical.synthetic:prepare_brain_lesions", ("segment3d",)),  # MNI152 + lesions, MSD
}
for _name, (_target, _) in BUILTIN.items():
    DATASETS.register_lazy(_name, _target)


def names(task: str | None = None) -> list[str]:
    """The built-in datasets (those ``task`` trains on, if given), sorted."""
    return sorted(n for n, (_, tasks) in BUILTIN.items() if task is None or task in tasks)


def data_dir(name: str) -> Path:
    root = os.environ.get("TOOLKIT_DATA")
    return Path(root) / name if root else cache_dir() / "data" / name


def prepare(name: str) -> Path:
    """Prepare a built-in dataset (idempotent) and return its directory."""
    return DATASETS.get(name)(data_dir(name))
