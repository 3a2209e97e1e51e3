"""Tiny real models and real files for the app tests: a detector, an instance segmenter and a 4-channel tumour model
trained here in seconds, the brain-lesions data at 6 mm, and the environment that points the apps at them (no
network)."""
from __future__ import annotations

import importlib.util
import io
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from toolkit import train
from toolkit.cache import sources_dir
from toolkit.medical.synthetic import prepare_brain_lesions

APPS = Path(__file__).resolve().parents[2] / "apps"


def app_module(name: str) -> ModuleType:
    """``apps/<name>.py`` imported as the top-level module ``name``, as the pages import it under ``streamlit run``
    (which puts ``apps/`` on the path); AppTest pages then share this module."""
    if getattr(sys.modules.get(name), "__file__", None) != str(APPS / f"{name}.py"):
        spec = importlib.util.spec_from_file_location(name, APPS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


support = app_module("support")


@pytest.fixture(scope="session")
def app_root(tmp_path_factory) -> Path:
    """runs/ with runs/detect/exp, runs/segment3d/exp and runs/classify/exp (digits), data/brain-lesions, and cache/
    (sharing the wheels)."""
    from tests.helpers.detection import make_split
    from toolkit.data.formats.coco import write_coco

    root = tmp_path_factory.mktemp("apps")
    (root / "cache").mkdir()
    (root / "cache" / "sources").symlink_to(sources_dir().resolve(), target_is_directory=True)
    write_coco(make_split(root / "raw" / "train", 6, negatives=1), root / "coco" / "train")
    write_coco(make_split(root / "raw" / "val", 3, seed=1), root / "coco" / "val")
    common = ["train.epochs=1", "train.batch_size=2", "train.progress=false", "train.workers=0", "train.threads=1",
              f"train.project={root / 'runs'}"]
    train("detect", [f"data={root / 'coco'}", "model.arch=fcos", "model.backbone=resnet18", "model.pretrained=false",
                     "data.img_size=64", *common])
    data = prepare_brain_lesions(root / "data" / "brain-lesions", n_train=2, n_val=1, spacing_mm=6.0, seed=0)
    train("segment3d", [f"data.source={data}", "data.roi=[32,32,32]", "model.init_filters=8", *common])
    train("classify", ["data=digits", *common])
    return root


@pytest.fixture(scope="session")
def instance_runs(app_root: Path) -> Path:
    """A runs folder holding only ``instance/exp``: one epoch of Mask R-CNN on tiny synthetic label images, predicting
    on 128-px tiles resized to 64 px (so the 512-px nuclei sample goes through the merge across tiles)."""
    from tests.helpers.instances import make_instance_split
    from toolkit.data.formats.instances import write_instances

    raw = app_root / "raw-instances"
    splits = {"train": make_instance_split(raw / "train", 6), "val": make_instance_split(raw / "val", 3, seed=1)}
    data = write_instances(splits, "coco", app_root / "instances")
    runs = app_root / "instance-runs"
    train("instance", [f"data={data}", "model.backbone=resnet18", "model.pretrained=false", "data.img_size=64",
                       "data.predict_tile=128", "model.fpn_channels=32", "model.mask_channels=32", "train.epochs=1",
                       "train.batch_size=2", "train.progress=false", "train.workers=0", "train.threads=1",
                       f"train.project={runs}"])
    return runs


def app_environment(root: Path) -> dict[str, str]:
    """Variables pointing the apps at the tiny runs, data and cache under ``root``; one thread, since the tests
    share two cores with other work."""
    return {"TOOLKIT_RUNS": str(root / "runs"), "TOOLKIT_DATA": str(root / "data"),
            "TOOLKIT_CACHE": str(root / "cache"), "TORCH_HOME": str(root / "torch"), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def app_env(app_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``app_environment`` set in this process (for AppTest, which runs the page here)."""
    env = app_environment(app_root)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def zip_bytes(files: list[tuple[str, bytes]]) -> bytes:
    """A zip archive in memory holding ``(name, data)`` members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files:
            zf.writestr(name, data)
    return buffer.getvalue()
