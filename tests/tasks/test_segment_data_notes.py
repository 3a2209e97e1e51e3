"""Segmentation data that is odd but usable says what was made of it on the run's first lines: classes inferred
without a classes.yaml (and values no class holds), a train set evaluated as val when there is no val split; a mask
value outside classes.yaml is an error naming the file and the value."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit.cli import main
from toolkit.data.formats.masks import load_mask_splits
from toolkit.errors import DataError


def one_pair(root: Path, values: tuple[int, ...] = (0, 1), size: int = 32) -> Path:
    """root/images/a.png + root/masks/a.png: a bright square of the last value on a dark background."""
    mask = np.full((size, size), values[0], np.uint8)
    mask[8:20, 8:20] = values[-1]
    if len(values) > 2:
        mask[24:28, 24:28] = values[1]
    image = np.where(mask > 0, 200, 30).astype(np.uint8)
    for kind, array in (("images", image), ("masks", mask)):
        (root / kind).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / kind / "a.png")
    return root


def test_one_image_without_a_val_split_trains_and_is_evaluated(tmp_path: Path, capsys) -> None:
    root = one_pair(tmp_path / "one")
    common = ["train", "segment", f"data={root}", "data.crop=32", "model.backbone=simple_cnn", "model.pretrained=false",
              "train.epochs=1", "train.batch_size=1", "train.workers=0", "train.progress=false",
              f"train.project={tmp_path / 'runs'}"]
    assert main(common) == 2  # the default data.val_split=0.2 of one image leaves none to validate
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: data.val_split=0.2 of 1 items leaves 1 to train and 0 to validate; add items or a val split, or "
        "change data.val_split"]
    assert main(common + ["data.val_split=0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"note: no {root / 'classes.yaml'}: 2 classes class0..class1 inferred from the mask values "
                        "(0, 1; ignore_index 255 left out); name them in that file, e.g. classes: [background, nucleus]")
    assert lines[1].startswith("note: no val split (data.val_split=0.0): the 1 train image(s) are evaluated as val")
    assert any(line.startswith("val metrics of ") for line in lines)
    assert (tmp_path / "runs" / "segment" / "exp" / "weights" / "best.pt").is_file()


def test_classes_inferred_from_a_stray_value_are_noted(tmp_path: Path) -> None:
    found = load_mask_splits(one_pair(tmp_path / "stray", (0, 1, 200)), val_split=0.0)
    assert len(found.classes) == 201
    assert found.notes == [f"note: no {tmp_path / 'stray' / 'classes.yaml'}: 201 classes class0..class200 inferred "
                           "from the mask values (0, 1, 200; ignore_index 255 left out); 198 of them occur in no mask: "
                           "list the classes in that file, or set ignore_index there for a value that is no class"]
    (tmp_path / "stray" / "classes.yaml").write_text("classes: [background, cell]\n")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'stray' / 'masks' / 'a.png'} holds class id 200 but there "
                                        r"are 2 classes \(0..1, ignore 255\)"):
        load_mask_splits(tmp_path / "stray", val_split=0.0)
    (tmp_path / "stray" / "classes.yaml").write_text("classes: [background, cell]\nignore_index: 200\n")
    assert load_mask_splits(tmp_path / "stray", val_split=0.0).notes == []
