"""``toolkit predict CKPT folder series_uid=UID`` on a folder holding two DICOM series predicts on the chosen one
(the largest without it): the mask's shape and the DICOM SEG's referenced series say which was read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.predict.conftest import write_checkpoint
from toolkit.medical import list_series, write_dicom_series

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _predict(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = subprocess.run([sys.executable, "-m", "toolkit", "predict", *args, "--out", "out"], cwd=cwd, env=ENV,
                         capture_output=True, text=True, timeout=300)
    records = json.loads((cwd / "out" / "predictions.json").read_text()) if out.returncode == 0 else []
    return out, records


def test_series_uid_picks_the_series_of_a_folder(tmp_path: Path) -> None:
    ckpt = write_checkpoint("segment3d", tmp_path / "segment3d.pt")
    rng = np.random.default_rng(0)
    study = tmp_path / "study"
    for name, shape, seed in (("large", (20, 18, 12), 1), ("small", (16, 14, 8), 2)):
        write_dicom_series(rng.integers(0, 1000, shape), np.diag([2.0, 2.0, 3.0, 1.0]), study / name, seed=seed)
    series = list_series(study)
    small = min(series, key=lambda uid: len(series[uid]))
    assert len(series) == 2 and len(series[small]) == 8

    default, (record,) = _predict(str(ckpt), str(study), "progress=false", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert record["shape"] == [20, 18, 12]  # the largest series
    chosen, (record,) = _predict(str(ckpt), str(study), f"series_uid={small}", "progress=false", cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert record["shape"] == [16, 14, 8]
    seg = pydicom.dcmread(tmp_path / next(f for f in record["files"] if f.endswith(".seg.dcm")))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == small
