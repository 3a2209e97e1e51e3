"""The measures of explanation quality can fail: the sanity check flags maps that do not depend on the weights,
the pointing game a peak outside the object, deletion a map that points at the wrong pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from toolkit.explain.quality import dilated, deletion_drops, peak_inside, randomised, rank_correlation

SANITY = 0.3  # the benchmark's threshold: trained and re-initialised maps must correlate less than this


def test_the_sanity_check_flags_maps_that_ignore_the_model(digits_predictor, digit_images) -> None:
    model = digits_predictor.model
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    random_model = randomised(model)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # the original is kept
    changed = [k for k, v in random_model.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, weights[k])]
    assert len(changed) >= len([k for k in weights if k.endswith("weight")])
    edge_maps = [np.abs(np.gradient(image.astype(float))[0]) for image in digit_images]  # ignores any model
    same = np.mean([rank_correlation(m, m) for m in edge_maps])
    assert same == pytest.approx(1.0) and same >= SANITY  # such maps fail the check
    assert rank_correlation(edge_maps[0], -edge_maps[0]) == pytest.approx(-1.0)
    assert rank_correlation(np.zeros((4, 4)), edge_maps[0][:4, :4]) == 0.0  # a constant map ranks nothing


def test_the_pointing_game_fails_a_peak_outside_the_object() -> None:
    heat = np.zeros((20, 30), np.float32)
    heat[5, 22] = 1.0
    assert peak_inside(heat, (20, 3, 25, 8)) and not peak_inside(heat, (0, 0, 10, 10))
    mask = np.zeros((9, 9, 9), bool)
    mask[4, 4, 4] = True
    grown = dilated(mask, (2.0, 2.0, 2.0), 5.0)  # 5 mm at 2 mm voxels: 2 voxels along an axis, not 3
    assert grown[4, 4, 6] and not grown[4, 4, 7] and grown[5, 5, 5]
    volume_heat = np.zeros((9, 9, 9))
    volume_heat[4, 4, 7] = 1
    assert not peak_inside(volume_heat, grown) and peak_inside(volume_heat, dilated(mask, (2.0, 2.0, 2.0), 6.0))


def test_deletion_tells_a_faithful_map_from_a_wrong_one() -> None:
    """A linear model whose class 0 is the brightness of the top-left corner: removing what a map pointing there
    ranks highest lowers that class more than random removal; a map pointing at the empty corner does not."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
    corner = torch.zeros(16, 16)
    corner[:6, :6] = 1.0
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[0] = corner.flatten() * 0.1
    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.uniform(0, 0.05, (8, 1, 16, 16)), dtype=torch.float32)
    images[:, :, :6, :6] += 0.9
    right = corner.numpy() + rng.uniform(0, 0.01, (8, 16, 16))  # distinct values: a ranking without ties
    wrong = np.flip(right, axis=(1, 2)).copy()
    guided, random = deletion_drops(model, images, right, [0] * 8)
    assert (guided > random).mean() >= 0.8
    guided, random = deletion_drops(model, images, wrong, [0] * 8)
    assert (guided > random).mean() < 0.8
