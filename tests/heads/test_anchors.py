"""Anchor coverage and fitting (heads/anchors.py) against boxes whose answer is known by construction."""
import numpy as np

from toolkit.heads.anchors import anchor_shapes, anchor_sizes, coverage, fit_anchor_size


def test_anchor_sizes_double_per_level() -> None:
    assert anchor_sizes("fasterrcnn", 3, 32) == ((32.0,), (64.0,), (128.0,))
    retina = anchor_sizes("retinanet", 2, 16)
    assert len(retina[0]) == 3 and np.allclose(retina[1], [32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)])


def test_coverage_counts_boxes_an_anchor_overlaps_by_half() -> None:
    anchors = anchor_shapes(((32.0,),), [1.0])
    wh = np.array([[32, 32], [40, 40], [16, 16], [64, 16]], float)  # IoU 1, 0.64, 0.25, 0.33
    assert coverage(wh, anchors) == 0.5
    assert coverage(wh, anchor_shapes(((32.0,),), [0.25, 1.0])) == 0.75  # a 1:4 anchor takes the sliver


def test_fit_picks_the_size_that_covers_small_objects() -> None:
    rng = np.random.default_rng(0)
    small = rng.uniform(6, 12, size=(200, 1)).repeat(2, axis=1)  # 6-12 px squares: 32-px anchors miss them
    five_levels = anchor_shapes(anchor_sizes("fasterrcnn", 5, 32), [0.5, 1.0, 2.0])
    assert coverage(small, five_levels) < 0.1
    size, share = fit_anchor_size(small, "fasterrcnn", 5, [0.5, 1.0, 2.0])
    assert size in (8, 11) and share > 0.95
    large = rng.uniform(40, 300, size=(200, 1)).repeat(2, axis=1)
    assert fit_anchor_size(large, "fasterrcnn", 5, [0.5, 1.0, 2.0])[1] > 0.95
