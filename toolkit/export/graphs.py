"""Each task's network as an ONNX graph (``torch.onnx.export``, TorchScript tracing) with dynamic sizes.

What the graph holds and what stays outside it (in the task's own code, shared with PyTorch):

- classify: ``image`` (B, C, H, W) normalised -> ``logits`` (B, K); B, H, W dynamic. Resize and normalisation
  are the task's pipeline (config in the file's metadata).
- segment: ``image`` (B, C, H, W) -> ``logits`` (B, K, H, W); B, H, W dynamic (the model pads to its stride:
  traced on a size that needs padding, so the pad amounts stay computed from the input's shape).
- detect: ``image`` (3, H, W) in [0, 1] -> ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,), ``labels`` (N,) in
  0..K-1: torchvision's normalisation, anchors, box decoding and NMS are in the graph. H, W dynamic for Faster
  R-CNN, RetinaNet and FCOS; the toolkit resizes images to ``data.img_size`` before the model (as in PyTorch, where
  torchvision's own resize is then a no-op), so the graph leaves that resize out and runs at the size it is given.
  SSDlite keeps its resize to a fixed ``min_size`` square in the graph: any input size, squashed to that square.
- instance: as detect, plus ``masks`` (N, 1, H, W) probabilities pasted into the image (torchvision's ONNX paste
  loop); thresholding, tiling and the merge across tiles are the task's code around the session.
- segment3d: ``image`` (B, C, *roi) -> ``logits`` (B, K, *roi); B dynamic. Sliding windows, Gaussian blending
  and resampling to the scan's grid are the task's MONAI code around the session.
"""
from __future__ import annotations

import copy
import io
import types
import warnings
from typing import Any

import torch
from torch import nn

from toolkit.errors import ToolkitError

OPSET = 17


class DetectionGraph(nn.Module):
    """A toolkit ``Detector`` as ``forward(image: (3, H, W)) -> (boxes, scores, labels[, masks])`` for one image;
    ``OUTPUTS`` names them."""

    OUTPUTS = ("boxes", "scores", "labels")

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = copy.deepcopy(detector).eval()
        transform = self.detector.model.transform
        if transform.fixed_size is None:  # Faster R-CNN, RetinaNet, FCOS: the input is already at img_size
            transform.resize = types.MethodType(lambda self, image, target=None: (image, target), transform)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (found,) = self.detector([image])
        return tuple(found[k] for k in self.OUTPUTS)


class InstanceGraph(DetectionGraph):
    """A Mask R-CNN ``Detector``: the detections and their ``masks`` (N, 1, H, W) probabilities."""

    OUTPUTS = ("boxes", "scores", "labels", "masks")


def graph_spec(task_name: str, model: nn.Module) -> tuple[nn.Module, list[str], dict[str, dict[int, str]], str]:
    """(module to trace, output names, dynamic axes of input and outputs, io kind) of a task's model."""
    if task_name in ("detect", "instance"):
        graph = (InstanceGraph if task_name == "instance" else DetectionGraph)(model)
        axes = {"image": {1: "height", 2: "width"}, **{k: {0: "detections"} for k in graph.OUTPUTS}}
        if task_name == "instance":
            axes["masks"] = {0: "detections", 2: "height", 3: "width"}
        return graph, list(graph.OUTPUTS), axes, "instances" if task_name == "instance" else "detections"
    if task_name == "segment3d":
        return model, ["logits"], {"image": {0: "batch"}, "logits": {0: "batch"}}, "tensor"
    image = {0: "batch", 2: "height", 3: "width"}
    logits = image if task_name == "segment" else {0: "batch"}
    return model, ["logits"], {"image": image, "logits": logits}, "tensor"


def export_graph(task_name: str, model: nn.Module, example: torch.Tensor, opset: int = OPSET) -> tuple[Any, str]:
    """(``onnx.ModelProto``, io kind) of ``model`` traced on ``example`` (a real, pre-processed input: (C, H, W)
    for detect and instance, else with a batch axis)."""
    import onnx

    module, outputs, axes, kind = graph_spec(task_name, model)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # tracer warnings about shapes read as Python numbers; parity checks the result
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module.eval(), (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=outputs, dynamic_axes=axes)
        except Exception as e:  # torch.onnx raises several types for unsupported operators
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ToolkitError(f"torch.onnx cannot export this {task_name} model at opset {opset}: {first}") from None
    return onnx.load_from_string(buffer.getvalue()), kind


def set_metadata(model: Any, items: dict[str, str]) -> None:
    """Replace ``model.metadata_props`` with ``items`` (string keys and values)."""
    del model.metadata_props[:]
    for key, value in items.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
