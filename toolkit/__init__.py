"""Medical imaging and object detection toolkit: shared CNN backbones, task heads, one trainer."""
from __future__ import annotations

from typing import Any

from torch import nn

from toolkit._version import __version__


def create_model(task: str = "classify", num_classes: int = 10, **model_options: Any) -> nn.Module:
    """Build a task's model, e.g. ``create_model("classify", 10, backbone="mobilenet_v2", pretrained=True)``.

    ``model_options`` are the task's ``model.*`` config keys; ``in_chans`` sets input channels.
    """
    from toolkit import config as config_mod
    from toolkit.tasks import task_class

    cls = task_class(task)
    in_chans = model_options.pop("in_chans", 3)
    cfg = config_mod.build(task, cls.DataConfig, cls.ModelConfig, [{"model": model_options}])
    if hasattr(cfg.data, "channels"):
        cfg.data.channels = in_chans
    return cls(cfg).build_model([str(i) for i in range(num_classes)], pretrained=True)


def list_models(kind: str = "backbones") -> list[str]:
    """Names of ``backbones`` or ``tasks``."""
    import toolkit.backbones  # noqa: F401  (fills BACKBONES)
    import toolkit.tasks  # noqa: F401  (fills TASKS)
    from toolkit.registry import BACKBONES, TASKS

    return {"backbones": BACKBONES.names(), "tasks": TASKS.names()}[kind]


def train(task: str, overrides: list[str] | None = None, **kwargs: Any) -> dict[str, float]:
    """Train a task, e.g. ``train("classify", ["data=digits", "train.epochs=3"])``."""
    from toolkit.engine.run import train as run_train

    return run_train(task, overrides, **kwargs)


def load_predictor(path: str, device: str = "auto") -> Any:
    """``load_predictor("runs/classify/exp/weights/best.pt").predict("image.png")``."""
    from toolkit.predict import Predictor

    return Predictor.from_checkpoint(path, device)


def sample_input(name: str) -> Any:
    """A sample input file, made once from a built-in dataset: ``nuclei`` (512 x 512 microscopy PNG), ``brain``
    (4-channel MR NIfTI), ``brain-dicom`` (the same as DICOM series folders), ``fashion-mnist`` and ``digits`` (a
    folder with one test image per class); e.g. ``predict(sample_input("nuclei"))``."""
    from toolkit.data.samples import sample_input as make

    return make(name)


__all__ = ["create_model", "list_models", "train", "load_predictor", "sample_input", "__version__"]
