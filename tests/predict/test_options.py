"""Predict options: each task's are the keyword-only parameters of its ``read_input`` and ``predict``; anything else
is an error naming the valid ones, for every task; values are cast to the declared types and routed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.predict.conftest import write_images
from toolkit.errors import ConfigError
from toolkit.medical import write_nifti
from toolkit.predict import Predictor

OPTIONS = {"classify": {"top_k"}, "detect": {"conf", "iou", "tta"}, "segment": set(),
           "segment3d": {"series_uid", "overlap", "progress"}}


def _input(task: str, folder: Path) -> Path:
    """An input the task reads: a PNG, or for segment3d a small NIfTI volume."""
    if task != "segment3d":
        return write_images(folder)[0]
    path = folder / "scan.nii.gz"
    folder.mkdir(parents=True, exist_ok=True)
    write_nifti(np.random.default_rng(0).random((20, 18, 16), dtype=np.float32), np.diag([2.0, 2.0, 2.0, 1.0]), path)
    return path


@pytest.mark.parametrize("task", list(OPTIONS))
def test_an_unknown_option_is_an_error_listing_the_valid_ones(task: str, make_checkpoint, tmp_path: Path) -> None:
    predictor = Predictor.from_checkpoint(make_checkpoint(task), device="cpu")
    assert set(predictor.options) == OPTIONS[task]
    with pytest.raises(ConfigError) as error:
        predictor.predict(_input(task, tmp_path), bogus=1)
    message = str(error.value)
    assert message.startswith(f"unknown predict option 'bogus' for a {task} model; valid: batch_size")
    assert set(message.split("valid: ")[1].split(", ")) == {"batch_size", *OPTIONS[task]}


def test_a_near_miss_gets_a_suggestion_and_values_are_cast(make_checkpoint, tmp_path: Path) -> None:
    detector = Predictor.from_checkpoint(make_checkpoint("detect"), device="cpu")
    with pytest.raises(ConfigError, match=r"unknown predict option 'cnf' for a detect model \(did you mean 'conf'\?\)"):
        detector.predict(tmp_path / "unread.png", cnf=0.3)
    classifier = Predictor.from_checkpoint(make_checkpoint("classify"), device="cpu")
    with pytest.raises(ConfigError, match=r"^top_k='many' must be an integer"):
        classifier.check_options({"top_k": "many"})
    assert classifier.check_options({"top_k": "2"}) == ({}, {"top_k": 2})


def test_options_reach_the_task(make_checkpoint, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    classifier = Predictor.from_checkpoint(make_checkpoint("classify"), device="cpu")
    assert [len(r.top) for r in classifier.predict(images, top_k=2)] == [2, 2, 2]
    assert [len(r.top) for r in classifier.predict(images)] == [3, 3, 3]  # the default 5, capped at 3 classes
    detector = Predictor.from_checkpoint(make_checkpoint("detect"), device="cpu")
    (everything,) = detector.predict(images[0], conf=0.0)
    (confident,) = detector.predict(images[0], conf=float(np.median(everything.scores)))
    assert len(everything.boxes) > 0 and 0 < len(confident.boxes) < len(everything.boxes)
    assert confident.scores.min() >= np.median(everything.scores)


def test_cli_unknown_option_exits_2_with_one_line(make_checkpoint, tmp_path: Path) -> None:
    image = write_images(tmp_path)[0]
    out = subprocess.run([sys.executable, "-m", "toolkit", "predict", str(make_checkpoint("detect")), str(image),
                          "bogus=1", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: unknown predict option 'bogus' for a detect model; valid: batch_size, conf, iou, tta"]
    assert not (tmp_path / "out").exists()  # refused before anything is read or written
