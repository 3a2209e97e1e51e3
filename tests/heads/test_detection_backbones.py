"""Every registered backbone under a detector (FCOS, 32 px): one train step and a predict."""
from __future__ import annotations

import pytest

import toolkit.backbones  # noqa: F401  (registers the backbones)
from toolkit.registry import BACKBONES


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_every_backbone_trains_and_predicts_under_fcos(train_and_predict, backbone: str) -> None:
    train_and_predict("fcos", backbone, 32)
