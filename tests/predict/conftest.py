"""Checkpoints of small untrained models, written here in a second (the Predictor's behaviour does not depend on
the weights), and small real input files."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit import config as config_mod
from toolkit.engine import checkpoint
from toolkit.tasks import task_class

SETTINGS: dict[str, tuple[dict[str, Any], list[str]]] = {  # task: (config, classes)
    "classify": ({"data": {"img_size": 32, "channels": 3}, "model": {"backbone": "resnet18"}}, ["cat", "dog", "owl"]),
    "detect": ({"data": {"img_size": 64}, "model": {"arch": "fcos", "backbone": "resnet18"}}, ["cell", "dot"]),
    "segment": ({"data": {"channels": 3}, "model": {"backbone": "resnet18"}}, ["background", "nucleus"]),
    "segment3d": ({"data": {"roi": [16, 16, 16], "channels": 1}, "model": {"init_filters": 8}}, ["TC", "WT", "ET"]),
}


def write_checkpoint(task: str, path: Path) -> Path:
    """A toolkit checkpoint of ``task``'s model (seeded random weights) with the settings above."""
    cls = task_class(task)
    settings, classes = SETTINGS[task]
    cfg = config_mod.build(task, cls.DataConfig, cls.ModelConfig, [settings])
    torch.manual_seed(0)
    model = cls(cfg).build_model(classes, pretrained=False)
    checkpoint.save({"format_version": checkpoint.FORMAT_VERSION, "model": model.state_dict(),
                     "config": cfg.to_dict(), "classes": classes}, path)
    return path


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory) -> Callable[[str], Path]:
    """``make_checkpoint(task) -> best.pt`` of that task (written once per session)."""
    root = tmp_path_factory.mktemp("checkpoints")
    return lambda task: (root / f"{task}.pt") if (root / f"{task}.pt").is_file() else write_checkpoint(
        task, root / f"{task}.pt")


def write_images(folder: Path, n: int = 3, size: int = 48) -> list[Path]:
    """``n`` RGB PNGs of ``size`` px: a bright square on a dark, noisy background."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
        image[8 + i:24 + i, 10:30] = 220
        paths.append(folder / f"img{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths
