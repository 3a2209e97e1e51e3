"""2D segmentation heatmaps: one per class region the model predicts, at a backbone stage or the decoder."""
from __future__ import annotations

import numpy as np
import pytest

from tests.explain.conftest import assert_untouched, build_predictor, state_of


def test_a_map_per_predicted_class_at_a_stage_or_the_decoder(blobs_png) -> None:
    predictor = build_predictor("segment", {"data": {"channels": 3}, "model": {"backbone": "resnet18"}},
                                ["background", "nucleus", "debris"])
    before = state_of(predictor.model)
    (result,) = predictor.explain(blobs_png(48))
    assert_untouched(before, predictor.model)
    (predicted,) = predictor.predict(blobs_png(48))
    shown = [c for c in predictor.classes[1:] if (predicted.mask == predictor.classes.index(c)).any()]
    assert list(result.heatmaps) == shown and result.layer == "stage5"  # every predicted class but the background
    for name, heatmap in result.heatmaps.items():
        assert heatmap.shape == (48, 48) and 0 <= heatmap.min() and heatmap.max() <= 1 + 1e-6
        assert 0 < result.scores[name] <= 1
    (decoder,) = predictor.explain(blobs_png(48), target=shown[0], layer="decoder")
    assert decoder.layer == "decoder" and list(decoder.heatmaps) == shown[:1]
    assert len(np.unique(decoder.heatmaps[shown[0]])) > 100  # full resolution: a value per pixel
    (maps,) = predictor.explain(blobs_png(48), method="layers")
    assert [m.shape[0] for _, m in maps.stages] == [64, 64, 128, 256, 512] and maps.filters.shape == (64, 3, 7, 7)
    with pytest.raises(Exception, match="'scorecam' does not apply to a segment model"):
        predictor.explain(blobs_png(48), method="scorecam")
