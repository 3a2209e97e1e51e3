"""Detection sizes fitted to the user's data (tasks/detect_fit.py)."""
import numpy as np

from toolkit.data.formats.detection import DetectionData, ImageRecord
from toolkit.engine.run import resolve_config
from toolkit.tasks.detect_fit import fit_sizes


def records(side: int, box: float, n: int = 10) -> DetectionData:
    boxes = np.array([[10, 10, 10 + box, 10 + box]], np.float32)
    return DetectionData(["a"], [ImageRecord(f"{i}.png", side, side // 2, boxes, np.zeros(1, np.int64))
                                 for i in range(n)])


def test_input_size_and_anchors_are_fitted_and_recorded(tmp_path) -> None:
    cfg = resolve_config("detect", [f"data={tmp_path}"])
    notes = fit_sizes(cfg, records(300, 12.0))
    assert cfg.data.img_size == 320  # the median longest side 300, rounded up to a multiple of 32
    assert cfg.model.anchor_size in (8, 11, 16)  # 12.8-px boxes at 320 px
    assert len(notes) == 2 and "320 px" in notes[0] and "cover" in notes[1]
    big = resolve_config("detect", [f"data={tmp_path}"])
    fit_sizes(big, records(4000, 1000.0))
    assert big.data.img_size == 640 and big.model.anchor_size >= 32


def test_a_given_anchor_size_that_misses_the_boxes_is_warned_about(tmp_path) -> None:
    cfg = resolve_config("detect", [f"data={tmp_path}", "data.img_size=320", "model.anchor_size=64"])
    notes = fit_sizes(cfg, records(320, 8.0))
    assert cfg.model.anchor_size == 64  # the user's choice stays
    assert len(notes) == 1 and notes[0].startswith("warning") and "model.anchor_size=" in notes[0]
    assert fit_sizes(resolve_config("detect", [f"data={tmp_path}", "data.img_size=320", "model.anchor_size=8"]),
                     records(320, 8.0)) == []
