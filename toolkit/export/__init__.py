"""``export_onnx(checkpoint)``: the checkpoint's network as an ONNX file that predicts without PyTorch's model code,
written only after parity with PyTorch on the run's own val inputs (``parity``).

The file carries the task, classes, resolved config (input size, normalisation, windowing, tiling and
sliding-window settings), toolkit version, the checkpoint's SHA-256 and the parity figures as metadata
(``engine/onnx_runtime.py`` reads them back), so ``toolkit predict model.onnx``, ``toolkit val model.onnx`` and
``Predictor.from_checkpoint("model.onnx")`` need nothing else. Graphs per task: ``graphs``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toolkit._version import __version__
from toolkit.engine import checkpoint, onnx_runtime
from toolkit.errors import ToolkitError
from toolkit.export import graphs, parity
from toolkit.safe_io import atomic_write_bytes

__all__ = ["Exported", "export_onnx"]


class ParityError(ToolkitError):
    """The exported graph does not predict like the PyTorch model; the export is refused."""


@dataclass
class Exported:
    path: Path
    task: str
    parity: parity.Parity


def export_onnx(ckpt_path: str | Path, out: str | Path | None = None, overrides: list[str] | None = None,
                opset: int = graphs.OPSET, limit: int = 0) -> Exported:
    """Export ``ckpt_path`` to ``out`` (default: beside it, ``.onnx``) after checking parity on up to ``limit``
    val inputs (0: ``parity.CAPS``). ``overrides``: ``a.b=c`` over the saved config, e.g. ``data=PATH`` when the
    run's data has moved. A failed parity check raises ``ParityError`` with the figures and writes nothing."""
    ckpt_path = Path(ckpt_path)
    task, model, classes = checkpoint.restore(ckpt_path, "cpu", overrides, backend="torch")
    dataset, collate = parity.val_inputs(task, limit)
    proto, io = graphs.export_graph(task.name, model, parity.example_input(task, model, dataset), opset)
    graph_hash = onnx_runtime.graph_sha256(proto)
    check = parity.check(task, model, onnx_runtime.OnnxModel(proto.SerializeToString(), io, "the export"),
                         dataset, collate)
    if check.failure:
        raise ParityError(f"export refused: the ONNX graph differs from PyTorch on {check.failure}")
    graphs.set_metadata(proto, {
        "toolkit.format": str(onnx_runtime.FORMAT), "task": task.name, "classes": json.dumps(classes),
        "config": json.dumps(task.cfg.to_dict()), "toolkit_version": __version__,
        "checkpoint_sha256": onnx_runtime.sha256_file(ckpt_path), "graph_sha256": graph_hash, "io": io,
        "parity": json.dumps(check.figures)})
    path = Path(out) if out else ckpt_path.with_suffix(".onnx")
    atomic_write_bytes(proto.SerializeToString(), path)
    return Exported(path, task.name, check)
