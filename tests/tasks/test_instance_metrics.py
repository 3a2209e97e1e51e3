"""Instance metrics against hand-made cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.tasks.instance_metrics import THRESHOLDS, InstanceMetrics, match_ious, matching

H = W = 40


def _box(y: int, x: int, h: int, w: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[y:y + h, x:x + w] = 1
    return mask


def _labels(masks: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((H, W), np.int64)
    for i, m in enumerate(masks):
        out[m > 0] = i + 1
    return out


# 3 true 10x10 squares; predictions: one covering 6/10 of the first (IoU 0.6), one 4/10 of the second (IoU 0.4),
# one where there is nothing (a false positive). The third true square is missed.
TRUTH = [_box(0, 0, 10, 10), _box(20, 0, 10, 10), _box(0, 20, 10, 10)]
PRED = [_box(0, 0, 10, 6), _box(20, 0, 10, 4), _box(30, 30, 5, 5)]
# threshold: (tp, fp, fn); the IoU-0.6 pair counts up to 0.6, the IoU-0.4 pair only below 0.4
KNOWN = {0.3: (2, 1, 1), 0.5: (1, 2, 2), 0.6: (1, 2, 2), 0.7: (0, 3, 3), 0.9: (0, 3, 3)}


@pytest.mark.parametrize("thresh", sorted(KNOWN))
def test_matching_counts_and_scores(thresh: float) -> None:
    tp, fp, fn = KNOWN[thresh]
    r = matching(_labels(TRUTH), _labels(PRED), thresh)
    assert (r["tp"], r["fp"], r["fn"]) == (tp, fp, fn)
    assert r["accuracy"] == pytest.approx(tp / (tp + fp + fn))
    assert r["precision"] == pytest.approx(tp / 3) and r["recall"] == pytest.approx(tp / 3)
    assert r["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    matched_iou = {2: 0.6 + 0.4, 1: 0.6, 0: 0.0}[tp]
    assert r["pq"] == pytest.approx(matched_iou / (tp + fp / 2 + fn / 2))


def test_matching_is_one_to_one_and_maximises_pairs() -> None:
    """Two predictions on one object: one hit, one false positive. At a low threshold the assignment prefers two
    pairs to one better pair."""
    truth = _labels([_box(0, 0, 10, 10)])
    pred = np.zeros((H, W), np.int64)
    pred[0:10, 0:6], pred[0:10, 6:10] = 1, 2
    assert (lambda r: (r["tp"], r["fp"], r["fn"]))(matching(truth, pred, 0.5)) == (1, 1, 0)
    iou = np.array([[0.9, 0.3], [0.35, 0.0]])  # greedy would take 0.9 and leave one pair at 0.3
    rows, cols = match_ious(iou, 0.3)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]
    rows, cols = match_ious(iou, 0.5)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0)]


def _item(masks: list[np.ndarray], scores: list[float] | None = None, crowd: list[int] | None = None) -> dict:
    item = {"masks": np.stack(masks) if masks else np.zeros((0, H, W), np.uint8),
            "labels": np.zeros(len(masks), np.int64)}
    if scores is not None:
        item["scores"] = np.asarray(scores, np.float32)
    else:
        item["iscrowd"] = np.asarray(crowd or [0] * len(masks), np.int64)
    return item


def test_instance_metrics_known_case() -> None:
    metrics = InstanceMetrics(num_classes=1, conf=0.5)
    low = _box(35, 0, 5, 5)  # a prediction under conf: left out of the matching scores and the count
    metrics.update([_item(PRED + [low], [0.9, 0.8, 0.7, 0.2])], [_item(TRUTH)], names=["a.png"])
    r = metrics.compute()
    for thresh in THRESHOLDS:
        tp, fp, fn = KNOWN[thresh] if thresh in KNOWN else (0, 3, 3)
        t = round(thresh * 100)
        assert r[f"acc{t}"] == pytest.approx(tp / (tp + fp + fn))
        assert r[f"f1_{t}"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert r[f"precision{t}"] == pytest.approx(tp / 3) and r[f"recall{t}"] == pytest.approx(tp / 3)
    assert r["pq"] == pytest.approx(0.6 / (1 + 1 + 1), abs=1e-5)  # MONAI: one pair at IoU 0.6, 2 FP, 2 FN
    assert r["pq"] == pytest.approx(matching(_labels(TRUTH), _labels(PRED))["pq"], abs=1e-5)
    assert (r["count_true"], r["count_pred"], r["count_error_pct"]) == (3, 3, 0)
    # COCO AP@.5: ranked by score, the first prediction is the only hit -> precision 1 up to recall 1/3
    assert r["segm_map50"] == pytest.approx(34 / 101, abs=1e-4)
    row = metrics.per_image()[0]
    assert row["name"] == "a.png" and (row["tp50"], row["fp50"], row["fn50"]) == (1, 2, 2)
    assert row["acc50"] == pytest.approx(0.2) and row["pq"] == pytest.approx(0.2, abs=1e-5)


def test_perfect_predictions_and_crowd_regions() -> None:
    """Exact masks score 1 everywhere; a prediction on a crowd region is neither a hit nor a false positive,
    and a missed crowd region is no false negative."""
    crowd_region = _box(30, 30, 8, 8)
    metrics = InstanceMetrics(num_classes=1)
    metrics.update([_item(TRUTH + [_box(31, 31, 6, 6)], [0.9, 0.9, 0.9, 0.9])],
                   [_item(TRUTH + [crowd_region], crowd=[0, 0, 0, 1])])
    metrics.update([_item([], [])], [_item([crowd_region], crowd=[1])])  # nothing to find, nothing found
    r = metrics.compute()
    assert r["acc90"] == r["f1_50"] == r["recall90"] == r["precision50"] == 1.0
    assert r["pq"] == pytest.approx(1.0, abs=1e-5)
    assert r["segm_map50_95"] == pytest.approx(1.0) and r["box_map50"] == pytest.approx(1.0)
    assert (r["count_true"], r["count_pred"]) == (3, 3)


def test_count_error_in_percent() -> None:
    metrics = InstanceMetrics(num_classes=1)
    metrics.update([_item(TRUTH[:2] + [_box(30, 30, 5, 5), _box(30, 20, 5, 5)], [0.9] * 4)], [_item(TRUTH)])
    r = metrics.compute()
    assert r["count_error_pct"] == pytest.approx(100 / 3)
    assert (r["count_true"], r["count_pred"]) == (3, 4)


def test_undefined_ratios() -> None:
    """No predictions: precision is 0 (not 1); an image with nothing to find and nothing found scores 1."""
    metrics = InstanceMetrics(num_classes=1)
    metrics.update([_item([], [])], [_item(TRUTH)])
    r = metrics.compute()
    assert r["precision50"] == r["recall50"] == r["acc50"] == r["f1_50"] == 0.0
    assert r["count_error_pct"] == -100.0
    empty = np.zeros((H, W), np.int64)
    assert matching(empty, empty)["accuracy"] == matching(empty, empty)["precision"] == 1.0
