"""Explanations of a trained model: what drove a class, a box or a tumour region, and what its layers compute.

``explainer(task, model, classes, method, layer)`` checks the method, the layer and the model once and returns a
callable ``explain(sample, target=None, **options) -> result`` (``Predictor.explain`` and ``toolkit explain`` use it):

- classify (``classify.py``): a heatmap per top-k class or a named class; gradcam, gradcam++, hirescam, layercam,
  scorecam (gradient-free), eigencam.
- segment (``segment.py``): a heatmap per class region (what drove the pixels predicted as that class).
- detect (``detect.py``): a heatmap per detected box (box-score HiResCAM or Grad-CAM) or one gradient-free
  EigenCAM map, for Faster R-CNN, RetinaNet, FCOS and SSDlite.
- segment3d (``volume.py``): a heatmap per region (TC / WT / ET) over the whole scan through the sliding window.
- ``method="layers"`` (``layers.py``): feature maps of every backbone stage, first-layer filters, simple_cnn's walk.

Results (``results.py``) save overlay PNGs with a colour bar, the raw maps (.npy; NIfTI for volumes) and a JSON
naming method, layer, target and the model's score. The CAM maths is pytorch-grad-cam's (``base.py``); measures of
their quality are in ``quality.py``."""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable

from torch import nn

from toolkit.config import coerce
from toolkit.errors import ConfigError
from toolkit.explain.base import LAYERS, METHODS, TASK_METHODS, check_explainable, check_method
from toolkit.explain.classify import ClassifyExplainer
from toolkit.explain.detect import DetectExplainer
from toolkit.explain.layers import LayerView
from toolkit.explain.results import Explanation, FeatureMaps, VolumeExplanation
from toolkit.explain.segment import SegmentExplainer
from toolkit.explain.volume import VolumeExplainer

EXPLAINERS = {"classify": ClassifyExplainer, "segment": SegmentExplainer, "detect": DetectExplainer,
              "segment3d": VolumeExplainer}

__all__ = ["EXPLAINERS", "Explanation", "FeatureMaps", "LAYERS", "METHODS", "TASK_METHODS", "VolumeExplanation",
           "check_call", "explainer"]


def explainer(task: Any, model: nn.Module, classes: list[str], method: str | None = None, layer: str | None = None,
              source: str = "model") -> Callable[..., Any]:
    """The explainer of ``task``'s ``model`` with ``method`` (see ``TASK_METHODS``, the first is the default;
    ``layers`` for feature maps) at ``layer`` (None = the task's default). ConfigError for an ONNX model, a method
    the task cannot use, or an unknown layer (listing the valid ones)."""
    check_explainable(model, source)
    method = check_method(task.name, method or TASK_METHODS[task.name][0])
    if method == LAYERS:
        return LayerView(task, model, classes)
    return EXPLAINERS[task.name](task, model, classes, method, layer)


def check_call(explain: Callable[..., Any], target: str | int | None, options: dict[str, Any], task: str
               ) -> dict[str, Any]:
    """Checks ``target`` with the explainer's ``check`` and returns ``options`` cast to the keyword-only parameters
    of ``explain`` (e.g. ``top_k``, ``conf``); a bad target or an unknown option is a ConfigError naming the valid
    ones."""
    if target is not None:
        explain.check(target)
    params = {p.name for p in inspect.signature(explain.__call__).parameters.values() if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(options) - params)
    if unknown:
        raise ConfigError(f"unknown explain option '{unknown[0]}' for a {task} model; valid: method, target, layer"
                          + "".join(f", {p}" for p in sorted(params)))
    hints = typing.get_type_hints(explain.__call__)
    return {key: coerce(value, hints[key], key) for key, value in options.items()}
