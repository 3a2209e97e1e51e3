"""Property tests of the detection augmentation: boxes follow the image and stay valid."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.data.transforms import Augment, detection_pipeline


@st.composite
def samples(draw: st.DrawFn) -> dict:
    h, w = draw(st.integers(16, 96)), draw(st.integers(16, 96))
    n = draw(st.integers(0, 5))
    boxes = []
    for _ in range(n):
        x1, y1 = draw(st.integers(0, w - 4)), draw(st.integers(0, h - 4))
        boxes.append([x1, y1, draw(st.integers(x1 + 2, w)), draw(st.integers(y1 + 2, h))])
    image = np.random.default_rng(draw(st.integers(0, 99))).random((h, w, 3), dtype=np.float32)
    return {"image": image, "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "labels": np.arange(n, dtype=np.int64)}


@settings(max_examples=40, deadline=None)
@given(samples(), st.integers(0, 2**16))
def test_boxes_stay_inside_the_image(sample: dict, seed: int) -> None:
    aug = Augment(hflip=0.5, vflip=0.5, rotate90=0.5, translate=0.2, scale=0.3, rotate=15, color=0.3)
    out = detection_pipeline(64, True, aug, seed=seed)(sample)
    _, h, w = out["image"].shape
    boxes = out["boxes"].numpy()
    assert boxes.shape[0] == out["labels"].shape[0] <= sample["boxes"].shape[0]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert set(out["labels"].tolist()) <= set(sample["labels"].tolist())


@settings(max_examples=30, deadline=None)
@given(samples())
def test_double_flip_is_identity(sample: dict) -> None:
    flip = detection_pipeline(0, True, Augment(hflip=1.0, vflip=1.0), min_visibility=0.0)
    once = flip(sample)
    twice = flip({"image": once["image"].permute(1, 2, 0).numpy(), "boxes": once["boxes"].numpy(),
                  "labels": once["labels"].numpy()})
    assert np.array_equal(twice["image"].permute(1, 2, 0).numpy(), sample["image"])
    assert np.allclose(twice["boxes"].numpy(), sample["boxes"], atol=1e-4)
    assert np.array_equal(twice["labels"].numpy(), sample["labels"])
    if len(sample["boxes"]):
        w = sample["image"].shape[1]
        assert np.allclose(once["boxes"][:, 0].numpy(), w - sample["boxes"][:, 2], atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16))
def test_boxes_leaving_the_crop_are_dropped_with_their_labels(seed: int) -> None:
    """A 5x5 grid of 10-px boxes, each labelled by its index, is shifted by up to 40 px: a box is
    kept exactly when at least ``min_visibility`` of it stays inside, and keeps its own label."""
    grid = [(x, y) for y in range(0, 100, 20) for x in range(0, 100, 20)]
    boxes = np.array([[x, y, x + 10, y + 10] for x, y in grid], np.float32)
    sample = {"image": np.zeros((100, 100, 3), np.float32), "boxes": boxes, "labels": np.arange(len(grid))}
    out = detection_pipeline(0, True, Augment(hflip=0.0, translate=0.4), min_visibility=0.5, seed=seed)(sample)
    kept = dict(zip(out["labels"].tolist(), out["boxes"].numpy()))
    whole = [k for k, b in kept.items() if np.allclose(b[2:] - b[:2], 10, atol=1e-3)]
    assert whole, "some grid box always stays whole under a shift of at most 40 px"
    shift = kept[whole[0]][:2] - boxes[whole[0], :2]
    for label, box in enumerate(boxes):
        moved = np.clip(box + np.tile(shift, 2), 0, 100)
        visible = max(0.0, moved[2] - moved[0]) * max(0.0, moved[3] - moved[1]) / 100.0
        if abs(visible - 0.5) > 0.05:
            assert (label in kept) == (visible > 0.5), (label, visible)
        if label in kept:
            assert np.allclose(kept[label], moved, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16))
def test_a_crop_cuts_boxes_at_its_edge_and_drops_those_thinner_than_min_side(seed: int) -> None:
    """Pixels hold their own (x, y), so the output's first pixel tells where the crop began: every box is
    the input box clipped to the crop, and it is dropped exactly when a side of that is under ``min_side``."""
    ys, xs = np.mgrid[0:100, 0:120].astype(np.float32)
    image = np.dstack([xs / 255, ys / 255, np.zeros_like(xs)])
    grid = [(x, y) for y in range(0, 100, 14) for x in range(0, 120, 14)]
    boxes = np.array([[x, y, x + 12, y + 12] for x, y in grid], np.float32)
    sample = {"image": image, "boxes": boxes, "labels": np.arange(len(grid))}
    out = detection_pipeline(0, True, Augment(hflip=0.0), min_visibility=0.0, crop=0.3, min_side=4.5,
                             seed=seed)(sample)
    crop = out["image"].permute(1, 2, 0).numpy()
    x0, y0 = (round(float(v) * 255) for v in crop[0, 0, :2])
    h, w = crop.shape[:2]
    kept = dict(zip(out["labels"].tolist(), out["boxes"].numpy()))
    for label, box in enumerate(boxes):
        cut = np.clip(box - [x0, y0, x0, y0], 0, [w, h, w, h])
        assert (label in kept) == bool(min(cut[2] - cut[0], cut[3] - cut[1]) >= 4.5), (label, cut)
        if label in kept:
            assert np.allclose(kept[label], cut, atol=1e-3)


def test_a_crop_is_resized_back_to_the_longest_side() -> None:
    sample = {"image": np.zeros((100, 80, 3), np.float32), "boxes": np.zeros((0, 4), np.float32),
              "labels": np.zeros(0, np.int64)}
    sizes = {max(detection_pipeline(64, True, Augment(hflip=0.0), crop=0.3, seed=s)(sample)["image"].shape[1:])
             for s in range(20)}
    assert sizes == {64}
