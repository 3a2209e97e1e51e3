"""A classifier checkpoint written in a second: seeded random weights, gray images at native size (data.img_size=0,
as the digits recipe), simple_cnn; the behaviour under test does not depend on the weights."""
from __future__ import annotations

from pathlib import Path

import torch

from toolkit import config as config_mod
from toolkit.engine import checkpoint
from toolkit.tasks import task_class


def native_classifier(path: Path, classes: list[str], source: str = "") -> Path:
    cls = task_class("classify")
    data = {"img_size": 0, "channels": 1, **({"source": source} if source else {})}
    cfg = config_mod.build("classify", cls.DataConfig, cls.ModelConfig, [{"data": data, "model": {
        "backbone": "simple_cnn", "pretrained": False}, "train": {"batch_size": 8, "workers": 0}}])
    torch.manual_seed(0)
    model = cls(cfg).build_model(classes, pretrained=False)
    checkpoint.save({"format_version": checkpoint.FORMAT_VERSION, "model": model.state_dict(),
                     "config": cfg.to_dict(), "classes": classes}, path)
    return path
