"""Instance figures: every object in its own colour with its outline, the area histogram, and the sample grid."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

import torch

from toolkit.viz.instance import (
    instance_colours,
    instance_overlay,
    label_image,
    plot_area_histogram,
    plot_instance_samples,
)


def _labels() -> np.ndarray:
    labels = np.zeros((40, 60), np.uint16)
    labels[5:15, 5:15], labels[5:15, 15:25], labels[25:35, 40:55] = 1, 2, 3  # 1 and 2 touch
    return labels


def test_overlay_gives_each_object_its_colour_and_outline() -> None:
    image = np.full((40, 60, 3), 0.5, np.float32)
    labels = _labels()
    out = instance_overlay(image, labels)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert (out[labels == 0] == 128).all()  # background untouched
    colours = instance_colours(3)
    assert (colours[0] == 0).all() and len({tuple(c) for c in colours[1:]}) == 3
    for k in (1, 2, 3):
        assert tuple(out[labels == k][0]) == tuple(colours[k])  # the outline: the object's own colour
        inner = out[labels == k].astype(int)
        assert len({tuple(p) for p in inner}) == 2  # outline + blended inside
    assert tuple(out[10, 14]) == tuple(colours[1]) and tuple(out[10, 15]) == tuple(colours[2])  # touching: both edges


def test_area_histogram_to_a_path_or_a_buffer_and_the_sample_grid(tmp_path: Path) -> None:
    areas = np.random.default_rng(0).normal(200, 30, 80)
    path = plot_area_histogram(areas, tmp_path / "areas.png", unit="µm")
    buffer = plot_area_histogram([], io.BytesIO())
    for png in (path, io.BytesIO(buffer.getvalue())):
        with Image.open(png) as img:
            assert img.width > 300 and img.height > 200
    labels = _labels()
    truth = np.stack([labels == k for k in (1, 2, 3)]).astype(np.uint8)
    pred = {"masks": torch.from_numpy(truth[:, None] * np.float32(0.9)), "scores": torch.tensor([0.9, 0.3, 0.8])}
    gt = {"masks": torch.from_numpy(truth), "iscrowd": torch.tensor([0, 0, 1])}
    sample = {"image": torch.rand(40, 60, 3), "gt": gt, "pred": pred}
    out = plot_instance_samples([sample, sample], ["nucleus"], tmp_path / "val_predictions.png", conf=0.5)
    with Image.open(out) as img:
        assert img.size == (990, 660)  # 9 x 6 inches at 110 dpi


def test_label_image_by_score_with_overlaps_and_boxes() -> None:
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:10, 2:10] = masks[1, 5:15, 5:15] = masks[2, 5:15, 5:15] = True
    labels, kept = label_image(masks, np.array([0.5, 0.9, 0.4]))
    assert kept.tolist() == [1, 0] and labels.dtype == np.uint16  # the third lies under the second: no pixel left
    assert (labels == 1).sum() == 100 and (labels == 2).sum() == 64 - 25
    boxed, _ = label_image(masks, np.array([0.5, 0.9, 0.4]), np.array([[2, 2, 10, 10], [5, 5, 15, 15], [5, 5, 15, 15]]))
    assert np.array_equal(boxed, labels)
