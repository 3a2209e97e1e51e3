"""Safe file I/O for torch files: atomic writes (temp file + ``os.replace``) and weights-only reads.

The only module that calls ``torch.load``; backbones, heads and the engine all read through it.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from toolkit.errors import CheckpointError


def atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` with ``torch.save`` so that a killed process never leaves a half-written ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_torch_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` to CPU; unsafe or corrupt files raise ``CheckpointError``."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise CheckpointError(f"{path} holds pickled objects that are not plain tensors/data and "
                              f"is refused for safety ({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}); "
                              "use another checkpoint, e.g. weights/best.pt") from None


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A plain ``state_dict`` from ``.pth``/``.pt`` (weights only; a toolkit checkpoint gives its
    ``model``) or ``.safetensors``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not path.is_file():
            raise CheckpointError(f"weights file not found: {path}")
        return load_file(str(path))
    state = load_torch_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state_dict")
    return state
