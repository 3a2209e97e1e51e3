"""Small runs to export: seeded untrained models (export and parity do not depend on the weights) whose configs
point at tiny real val data written here, so parity runs on real inputs as it does for a user's run. Classify
uses the session's trained digits run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from tests.helpers.detection import make_split
from tests.helpers.segmentation import write_mask_dataset
from toolkit import config as config_mod
from toolkit.data.formats.coco import write_coco
from toolkit.engine import checkpoint
from toolkit.medical.synthetic import prepare_brain_lesions
from toolkit.tasks import task_class


def write_run(task: str, root: Path, settings: dict[str, Any], head_noise: float = 0.0) -> Path:
    """``root/weights/best.pt``: ``task``'s model with seeded random weights, classes from its data.
    ``head_noise``: std of noise added to the class-score layers of detectors, whose initial near-equal scores would
    otherwise make NMS choose between boxes by float rounding."""
    cls = task_class(task)
    cfg = config_mod.build(task, cls.DataConfig, cls.ModelConfig, [settings])
    instance = cls(cfg)
    classes = instance.build_data(splits=("val",)).classes
    torch.manual_seed(0)
    model = instance.build_model(classes, pretrained=False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if head_noise and ("cls" in name or "classification" in name):
                p.add_(head_noise * torch.randn_like(p))
    path = root / "weights" / "best.pt"
    checkpoint.save({"format_version": checkpoint.FORMAT_VERSION, "model": model.state_dict(),
                     "config": instance.cfg.to_dict(), "classes": classes}, path)
    return path


def instance_data(root: Path) -> Path:
    """Instance label images (``labels`` layout): 4 train and 3 val images of 40 x 48 px with 3 objects each."""
    from tests.helpers.instances import make_instance_split
    from toolkit.data.formats.instances import write_instances

    splits = {"train": make_instance_split(root / "raw" / "train", 4),
              "val": make_instance_split(root / "raw" / "val", 3, seed=1)}
    return write_instances(splits, "labels", root / "labels")


def detection_data(root: Path) -> Path:
    """COCO folders: 4 train and 3 val images of 64 px with 1-3 rectangles each."""
    write_coco(make_split(root / "raw" / "train", 4), root / "coco" / "train")
    write_coco(make_split(root / "raw" / "val", 3, seed=1), root / "coco" / "val")
    return root / "coco"


@pytest.fixture(scope="session")
def export_runs(tmp_path_factory, request) -> Callable[[str], Path]:
    """``export_runs(task) -> best.pt`` of a small run of that task (written once per session)."""
    root = tmp_path_factory.mktemp("export_runs")
    makers = {
        "classify": lambda: request.getfixturevalue("digits_checkpoint"),
        "segment": lambda: write_run("segment", root / "segment", {
            "data": {"source": str(write_mask_dataset(root / "blobs")), "channels": 1},
            "model": {"backbone": "simple_cnn", "head": "fpn"}}),
        "detect": lambda: write_run("detect", root / "detect", {
            "data": {"source": str(detection_data(root / "boxes")), "img_size": 64},
            "model": {"arch": "fcos", "backbone": "simple_cnn"}}),
        "instance": lambda: write_run("instance", root / "instance", {
            "data": {"source": str(instance_data(root / "cells")), "img_size": 64},
            "model": {"backbone": "simple_cnn", "fpn_channels": 32, "mask_channels": 32, "detections_per_img": 10}},
            head_noise=0.5),
        "segment3d": lambda: write_run("segment3d", root / "segment3d", {
            "data": {"source": str(prepare_brain_lesions(root / "brain", n_train=1, n_val=1, spacing_mm=6.0)),
                     "roi": [32, 32, 32]},
            "model": {"arch": "unet", "init_filters": 4}}),
    }
    made: dict[str, Path] = {}
    return lambda task: made[task] if task in made else made.setdefault(task, makers[task]())
