"""Checkpoints: atomic writes (temp file + ``os.replace``) and safe reads (``weights_only=True``).

The only module that calls ``torch.load``.
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

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model", "config", "classes")


def save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` atomically: a killed run never leaves a half-written file."""
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


def load(path: str | Path) -> dict[str, Any]:
    """Read a toolkit checkpoint; tensors go to CPU. Anything but plain data is refused."""
    ckpt = _safe_load(Path(path))
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a toolkit checkpoint (missing {', '.join(missing)})")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format {ckpt['format_version']}; this toolkit reads up to "
                              f"{FORMAT_VERSION}: upgrade the toolkit")
    return ckpt


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A plain ``state_dict`` from ``.pth``/``.pt`` (weights only) or ``.safetensors``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not path.is_file():
            raise CheckpointError(f"weights file not found: {path}")
        return load_file(str(path))
    state = _safe_load(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state_dict")
    return state


def _safe_load(path: Path) -> Any:
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


def load_model_state(model: torch.nn.Module, ckpt: dict[str, Any], path: str | Path) -> None:
    """Load a checkpoint's weights (EMA ones when present) into the model it describes."""
    try:
        model.load_state_dict(ckpt.get("ema") or ckpt["model"])
    except RuntimeError as e:
        detail = str(e).splitlines()[1].strip()[:200] if "\n" in str(e) else str(e)[:200]
        raise CheckpointError(f"{path} does not fit the model its config describes (written by toolkit "
                              f"{ckpt.get('toolkit_version', '?')}): {detail}") from None
