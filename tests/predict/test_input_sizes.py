"""`toolkit predict` on images of odd sizes: one under the network's minimum size (a 4 x 4 PNG) is predicted for
every 2D task (a native-size classifier scales it up to its backbone's stride), and one over the pixel limit is
one line naming it, before a pixel of it is decoded."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.classifier import native_classifier
from tests.predict.conftest import write_images
from toolkit.cli import main
from toolkit.predict import Predictor
from toolkit.tasks.classify import min_side


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.png"
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16).save(path)
    return path


@pytest.mark.parametrize("task", ["classify", "detect", "segment"])
def test_an_image_under_the_minimum_size_is_predicted(task: str, make_checkpoint, tiny: Path, tmp_path: Path,
                                                      capsys) -> None:
    ckpt = native_classifier(tmp_path / "c.pt", ["a", "b"]) if task == "classify" else make_checkpoint(task)
    if task == "classify":
        assert min_side(Predictor.from_checkpoint(ckpt, "cpu").model) == 8  # simple_cnn: three 2x2 max-pools
    code = main(["predict", str(ckpt), str(tiny), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    (record,) = json.loads((tmp_path / "out" / "predictions.json").read_text())
    if task == "classify":
        assert record["class"] in ("a", "b") and 0 < record["score"] <= 1
    if task == "segment":
        assert (record["height"], record["width"]) == (4, 4)
    if task == "detect":
        assert all(0 <= v <= 4 for d in record["detections"] for v in d["box"])


def test_an_image_over_the_pixel_limit_is_one_line(make_checkpoint, tmp_path: Path, capsys) -> None:
    images = write_images(tmp_path / "images", n=1)
    Image.new("1", (9000, 8000)).save(tmp_path / "images" / "big.png")
    code = main(["predict", str(make_checkpoint("segment")), str(tmp_path / "images"), "--out", str(tmp_path / "o"),
                 "--device", "cpu"])
    errors = re.findall(r"(?:skipped|error): .*", capsys.readouterr().err)  # the lines, whatever a progress bar adds
    assert code == 2
    assert errors[0] == (f"skipped: {tmp_path / 'images' / 'big.png'}: image is too large (9000 x 8000 pixels; the "
                         "toolkit reads up to 64 megapixels); downscale it or cut it into tiles first")
    assert errors[1:] == ["error: 1 of 2 input(s) could not be read, predicted or saved (listed above)"]
    records = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [r["source"] for r in records] == [str(images[0])]
