"""``Predictor.from_checkpoint(path)`` -> ``predict(image | path | folder)`` -> Result objects."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from toolkit import config as config_mod
from toolkit.data.image_io import IMAGE_SUFFIXES, to_float
from toolkit.engine import checkpoint
from toolkit.engine.distributed import pick_device
from toolkit.errors import DataError, ToolkitError
from toolkit.tasks import task_class


class Predictor:
    """A trained model with its task's pre- and post-processing. Rebuilt from the checkpoint alone."""

    def __init__(self, task: Any, model: torch.nn.Module, classes: list[str], source: str = "") -> None:
        self.task, self.model, self.classes, self.source = task, model, classes, source

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "Predictor":
        ckpt = checkpoint.load(Path(path))
        task_cls = task_class(ckpt["config"]["task"])
        cfg = config_mod.from_dict(ckpt["config"], task_cls.DataConfig, task_cls.ModelConfig)
        task = task_cls(cfg)
        model = task.build_model(ckpt["classes"], pretrained=False)
        checkpoint.load_model_state(model, ckpt, path)
        model.to(pick_device(device)).eval()
        return cls(task, model, list(ckpt["classes"]), str(path))

    @property
    def task_name(self) -> str:
        return self.task.name

    def predict(self, inputs: Any, batch_size: int = 8, **options: Any) -> list[Any]:
        """``inputs``: a path, a folder, an array (H, W[, C]) or a list of these; ``options`` go to the task
        (e.g. ``conf``, ``iou`` for detection, ``top_k`` for classification)."""
        samples = list(self._samples(inputs))
        results: list[Any] = []
        for start in range(0, len(samples), batch_size):
            results += self.task.predict(self.model, samples[start:start + batch_size], **options)
        return results

    def stream(self, inputs: Any, batch_size: int = 8, on_error: Callable[[ToolkitError], None] | None = None,
               **options: Any) -> Iterator[Any]:
        """Like ``predict`` but reads and yields one batch at a time (for large folders).
        With ``on_error``, unreadable inputs are reported to it and skipped instead of raising."""
        batch: list[dict[str, Any]] = []
        for sample in self._samples(inputs, on_error):
            batch.append(sample)
            if len(batch) == batch_size:
                yield from self.task.predict(self.model, batch, **options)
                batch = []
        if batch:
            yield from self.task.predict(self.model, batch, **options)

    def _samples(self, inputs: Any, on_error: Callable[[ToolkitError], None] | None = None
                 ) -> Iterator[dict[str, Any]]:
        items: Iterable[Any] = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        for item in items:
            if isinstance(item, np.ndarray):
                yield {"image": to_float(item if item.ndim == 3 else item[:, :, None]), "source": "array"}
                continue
            for path in self._expand(Path(item)):
                try:
                    yield self.task.read_input(path)
                except ToolkitError as e:
                    if on_error is None:
                        raise
                    on_error(e)

    def _expand(self, path: Path) -> list[Path]:
        """The task's ``expand_input(path)`` if it has one (e.g. a DICOM folder is one scan), else ``expand``."""
        hook = getattr(self.task, "expand_input", None)
        return hook(path) if hook else expand(path, getattr(self.task, "input_suffixes", IMAGE_SUFFIXES))


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
