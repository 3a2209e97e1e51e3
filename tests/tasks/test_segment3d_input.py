"""Reading 3D inputs for prediction: ``series_uid`` picks one series of a DICOM folder holding several, and the
task's options are explicit keyword-only parameters (so the Predictor can list them; unknown ones are errors)."""
from __future__ import annotations

import inspect

import numpy as np
import pydicom
import pytest

from toolkit.config import Config, TrainConfig
from toolkit.errors import DataError
from toolkit.medical import write_dicom_series, write_nifti
from toolkit.tasks.segment3d import Segment3DData, Segment3DModel, Segment3DTask


@pytest.fixture()
def task() -> Segment3DTask:
    return Segment3DTask(Config("segment3d", Segment3DData(), Segment3DModel(), TrainConfig()))


def test_series_uid_picks_one_series_of_a_folder_holding_two(task, tmp_path):
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    write_dicom_series(np.full((8, 6, 5), 100.0), affine, tmp_path / "study" / "t1", series_description="T1")
    flair = write_dicom_series(np.full((8, 6, 4), 200.0), affine, tmp_path / "study" / "flair",
                               series_description="FLAIR")
    uid = str(pydicom.dcmread(flair[0]).SeriesInstanceUID)
    (study,) = task.expand_input(tmp_path / "study")  # a DICOM folder is one input, whatever it holds
    with pytest.warns(UserWarning, match="2 series found.*pass series_uid=UID"):
        largest = task.read_input(study)["volume"]
    assert largest.shape == (8, 6, 5) and np.all(largest.array == 100)
    chosen = task.read_input(study, series_uid=uid)["volume"]
    assert chosen.shape == (8, 6, 4) and np.all(chosen.array == 200) and chosen.meta["series_uid"] == uid
    with pytest.raises(DataError, match=r"series_uid='1\.2\.3' is not in it; 2 series found: ") as error:
        task.read_input(study, series_uid="1.2.3")
    message = str(error.value)
    assert f"{uid} ('FLAIR', 4 slices)" in message and "('T1', 5 slices)" in message and "\n" not in message
    nifti = write_nifti(np.zeros((8, 6, 4), np.float32), affine, tmp_path / "scan.nii.gz")
    with pytest.raises(DataError, match="scan.nii.gz is a NIfTI file; drop series_uid"):
        task.read_input(nifti, series_uid=uid)


def test_options_are_keyword_only_parameters_without_a_catch_all(task):
    for method, options in ((task.read_input, {"series_uid"}), (task.predict, {"overlap", "progress"})):
        parameters = inspect.signature(method).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in parameters)
        assert {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} == options
