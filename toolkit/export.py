"""ONNX export with a parity check against PyTorch, and an onnxruntime-backed Predictor.

The ONNX file carries the checkpoint's resolved config and class names as metadata, so
``load_onnx_predictor(path)`` needs no other argument, like ``Predictor.from_checkpoint``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.errors import ConfigError, ToolkitError
from toolkit.predict import Predictor

EXPORTABLE = ("classify", "segment")


def export_onnx(ckpt_path: str | Path, out: str | Path | None = None, size: int = 0, opset: int = 17,
                atol: float = 1e-4) -> tuple[Path, float]:
    """Export ``ckpt_path`` to ONNX with dynamic batch, height and width.

    ``size``: side of the example input in pixels (0 = the run's img_size, else 64).
    Returns the file and the max |onnx - torch| on a random input; raises if it exceeds ``atol``.
    """
    predictor = Predictor.from_checkpoint(ckpt_path, device="cpu")
    task = predictor.task
    if task.name not in EXPORTABLE:
        raise ConfigError(f"ONNX export supports tasks {', '.join(EXPORTABLE)}; '{task.name}' is not supported yet")
    out = Path(out) if out else Path(ckpt_path).with_suffix(".onnx")
    side = size or getattr(task.cfg.data, "img_size", 0) or 64
    example = torch.randn(2, task.channels, side, side)
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(predictor.model, (example,), str(out), dynamo=False, opset_version=opset,
                      input_names=["image"], output_names=["output"],
                      dynamic_axes={"image": axes, "output": axes if task.name == "segment" else {0: "batch"}})
    _add_metadata(out, {"config": json.dumps(task.cfg.to_dict()), "classes": json.dumps(predictor.classes)})
    with torch.no_grad():
        expected = predictor.model(example).numpy()
    got = OnnxModule(out)(example).numpy()
    error = float(np.abs(got - expected).max())
    if error > atol:
        out.unlink()
        raise ToolkitError(f"ONNX output differs from PyTorch by {error:.2e} (> {atol}); export refused")
    return out, error


def _add_metadata(path: Path, items: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in items.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


class OnnxModule(nn.Module):
    """Calls an onnxruntime session like a model: ``forward(x: Tensor) -> Tensor`` on the CPU."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ToolkitError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:160]})") from None
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # gives the Predictor a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(None, {"image": x.detach().cpu().numpy().astype(np.float32)})
        return torch.from_numpy(out)


def load_onnx_predictor(path: str | Path) -> Predictor:
    """A Predictor whose model is the ONNX file run by onnxruntime; same ``predict`` API."""
    module = OnnxModule(path)
    if "config" not in module.metadata:
        raise ToolkitError(f"{path} was not exported by this toolkit (no config metadata)")
    saved: dict[str, Any] = json.loads(module.metadata["config"])
    return Predictor.from_config(saved, json.loads(module.metadata["classes"]), module, str(path))
