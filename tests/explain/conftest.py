"""Models for the explanation tests: the digits classifier trained by the session fixture, and small untrained
detectors, segmenters and tumour networks built here in a second (the explanations' mechanics do not depend on the
weights; the measures of their quality are tested on models whose relevance is known)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit import config as config_mod
from toolkit.predict import Predictor
from toolkit.tasks import task_class


def build_predictor(task: str, settings: dict[str, Any], classes: list[str], seed: int = 0) -> Predictor:
    """A Predictor of ``task``'s model with seeded random weights and the given config ``settings``."""
    cls = task_class(task)
    cfg = config_mod.build(task, cls.DataConfig, cls.ModelConfig, [settings])
    torch.manual_seed(seed)
    model = cls(cfg).build_model(classes, pretrained=False)
    return Predictor.from_config(cfg.to_dict(), classes, model, f"{task}-test")


@pytest.fixture(scope="session")
def digits_predictor(digits_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(digits_checkpoint, "cpu")


@pytest.fixture(scope="session")
def digit_images(digits_arrays: dict[str, np.ndarray]) -> np.ndarray:
    """20 real 8x8 test digits, uint8 (20, 8, 8)."""
    return digits_arrays["x_test"][:20]


@pytest.fixture
def blobs_png(tmp_path: Path) -> Callable[[int], Path]:
    """``blobs_png(size)``: an RGB PNG of ``size`` px with three bright squares on a dark background."""
    def write(size: int = 64) -> Path:
        image = np.full((size, size, 3), 20, np.uint8)
        for y, x in ((8, 8), (30, 36), (size - 20, 12)):
            image[y:y + 12, x:x + 12] = (230, 220, 210)
        path = tmp_path / f"blobs{size}.png"
        Image.fromarray(image).save(path)
        return path
    return write


def state_of(model: torch.nn.Module) -> dict[str, Any]:
    """What an explanation must leave as it was: modes, requires_grad flags, gradients and hooks."""
    return {"modes": [m.training for m in model.modules()],
            "flags": [p.requires_grad for p in model.parameters()],
            "grads": [p.grad is None for p in model.parameters()],
            "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                         for m in model.modules()),
            "weights": {k: v.clone() for k, v in model.state_dict().items()}}


def assert_untouched(before: dict[str, Any], model: torch.nn.Module) -> None:
    after = state_of(model)
    for key in ("modes", "flags", "grads", "hooks"):
        assert after[key] == before[key], key
    assert all(torch.equal(before["weights"][k], v) for k, v in after["weights"].items())
