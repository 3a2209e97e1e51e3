"""``Predictor.from_checkpoint(path)`` -> ``predict(image | path | folder, **options)`` -> Result objects.

Options are checked against the task: those of reading an input are the keyword-only parameters of the task's
``read_input`` (e.g. ``series_uid``), those of the model and post-processing the keyword-only parameters of its
``predict`` (e.g. ``conf``, ``iou``, ``top_k``); anything else is a ``ConfigError`` listing the valid ones."""
from __future__ import annotations

import difflib
import inspect
import typing
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from toolkit import config as config_mod
from toolkit.data.image_io import IMAGE_SUFFIXES, read_image, to_float
from toolkit.data.pixel_size import pixel_size_um
from toolkit.engine import checkpoint, ensemble
from toolkit.engine.distributed import pick_device
from toolkit.errors import ConfigError, DataError, ToolkitError, WeightsError

__all__ = ["COCO_MODEL", "IMAGE_SUFFIXES", "Predictor", "coco_weights_file", "expand", "load_predictor",
           "pixel_size_um", "read_image"]

COCO_MODEL = "fasterrcnn_resnet50_fpn"
COCO_SIZE = 800  # longest image side the COCO detector sees, as torchvision's default min_size
# what a library may raise on an odd input (besides ToolkitError): reported per input by ``stream(on_error=...)``
INPUT_FAILURES = (ToolkitError, OSError, ValueError, RuntimeError)
OnError = Callable[[str, Exception], None]


class Predictor:
    """A trained model with its task's pre- and post-processing. Rebuilt from the checkpoint alone."""

    def __init__(self, task: Any, model: nn.Module, classes: list[str], source: str = "") -> None:
        self.task, self.model, self.classes, self.source = task, model, classes, source

    @classmethod
    def from_checkpoint(cls, path: str | Path | list[str | Path], device: str = "auto",
                        overrides: list[str] | None = None, backend: str = "auto") -> "Predictor":
        """The checkpoint's model in eval mode on ``device`` (auto: cuda > mps > cpu), with its task. A
        cross-validation run directory or several checkpoints (a list, or paths joined by commas) predict as an
        ensemble (``engine.ensemble``), with an uncertainty map for segmentation.

        ``overrides``: ``a.b=c`` settings over the saved config, e.g. ``["data=other/dataset"]``. ``backend``: torch;
        onnx (a ``.onnx`` file from ``toolkit export``, or the one beside the checkpoint, on onnxruntime); auto (onnx
        for a ``.onnx`` path, or on the CPU when an export of this very checkpoint sits beside it; else torch)."""
        task, model, classes = ensemble.restore(path, device, overrides, backend)
        return cls(task, model, classes, str(path))

    @classmethod
    def from_config(cls, config: dict[str, Any], classes: list[str], model: nn.Module, source: str = ""
                    ) -> "Predictor":
        """A Predictor of a ready ``model`` (e.g. an ONNX session) for a saved, resolved ``config`` and ``classes``."""
        task = checkpoint.build_task(config)
        task.classes = list(classes)
        return cls(task, model.eval(), list(classes), source)

    @classmethod
    def coco_detector(cls, device: str = "auto") -> "Predictor":
        """torchvision's COCO-trained Faster R-CNN (ResNet-50 FPN; 90 class slots, 'N/A' among them) as a detect
        Predictor, from the torch cache (``toolkit weights fetch fasterrcnn_resnet50_fpn`` puts it there)."""
        import torchvision

        from toolkit.heads.detection import PREDICTOR_KEYS
        from toolkit.safe_io import load_state_dict_file

        path = coco_weights_file()
        if path is None:
            raise WeightsError(f"torchvision's COCO weights are not in the cache; run `toolkit weights fetch "
                               f"{COCO_MODEL}`")
        task = checkpoint.build_task({
            "task": "detect", "data": {"source": "coco", "img_size": COCO_SIZE},
            "model": {"arch": "fasterrcnn", "backbone": "resnet50", "weights": "coco", "score_thresh": 0.05}})
        classes = list(torchvision.models.get_model_weights(COCO_MODEL).DEFAULT.meta["categories"][1:])
        model = task.build_model(classes, pretrained=True)  # everything but the box predictor
        head = {k: v for k, v in load_state_dict_file(path).items() if k.startswith(PREDICTOR_KEYS)}
        model.model.load_state_dict(head, strict=False)
        return cls(task, model.to(pick_device(device)).eval(), classes, f"torchvision {COCO_MODEL} (COCO)")

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def input_channels(self) -> int:
        """Image channels the model takes: 3 (RGB), 1 (gray), 4 (e.g. T1, T1c, T2, FLAIR) ..."""
        return int(getattr(self.task.cfg.data, "channels", 0) or 3)

    @property
    def backend(self) -> str:
        """``onnx`` when the model runs on onnxruntime (an exported ``.onnx`` file), else ``torch``."""
        from toolkit.engine.onnx_runtime import OnnxModel

        return "onnx" if any(isinstance(m, OnnxModel) for m in self.model.modules()) else "torch"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def options(self) -> list[str]:
        """The ``key=value`` options ``predict`` takes for this task (besides ``batch_size``)."""
        return sorted(_keyword_only(self.task.read_input) | _keyword_only(self.task.predict))

    def check_options(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``options`` cast to their declared types and split into (read_input's, predict's); an unknown option or
        a value of the wrong type is a ConfigError naming the valid ones."""
        split: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        for key, value in options.items():
            for method, found in zip((self.task.read_input, self.task.predict), split):
                if key in _keyword_only(method):
                    found[key] = config_mod.coerce(value, typing.get_type_hints(method)[key], key)
                    break
            else:
                valid = ["batch_size", *self.options]
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"unknown predict option '{key}' for a {self.task_name} model{hint}; valid: "
                                  f"{', '.join(valid)}")
        return split

    def predict(self, inputs: Any, batch_size: int = 8, **options: Any) -> list[Any]:
        """``inputs``: a path, a folder, an array (H, W[, C]) or a list of these -> one Result per input.
        ``options``: see ``options`` (e.g. ``conf``, ``iou`` for detection, ``top_k`` for classification)."""
        return list(self.stream(inputs, batch_size=batch_size, **options))

    def stream(self, inputs: Any, batch_size: int = 8, on_error: OnError | None = None, **options: Any
               ) -> Iterator[Any]:
        """Like ``predict`` but reads and yields one batch at a time (for large folders); the first batch is one
        input, so the first result comes as soon as it is ready. With ``on_error``, an input that cannot be read or
        predicted is reported as ``on_error(source, error)`` and skipped."""
        reading, model_options = self.check_options(options)
        batch: list[dict[str, Any]] = []
        size = 1
        for sample in self._samples(inputs, reading, on_error):
            batch.append(sample)
            if len(batch) == size:
                yield from self._run(batch, model_options, on_error)
                batch, size = [], batch_size
        if batch:
            yield from self._run(batch, model_options, on_error)

    def explain(self, inputs: Any, method: str | None = None, target: str | int | None = None,
                layer: str | None = None, on_error: OnError | None = None, **options: Any) -> list[Any]:
        """What drove each prediction: one ``toolkit.explain`` result per input (heatmaps as arrays; ``save``).
        ``inputs``: as ``predict``, or one sample as the task reads it (e.g. ``{"volume": Volume, "source": name}``).
        ``method``: gradcam, gradcam++, scorecam, eigencam ... (``explain_methods``, the first is the default) or
        ``layers`` (feature maps and filters); ``target``: a class, a detection's index or a region (None: the
        task's default); ``layer``: e.g. ``stage3`` (None: the task's default); ``options``: e.g. ``top_k``."""
        from toolkit import explain

        if self.backend == "onnx":
            return self.explainable().explain(inputs, method, target, layer, on_error, **options)
        made = self.__dict__.setdefault("_explainers", {})  # an explainer finds its layers once per model
        if (method, layer) not in made:
            made[method, layer] = explain.explainer(self.task, self.model, self.classes, method, layer, self.source)
        explain_one = made[method, layer]
        reading = {k: options.pop(k) for k in list(options) if k in _keyword_only(self.task.read_input)}
        options = explain.check_call(explain_one, target, options, self.task_name)
        samples = [inputs] if isinstance(inputs, dict) else self._samples(inputs, reading, on_error)
        return [result for sample in samples
                if (result := _guarded(str(sample.get("source", "input")),
                                       lambda: explain_one(sample, target, **options), on_error)) is not None]

    def explainable(self) -> "Predictor":
        """This Predictor, or for one that runs on onnxruntime its checkpoint's PyTorch model (loaded once):
        explanations need the weights and their gradients, which an ONNX file does not carry."""
        if self.backend == "torch":
            return self
        if not self.source.lower().endswith(".pt"):
            raise ToolkitError(f"{self.source} runs on onnxruntime; explanations need the PyTorch checkpoint (.pt) it "
                               "was exported from")
        if "_torch" not in self.__dict__:
            self.__dict__["_torch"] = Predictor.from_checkpoint(self.source, "cpu", backend="torch")
        return self.__dict__["_torch"]

    @property
    def explain_methods(self) -> list[str]:
        """The heatmap methods ``explain`` takes for this task (besides ``layers``)."""
        from toolkit.explain import TASK_METHODS

        return list(TASK_METHODS[self.task_name])

    def predict_volume(self, volume: Any, source: str = "scan", progress: Callable[[float], None] | None = None
                       ) -> Any:
        """3D segmentation of an in-memory ``toolkit.medical.Volume`` (X, Y, Z[, C]) -> its Result (mask on the
        volume's grid). ``progress(fraction done)`` is called after each batch of sliding windows."""
        if self.task_name != "segment3d":
            raise ConfigError(f"{self.source} is a '{self.task_name}' model; volumes need a 'segment3d' one")
        if min(volume.shape) < 2:
            raise DataError(f"{source} is a 2D image (shape {volume.shape}); the segment3d model needs a 3D scan "
                            "with several slices")
        (result,) = self.task.predict(self.model, [{"volume": volume, "source": source}], progress=progress or False)
        return result

    def _run(self, batch: list[dict[str, Any]], options: dict[str, Any], on_error: OnError | None) -> list[Any]:
        """The task's predictions for ``batch``; with ``on_error``, a failing batch is retried one input at a time
        so that only the inputs that fail are reported and skipped."""
        def predict(samples: list[dict[str, Any]]) -> list[Any]:
            return self.task.predict(self.model, samples, **options)

        if on_error is None:
            return predict(batch)
        if len(batch) == 1:
            return _guarded(str(batch[0].get("source", "input")), lambda: predict(batch), on_error) or []
        try:
            return predict(batch)
        except INPUT_FAILURES:
            return [result for sample in batch for result in self._run([sample], options, on_error)]

    def expand_inputs(self, inputs: Any, on_error: OnError | None = None) -> list[Any]:
        """``inputs`` one by one: a folder becomes its files (for segment3d, a DICOM folder stays one scan); arrays
        stay as they are. With ``on_error``, a missing path is reported and left out."""
        found: list[Any] = []
        for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
            is_array = isinstance(item, np.ndarray)
            found += [item] if is_array else _guarded(str(item), lambda: self._expand(Path(item)), on_error) or []
        return found

    def _samples(self, inputs: Any, options: dict[str, Any], on_error: OnError | None) -> Iterator[dict[str, Any]]:
        """One sample per input file (read with the read ``options``) or array (H, W[, C])."""
        for item in self.expand_inputs(inputs, on_error):
            if isinstance(item, np.ndarray):
                yield {"image": to_float(item if item.ndim == 3 else item[:, :, None]), "source": "array"}
                continue
            sample = _guarded(str(item), lambda: self.task.read_input(item, **options), on_error)
            if sample is not None:
                yield sample

    def _expand(self, path: Path) -> list[Path]:
        """The task's ``expand_input(path)`` if it has one (e.g. a DICOM folder is one scan), else ``expand``."""
        hook = getattr(self.task, "expand_input", None)
        return hook(path) if hook else expand(path, IMAGE_SUFFIXES)


def _guarded(source: str, make: Callable[[], Any], on_error: OnError | None) -> Any:
    """``make()``; with ``on_error``, an input failure is reported as ``on_error(source, error)`` and gives None."""
    if on_error is None:
        return make()
    try:
        return make()
    except INPUT_FAILURES as e:
        on_error(source, e)
        return None


def _keyword_only(method: Callable[..., Any]) -> set[str]:
    return {p.name for p in inspect.signature(method).parameters.values() if p.kind is p.KEYWORD_ONLY}


def coco_weights_file() -> Path | None:
    """torchvision's COCO Faster R-CNN weights in the torch cache, or None when they are not there."""
    from toolkit.backbones import weights as tv_weights

    path = tv_weights.cache_file(tv_weights.resolve(COCO_MODEL))
    return path if path.is_file() else None


def expand(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """A file -> [file]; a folder -> its files with the given suffixes, sorted."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
        if not files:
            raise DataError(f"{path} holds no input files ({', '.join(suffixes)})")
        return files
    raise DataError(f"input not found: {path}")


def load_predictor(path: str | Path, device: str = "auto") -> Predictor:
    return Predictor.from_checkpoint(path, device)
