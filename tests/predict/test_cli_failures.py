"""``toolkit predict``: an input that cannot be read, predicted or saved is one line naming it and the reason; the
other inputs go on, predictions.json is still written, and the exit code is 2. Never a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.predict.conftest import write_images
from toolkit.cli import main
from toolkit.tasks import task_class


def _run(capsys, *args: str) -> tuple[int, list[str]]:
    """The exit code and the report lines on stderr (the progress bar shares stderr and is left out)."""
    code = main(["predict", *args])
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    return code, [line for line in lines if line.startswith(("skipped:", "error:"))]


def test_a_failing_prediction_skips_that_input_only(make_checkpoint, tmp_path: Path, capsys, monkeypatch) -> None:
    """A library error on one odd input (here: the segmenter raising for img1) while the batch goes on."""
    images = write_images(tmp_path / "images")
    task = task_class("segment")
    predict = task.predict

    def odd(self, model, samples):
        if any("img1" in s["source"] for s in samples):
            raise RuntimeError("Given groups=1, weight of size [64, 3, 7, 7], expected input to have 3 channels\nmore")
        return predict(self, model, samples)

    monkeypatch.setattr(task, "predict", odd)
    code, errors = _run(capsys, str(make_checkpoint("segment")), str(tmp_path / "images"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert errors == [f"skipped: {images[1]}: Given groups=1, weight of size [64, 3, 7, 7], expected input to have "
                      "3 channels", "error: 1 of 3 input(s) could not be read, predicted or saved (listed above)"]
    records = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [r["source"] for r in records] == [str(images[0]), str(images[2])]  # the others of the batch
    assert all(Path(f).is_file() for r in records for f in r["files"])


def test_unreadable_and_unsavable_inputs_are_reported_and_the_rest_written(make_checkpoint, tmp_path: Path,
                                                                           capsys) -> None:
    images = write_images(tmp_path / "images")
    (tmp_path / "images" / "cut.png").write_bytes(images[0].read_bytes()[:60])
    out = tmp_path / "out"
    (out / "img2_mask.png").mkdir(parents=True)  # where img2's mask would go: saving it fails
    code, errors = _run(capsys, str(make_checkpoint("segment")), str(tmp_path / "images"), str(tmp_path / "nope.png"),
                        "--out", str(out))
    assert code == 2
    missing, cut, unsaved = sorted(errors[:-1], key=lambda line: ("not found" not in line, "Is a directory" in line))
    assert cut.startswith(f"skipped: {tmp_path / 'images' / 'cut.png'}: not a readable image")
    assert missing == f"skipped: input not found: {tmp_path / 'nope.png'}"
    assert unsaved.startswith(f"skipped: {images[2]}: ") and "Is a directory" in unsaved
    assert errors[-1] == "error: 3 of 5 input(s) could not be read, predicted or saved (listed above)"
    records = json.loads((out / "predictions.json").read_text())
    assert [Path(r["source"]).name for r in records] == ["img0.png", "img1.png"]
    assert (out / "predictions.csv").read_text().count("\n") == 3


def test_an_output_folder_that_cannot_be_made_is_one_line(make_checkpoint, tmp_path: Path, capsys) -> None:
    image = write_images(tmp_path)[0]
    (tmp_path / "file").write_text("a file, not a folder")
    code, errors = _run(capsys, str(make_checkpoint("classify")), str(image), "--out", str(tmp_path / "file" / "out"))
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write the predictions to {tmp_path / 'file'}")


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_batch_size_is_one_line(make_checkpoint, tmp_path: Path, capsys, value: str) -> None:
    image = write_images(tmp_path)[0]
    code, errors = _run(capsys, str(make_checkpoint("classify")), str(image), f"batch_size={value}")
    assert code == 2 and errors == [f"error: batch_size={value if value == '0' else repr(value)} must be a positive "
                                    "integer"]
