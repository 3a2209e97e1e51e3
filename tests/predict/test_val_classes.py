"""`toolkit val CKPT data=OTHER` on data labelled with other classes than the checkpoint's is one line naming both
lists, exit 2, in either direction: never an accuracy of 0 (fewer classes) nor an IndexError (more classes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_imagefolder
from tests.helpers.classifier import native_classifier
from toolkit.cli import main

DIGITS = [f"digit{i}" for i in range(10)]


@pytest.fixture()
def folders(tmp_path: Path, digits_arrays: dict[str, np.ndarray]) -> dict[int, Path]:
    """Real 8 x 8 digits as ImageFolders of 10 and 2 classes."""
    return {n: write_imagefolder(tmp_path / f"digits{n}", digits_arrays, classes=tuple(range(n)), per_class=2,
                                 size=8) for n in (10, 2)}


@pytest.mark.parametrize("trained,other", [(10, 2), (2, 10)])
def test_val_on_data_with_other_classes_is_refused(trained: int, other: int, folders: dict[int, Path],
                                                   tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    ckpt = native_classifier(tmp_path / "model.pt", DIGITS[:trained], source=str(folders[trained]))
    assert main(["val", str(ckpt), f"data={folders[other]}", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: the dataset's classes {DIGITS[:other]} differ from the checkpoint's {DIGITS[:trained]}; validate on "
        "data labelled with the training classes"]
    assert main(["val", str(ckpt), f"data={folders[trained]}", "--device", "cpu"]) == 0  # its own classes: fine
    assert "accuracy" in capsys.readouterr().out
