"""Tiled instance segmentation: on a synthetic image whose objects straddle tile borders (and one larger than the
tiles' overlap), a stand-in model that finds every object a tile shows, whole or cut, gives back each object once
and whole, in image pixels."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
from skimage.draw import disk, ellipse
from skimage.measure import label as connected

from tests.helpers.tiles import PerImageModel, as_is, double
from toolkit.inference.instance_tiles import TiledInstances
from toolkit.inference.tiles import tile_windows

H, W, TILE = 300, 340, 100  # 100-px tiles every 75 px: inner edges at 75, 100, 150, 175, ...


class PerfectTile(PerImageModel):
    """Stand-in Mask R-CNN: one mask per connected bright region of each tile (what the tile shows of an object),
    score from the region's size so that the order is known, label 0."""

    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        regions = connected(image[0].numpy() > 0.5)
        masks = np.stack([regions == k for k in range(1, regions.max() + 1)]) if regions.max() else \
            np.zeros((0, *regions.shape), bool)
        scores = torch.tensor([0.5 + 0.4 * m.mean() for m in masks], dtype=torch.float32).reshape(-1)
        return {"boxes": torch.zeros(len(masks), 4), "scores": scores,
                "labels": torch.zeros(len(masks), dtype=torch.long),
                "masks": torch.from_numpy(masks[:, None].astype(np.float32))}


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3), truth label image): disks of radius 4-9 on a jittered 26-px grid (>= 3 px apart), and one
    60 x 24 px ellipse, larger than the 25-px overlap, across a tile corner."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((H, W), np.int32)
    ellipse_rows, ellipse_cols = ellipse(160, 175, 12, 30, (H, W))
    truth[ellipse_rows, ellipse_cols] = 1
    for cy in range(12, H - 8, 26):
        for cx in range(12, W - 8, 26):
            rows, cols = disk((cy + rng.integers(-3, 4), cx + rng.integers(-3, 4)), rng.integers(4, 10), shape=(H, W))
            grown = np.zeros((H, W), bool)
            near = np.arange(-3, 4)
            grown[np.clip(rows[:, None] + near, 0, H - 1), np.clip(cols[:, None] + near, 0, W - 1)] = True
            if not truth[grown].any():  # 3 px clear of every object so far
                truth[rows, cols] = truth.max() + 1
    image = np.repeat((truth > 0).astype(np.float32)[:, :, None], 3, axis=2)
    return image, truth


def _cut_by_some_tile(truth: np.ndarray) -> int:
    """How many objects some tile sees only in part."""
    cut = set()
    for y, x, th, tw in tile_windows(H, W, TILE):
        inside = np.unique(truth[y:y + th, x:x + tw])
        cut |= {k for k in inside[inside > 0] if (truth == k).sum() != (truth[y:y + th, x:x + tw] == k).sum()}
    return len(cut)


def _matched(masks: np.ndarray, truth: np.ndarray) -> list[int]:
    """For each predicted mask, the truth object it equals exactly (0: none)."""
    out = []
    for mask in masks:
        ids = np.unique(truth[mask])
        out.append(int(ids[0]) if len(ids) == 1 and ids[0] and np.array_equal(truth == ids[0], mask) else 0)
    return out


@pytest.mark.parametrize("transform", [as_is, double])
def test_objects_across_tile_borders_come_back_once_and_whole(transform: Callable) -> None:
    image, truth = _scene()
    n = int(truth.max())
    assert n > 100 and _cut_by_some_tile(truth) > 40  # many objects straddle an inner tile edge
    model = PerfectTile()
    found = TiledInstances(TILE, transform, conf=0.5, iou=0.5, batch=4)(image, model)
    assert found["masks"].shape == (n, H, W) and found["masks"].dtype == bool
    matched = _matched(found["masks"], truth)
    assert sorted(matched) == list(range(1, n + 1))  # each object once, none cut in two, none twice
    assert (np.diff(found["scores"]) <= 0).all() and set(found["labels"].tolist()) == {0}
    for box, mask in zip(found["boxes"].astype(int), found["masks"]):  # x1, y1, x2, y2; x2/y2 exclusive
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    windows = len(tile_windows(H, W, TILE))
    assert windows == 20 and model.calls == [4] * 5
    compact = TiledInstances(TILE, transform, conf=0.5, iou=0.5, batch=4)(image, model, dense=False)
    assert np.array_equal(compact["boxes"], found["boxes"]) and len(compact["masks"]) == n
    for (x1, y1, x2, y2), crop, mask in zip(found["boxes"].astype(int), compact["masks"], found["masks"]):
        assert np.array_equal(crop, mask[y1:y2, x1:x2])  # each object's mask over its box only


def test_one_pass_when_the_image_fits_and_the_score_threshold() -> None:
    image, truth = _scene(1)
    model = PerfectTile()
    for tile in (0, 400):
        found = TiledInstances(tile, as_is, conf=0.5)(image, model)
        assert sorted(_matched(found["masks"], truth)) == list(range(1, truth.max() + 1))
    assert model.calls == [1, 1]
    assert len(TiledInstances(0, as_is, conf=0.95)(image, model)["masks"]) == 0
    empty = TiledInstances(TILE, as_is)(np.zeros((H, W, 3), np.float32), model)
    assert empty["masks"].shape == (0, H, W) and empty["boxes"].shape == (0, 4)


def test_a_bigger_overlap_keeps_every_object_whole_in_some_tile() -> None:
    image, truth = _scene(2)
    found = TiledInstances(TILE, as_is, overlap=70)(image, PerfectTile())
    assert sorted(_matched(found["masks"], truth)) == list(range(1, truth.max() + 1))


def test_pieces_of_an_object_larger_than_a_tile_never_chain_into_one_blob() -> None:
    """A bright band no tile sees whole (junk of an untrained model looks like this): every tile's piece is cut,
    and pieces are joined only while their union fits in one tile."""
    image = np.zeros((H, W, 3), np.float32)
    image[60:120, :] = 1.0  # 60 x 340 px: wider than any 100-px tile
    found = TiledInstances(TILE, as_is)(image, PerfectTile())
    widths = found["boxes"][:, 2] - found["boxes"][:, 0]
    assert len(found["masks"]) >= 4 and widths.max() <= TILE
    assert (found["masks"].any(0) == (image[:, :, 0] > 0)).all()  # the band is covered, nothing else
