"""ONNX files exported by the toolkit, run by onnxruntime in place of the PyTorch model they came from.

The file's ``metadata_props`` carry everything a prediction needs (all strings; JSON where structured):
``toolkit.format``, ``task``, ``classes``, ``config`` (the resolved run config: input size, normalisation,
windowing, tiling and sliding-window settings), ``toolkit_version``, ``checkpoint_sha256`` (of the ``.pt`` it
came from), ``graph_sha256`` (of the graph: a changed file is refused), ``io`` (``tensor`` | ``detections`` |
``instances``)
and ``parity`` (the figures checked at export). ``restore(path)`` rebuilds (task, model, classes) from the file
alone, so the task's own pre-processing, tiling, sliding windows and test-time views run around the session as
they run around the PyTorch model."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.engine.distributed import pick_device
from toolkit.errors import CheckpointError, ConfigError

FORMAT = 1
BACKENDS = ("auto", "torch", "onnx")
REQUIRED = ("toolkit.format", "task", "classes", "config", "graph_sha256", "io")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_sha256(model: Any) -> str:
    """SHA-256 of an ``onnx.ModelProto``'s graph (operators and weights; not the metadata)."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


class OnnxModel(nn.Module):
    """An onnxruntime session (CPU) called like the PyTorch model it was exported from.

    ``io="tensor"`` (classify, segment, segment3d): ``forward(x: Tensor[B, C, ...]) -> Tensor`` (logits).
    ``io="detections"``: ``forward(images: list[Tensor[3, H, W] in [0, 1]]) -> [{"boxes": (N, 4) xyxy pixels,
    "scores": (N,), "labels": (N,)}]``, one session call per image; ``io="instances"`` adds ``"masks"`` (N, 1, H, W)
    probabilities. The session runs on ``torch.get_num_threads()`` threads at creation. A zero-size parameter tells
    code that asks a model for its device (``next(model.parameters()).device``) that inputs go to the CPU."""

    def __init__(self, model_bytes: bytes, io: str, source: str = "") -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many threads as PyTorch would use
        try:
            self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{source}: onnxruntime cannot run it ({_first_line(e)})") from None
        self.io, self.source = io, source
        self.input_name = self.session.get_inputs()[0].name
        self.device_marker = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: Any) -> Any:
        if self.io in ("detections", "instances"):
            return [self._detect(image) for image in x]
        (out,) = self.session.run(None, {self.input_name: _numpy(x)})
        return torch.from_numpy(out)

    def _detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        boxes, scores, labels, *masks = self.session.run(None, {self.input_name: _numpy(image)})
        found = {"boxes": torch.from_numpy(boxes), "scores": torch.from_numpy(scores),
                 "labels": torch.from_numpy(labels).long()}
        return {**found, "masks": torch.from_numpy(masks[0])} if masks else found


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def read(path: str | Path) -> tuple[dict[str, Any], OnnxModel]:
    """(metadata with JSON values decoded, model) of a toolkit ONNX file; a foreign, damaged or changed file is a
    CheckpointError naming it."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file not found: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends
        raise CheckpointError(f"{path} is not a readable ONNX file ({_first_line(e)})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise CheckpointError(f"{path} was not exported by this toolkit (no {', '.join(missing)} metadata); "
                              "export a checkpoint with `toolkit export CKPT`")
    if int(meta["toolkit.format"]) > FORMAT:
        raise CheckpointError(f"{path} has toolkit ONNX format {meta['toolkit.format']}; this toolkit reads up "
                              f"to {FORMAT}: upgrade the toolkit")
    if graph_sha256(proto) != meta["graph_sha256"]:
        raise CheckpointError(f"{path} was changed after export (its graph does not match graph_sha256); export "
                              "the checkpoint again")
    try:
        decoded = {**meta, **{k: json.loads(meta[k]) for k in ("classes", "config", "parity") if k in meta}}
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} has damaged metadata ({e.msg}); export the checkpoint again") from None
    return decoded, OnnxModel(proto.SerializeToString(), meta["io"], str(path))


def restore(path: str | Path, overrides: list[str] | None = None) -> tuple[Any, OnnxModel, list[str]]:
    """(task, model, classes) of a toolkit ONNX file, like ``checkpoint.restore`` of a ``.pt``."""
    from toolkit.engine.checkpoint import build_task

    meta, model = read(path)
    task = build_task(meta["config"], overrides)
    task.classes = list(meta["classes"])
    return task, model.eval(), list(meta["classes"])


def beside(checkpoint: str | Path) -> Path | None:
    """``<checkpoint stem>.onnx`` in the checkpoint's folder when it was exported from this very checkpoint
    (its ``checkpoint_sha256`` matches), else None."""
    candidate = Path(checkpoint).with_suffix(".onnx")
    if not candidate.is_file():
        return None
    import onnx  # here: its import takes 0.5 s

    try:
        meta = {p.key: p.value for p in onnx.load(str(candidate), load_external_data=False).metadata_props}
    except Exception:  # an unreadable neighbour is simply not a match
        return None
    return candidate if meta.get("checkpoint_sha256") == sha256_file(checkpoint) else None


def choose(path: str | Path, backend: str = "auto", device: str = "auto") -> Path | None:
    """The ONNX file to run for ``path`` with ``backend``, or None for PyTorch.

    ``onnx``: ``path`` itself if it is a ``.onnx`` file, else the matching export beside the checkpoint
    (``beside``). ``torch``: None (a ``.onnx`` path is an error). ``auto``: a ``.onnx`` path, or a matching
    export beside the checkpoint when the model would run on the CPU."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; valid: {', '.join(BACKENDS)}")
    path = Path(path)
    is_onnx = path.suffix.lower() == ".onnx"
    if backend == "torch":
        if is_onnx:
            raise ConfigError(f"{path} is an ONNX file, which runs on onnxruntime; give its .pt checkpoint for "
                              "the torch backend, or use --backend onnx")
        return None
    if backend == "onnx" and device not in ("auto", "cpu"):
        raise ConfigError(f"the onnx backend runs on the CPU; drop --device {device} or use --backend torch")
    if is_onnx:
        return path
    if backend == "auto" and pick_device(device).type != "cpu":
        return None
    found = beside(path) if path.is_file() else None
    if found is None and backend == "onnx":
        stale = " (the one there was exported from another checkpoint)" if path.with_suffix(".onnx").is_file() else ""
        raise ConfigError(f"no ONNX export of {path} beside it{stale}; run `toolkit export {path}` first")
    return found
