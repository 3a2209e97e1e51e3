"""2D training from DICOM: read_image applies the modality LUT + windowing to the full-depth pixels."""
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from toolkit.data.classification import load_splits
from toolkit.data.image_io import read_image
from toolkit.errors import DataError
from toolkit.medical import apply_window


def _hu() -> np.ndarray:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _imagefolder(root: Path) -> Path:
    source = get_testdata_file("CT_small.dcm")
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            shutil.copy(source, root / split / cls / "ct.dcm")
    return root


def test_imagefolder_of_dicom_reads_windowed_full_depth_pixels(tmp_path):
    datasets, classes = load_splits(str(_imagefolder(tmp_path)), channels=0, val_split=0.1, seed=0)
    assert classes == ["a", "b"] and len(datasets["train"]) == 2 and datasets["train"].channels == 1
    auto = datasets["train"].image(0)  # CT_small has no window of its own: auto (1st-99th percentile)
    assert auto.shape == (128, 128, 1) and auto.dtype == np.float32 and 0.0 <= auto.min() and auto.max() <= 1.0
    assert len(np.unique(auto)) > 256  # not an 8-bit screenshot
    brain = read_image(tmp_path / "train" / "a" / "ct.dcm", window="brain")
    np.testing.assert_allclose(brain[..., 0], apply_window(_hu(), "brain"))
    custom = read_image(tmp_path / "train" / "a" / "ct.dcm", window="40/80")
    np.testing.assert_array_equal(custom, brain)


def test_three_presets_stack_as_three_channels(tmp_path):
    path = _imagefolder(tmp_path) / "train" / "a" / "ct.dcm"
    stacked = read_image(path, channels=3, window="brain,subdural,bone")
    assert stacked.shape == (128, 128, 3)
    for c, preset in enumerate(("brain", "subdural", "bone")):
        np.testing.assert_allclose(stacked[..., c], apply_window(_hu(), preset))
    assert read_image(path, channels=3, window=["lung"]).shape == (128, 128, 3)  # one window repeated


def test_file_window_is_the_default_and_bad_windows_are_clear(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = 40, 80
    ds.save_as(tmp_path / "windowed.dcm")
    own = read_image(tmp_path / "windowed.dcm")
    assert own.min() == 0.0 and own.max() == 1.0 and (own[..., 0][_hu() > 80] == 1.0).all()
    with pytest.raises(DataError, match="unknown window preset 'liver'"):
        read_image(tmp_path / "windowed.dcm", window="liver")
    with pytest.raises(DataError, match="not centre/width"):
        read_image(tmp_path / "windowed.dcm", window="40/wide")
    with pytest.raises(DataError, match="multi-frame DICOM"):
        read_image(get_testdata_file("examples_ybr_color.dcm"))


def test_data_window_key_reaches_training_and_prediction(tmp_path):
    from toolkit.config import build
    from toolkit.tasks.classify import ClassifyData, ClassifyModel, ClassifyTask

    root = _imagefolder(tmp_path)
    cfg = build("classify", ClassifyData, ClassifyModel, [{"data": {"source": str(root), "window": "brain,subdural,bone"}}])
    task = ClassifyTask(cfg)
    bundle = task.build_data(("train", "val"))
    assert task.channels == 3 and bundle.train.image(0).shape == (128, 128, 3)
    np.testing.assert_allclose(bundle.train.image(0)[..., 2], apply_window(_hu(), "bone"))
    np.testing.assert_array_equal(task.read_input(root / "val" / "a" / "ct.dcm")["image"], bundle.train.image(0))
