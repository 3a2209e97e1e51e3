"""``Predictor.predict_volume``: an in-memory volume segmented on its own grid, with a progress report after each
batch of sliding windows (what the medical app shows), whatever the voxel order."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ConfigError, DataError
from toolkit.medical import Volume
from toolkit.predict import Predictor


def test_progress_is_reported_once_per_model_call(make_checkpoint) -> None:
    predictor = Predictor.from_checkpoint(make_checkpoint("segment3d"), device="cpu")
    assert predictor.input_channels == 1
    calls: list[int] = []
    predictor.model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    array = np.random.default_rng(0).random((30, 21, 17), dtype=np.float32)
    volume = Volume(array, np.diag([1.5, 2.0, 2.5, 1.0]))
    flipped = Volume(array[::-1].copy(), volume.affine @ np.diag([-1.0, 1, 1, 1]))  # another voxel order
    for scan in (volume, flipped):
        calls.clear()
        seen: list[float] = []
        result = predictor.predict_volume(scan, "case", seen.append)
        assert len(calls) > 1 and len(seen) == len(calls)  # several batches of windows, each reported
        assert seen == sorted(seen) and seen[-1] == 1.0
        assert result.mask.shape == scan.shape and result.source == "case"
    with pytest.raises(DataError, match=r"^slice is a 2D image \(shape \(30, 21, 1\)\)"):
        predictor.predict_volume(Volume(array[:, :, :1], volume.affine), "slice")


def test_a_2d_model_refuses_volumes(make_checkpoint) -> None:
    predictor = Predictor.from_checkpoint(make_checkpoint("segment"), device="cpu")
    with pytest.raises(ConfigError, match="is a 'segment' model; volumes need a 'segment3d' one"):
        predictor.predict_volume(Volume(np.zeros((4, 4, 4), np.float32), np.eye(4)))
