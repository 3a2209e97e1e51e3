"""Toolkit checkpoints: the required keys, the format version, and loading weights into the model they describe.

Files are written and read through ``toolkit.safe_io`` (atomic writes, ``weights_only=True`` reads)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from toolkit import config as config_mod
from toolkit.engine.distributed import pick_device
from toolkit.errors import CheckpointError
from toolkit.safe_io import atomic_save, load_torch_file
from toolkit.tasks import task_class

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model", "config", "classes")


def save(obj: dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically: a killed run never leaves a half-written file."""
    atomic_save(obj, path)


def load(path: str | Path) -> dict[str, Any]:
    """Read a toolkit checkpoint; tensors go to CPU. Anything but plain data is refused."""
    ckpt = load_torch_file(Path(path))
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a toolkit checkpoint (missing {', '.join(missing)})")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format {ckpt['format_version']}; this toolkit reads up to "
                              f"{FORMAT_VERSION}: upgrade the toolkit")
    return ckpt


def load_model_state(model: torch.nn.Module, ckpt: dict[str, Any], path: str | Path) -> None:
    """Load a checkpoint's weights (EMA ones when present) into the model it describes."""
    try:
        model.load_state_dict(ckpt.get("ema") or ckpt["model"])
    except RuntimeError as e:
        detail = str(e).splitlines()[1].strip()[:200] if "\n" in str(e) else str(e)[:200]
        raise CheckpointError(f"{path} does not fit the model its config describes (written by toolkit "
                              f"{ckpt.get('toolkit_version', '?')}): {detail}") from None


def build_task(config: dict[str, Any], overrides: list[str] | None = None) -> Any:
    """The task of a saved, resolved ``config`` (a checkpoint's or an ONNX file's), ``a.b=c`` ``overrides`` on top."""
    cls = task_class(config["task"])
    return cls(config_mod.build(config["task"], cls.DataConfig, cls.ModelConfig,
                                [config, config_mod.parse_overrides(list(overrides or []))]))


def restore(path: str | Path, device: str = "auto", overrides: list[str] | None = None, backend: str = "auto"
            ) -> tuple[Any, torch.nn.Module, list[str]]:
    """(task, model, classes) of a checkpoint: the model its config describes with its weights, in eval mode on
    ``device`` (auto: cuda > mps > cpu). The one way a file becomes a model (``Predictor``, ``toolkit val``).

    ``backend``: ``torch``; ``onnx`` (a ``.onnx`` file, or the export beside the checkpoint, on onnxruntime);
    ``auto``: onnx for a ``.onnx`` path, or on the CPU when an export of this checkpoint sits beside it."""
    from toolkit.engine import onnx_runtime

    exported = onnx_runtime.choose(path, backend, device)
    if exported is not None:
        return onnx_runtime.restore(exported, overrides)
    ckpt = load(path)
    task = build_task(ckpt["config"], overrides)
    classes = list(ckpt["classes"])
    model = task.build_model(classes, pretrained=False)
    load_model_state(model, ckpt, path)
    return task, model.to(pick_device(device)).eval(), classes
