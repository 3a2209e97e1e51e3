"""Tiled detection: the windows cover the image, boxes come back in image pixels, an object cut by an inner tile
edge is dropped there and the tiles that see it whole merge into one box."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch

from tests.helpers.tiles import PerImageModel, as_is, double
from toolkit.inference.tiles import TiledDetector, tile_windows
from toolkit.inference.tta import DetectionTTA

# x1, y1, x2, y2 of a bright object (x2, y2 exclusive): with 100-px tiles every 75 px it is whole in the tiles at
# (y, x) = (75, 75) and (75, 150), and cut by the bottom edge of those at (0, 75) and (0, 150)
SQUARE = [160.0, 90.0, 172.0, 110.0]


class BrightPatch(PerImageModel):
    """Stand-in detector: one box (score 0.9, label 1) around the pixels above 0.5 of each image, if any."""

    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
        boxes = (torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()[None] if len(xs)
                 else torch.zeros(0, 4))
        return {"boxes": boxes, "scores": torch.full((len(boxes),), 0.9),
                "labels": torch.ones(len(boxes), dtype=torch.long)}


def _image(h: int = 250, w: int = 400) -> np.ndarray:
    image = np.zeros((h, w, 3), np.float32)
    x1, y1, x2, y2 = map(int, SQUARE)
    image[y1:y2, x1:x2] = 1.0
    return image


def test_tile_windows_cover_the_image_with_overlap() -> None:
    windows = tile_windows(300, 200, 128)
    covered = np.zeros((300, 200), bool)
    for y, x, h, w in windows:
        assert (h, w) == (128, 128) and y + h <= 300 and x + w <= 200
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    assert tile_windows(100, 60, 128) == [(0, 0, 100, 60)]


@pytest.mark.parametrize("transform", [as_is, double])
def test_an_object_seen_by_several_tiles_comes_back_once_in_image_pixels(transform: Callable) -> None:
    model = BrightPatch()
    found = TiledDetector(100, transform, batch=4)(_image(), model)
    assert found["boxes"].tolist() == [SQUARE] and found["scores"].tolist() == pytest.approx([0.9])
    n = len(tile_windows(250, 400, 100))
    assert n == 15 and model.calls == [4, 4, 4, 3]


def test_whole_image_views_and_score_threshold() -> None:
    model = BrightPatch()
    assert TiledDetector(0, as_is)(_image(), model)["boxes"].tolist() == [SQUARE]
    assert TiledDetector(400, as_is)(_image(), model)["boxes"].tolist() == [SQUARE]
    assert model.calls == [1, 1]  # the image fits: one window, one call
    fused = TiledDetector(100, as_is, DetectionTTA("hflip"))(_image(), model)
    torch.testing.assert_close(fused["boxes"], torch.tensor([SQUARE]))
    assert len(TiledDetector(100, as_is, conf=0.95)(_image(), model)["boxes"]) == 0
