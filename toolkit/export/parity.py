"""Parity of an exported graph with its PyTorch model on real inputs: the run's val split (capped to keep an
export quick), run through the task's own evaluation code with each backend.

Limits: classify — the same top-1 on every image and probabilities within 1e-4; segment — the same class on
>= 99.9% of the pixels; detect — val mAP (@[.5:.95] and @.5) within 0.002 and every box the PyTorch model finds
with score >= 0.25 matched by one of the same class within 0.5 px; instance — as detect, with mask and box mAP,
and the masks of every matched pair (probability > 0.5) at IoU >= 0.99; segment3d — Dice >= 0.999 between the
two backends' masks on every val case."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from toolkit.engine.trainer import evaluate
from toolkit.errors import ToolkitError

CAPS = {"classify": 256, "segment": 16, "detect": 16, "instance": 8, "segment3d": 4}  # val inputs checked per task
PROB_ATOL = 1e-4
PIXELS_SAME = 0.999
MAP_ATOL = 0.002
BOX_ATOL = 0.5  # pixels
BOX_CONF = 0.25  # PyTorch boxes at least this confident must be matched (the predict default)
MASK_IOU_MIN = 0.99  # instance: masks of matched boxes
DICE_MIN = 0.999


@dataclass
class Parity:
    """``figures`` (stored in the file's metadata), ``summary`` (one line) and ``failure`` ("" when it passed)."""

    figures: dict[str, float]
    summary: str
    failure: str = ""


class Recorder(nn.Module):
    """Calls ``model`` and keeps every output, so the task's own evaluation loop yields the raw predictions too."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.outputs: list[Any] = []

    def forward(self, x: Any) -> Any:
        out = self.model(x)
        self.outputs.append(out)
        return out


def val_inputs(task: Any, cap: int = 0) -> tuple[Dataset, Callable | None]:
    """(the first ``cap`` (default ``CAPS``) samples of the run's val split, its collate function)."""
    try:
        data = task.build_data(splits=("val",))
    except ToolkitError as e:
        raise ToolkitError(f"parity needs the run's val data, which cannot be read ({e}); give it with "
                           "data=PATH") from None
    if data.val is None or len(data.val) == 0:
        raise ToolkitError("parity needs real inputs but the run's data has no val split; give data=PATH")
    return Subset(data.val, range(min(cap or CAPS[task.name], len(data.val)))), data.collate


def example_input(task: Any, model: nn.Module, dataset: Dataset) -> torch.Tensor:
    """A real pre-processed input to trace the graph on (see ``graphs``): segment gets an odd size, so the
    model's pad-to-stride is traced; segment3d one ``data.roi`` window."""
    image = torch.as_tensor(dataset[0]["image"]).float()
    if task.name in ("detect", "instance"):
        return image
    if task.name == "segment":
        stride = getattr(model, "max_stride", 32)
        h, w = image.shape[-2:]
        return image[None, :, :h - 1 if h % stride == 0 and h > 1 else h, :w - 1 if w % stride == 0 and w > 1 else w]
    if task.name == "segment3d":
        window = torch.zeros(image.shape[0], *task.cfg.data.roi)
        part = tuple(slice(0, min(a, b)) for a, b in zip(image.shape[1:], task.cfg.data.roi))
        window[(slice(None), *part)] = image[(slice(None), *part)]
        return window[None]
    return image[None]


def check(task: Any, torch_model: nn.Module, onnx_model: nn.Module, dataset: Dataset,
          collate: Callable | None) -> Parity:
    """Both backends on ``dataset``; the figures and whether they are within the limits."""
    if task.name == "segment3d":
        return _segment3d(task, torch_model, onnx_model, dataset)
    batch_size = 32 if task.name == "classify" else 1
    runs = []
    for model in (torch_model, onnx_model):
        recorder = Recorder(model)
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
        metrics = evaluate(task, recorder, loader, torch.device("cpu"), progress=False)
        runs.append((metrics, recorder.outputs))
    return compare(task.name, *runs)


def compare(task_name: str, ours: tuple, theirs: tuple) -> Parity:
    """Parity of (metrics, raw outputs per batch) of the PyTorch model (``ours``) and the graph (``theirs``) on the
    same inputs (classify, segment, detect, instance)."""
    by_task = {"classify": _classify, "segment": _segment, "detect": _detect, "instance": _instance}
    return by_task[task_name](ours, theirs)


def _classify(ours: tuple, theirs: tuple) -> Parity:
    p, q = (torch.cat([o.float() for o in outs]).softmax(1) for _, outs in (ours, theirs))
    same, diff = int((p.argmax(1) == q.argmax(1)).sum()), float((p - q).abs().max())
    figures = {"images": len(p), "top1_same": same, "max_prob_diff": diff, "accuracy_torch": ours[0]["accuracy"],
               "accuracy_onnx": theirs[0]["accuracy"]}
    summary = (f"{len(p)} val images: top-1 the same on {same}, max |prob difference| {diff:.1e} (limit "
               f"{PROB_ATOL:.0e}); accuracy {ours[0]['accuracy']:.4f} (torch) vs {theirs[0]['accuracy']:.4f} (onnx)")
    ok = same == len(p) and diff <= PROB_ATOL
    return Parity(figures, summary, "" if ok else summary)


def _segment(ours: tuple, theirs: tuple) -> Parity:
    same = total = 0
    for a, b in zip(ours[1], theirs[1]):
        same += int((a.argmax(1) == b.argmax(1)).sum())
        total += a[:, 0].numel()
    fraction = same / max(total, 1)
    figures = {"images": len(ours[1]), "pixels": total, "pixels_same": fraction, "dice_torch": ours[0]["dice"],
               "dice_onnx": theirs[0]["dice"]}
    summary = (f"{len(ours[1])} val images: the same class on {fraction:.5%} of {total} pixels (limit "
               f"{PIXELS_SAME:.1%}); Dice {ours[0]['dice']:.4f} (torch) vs {theirs[0]['dice']:.4f} (onnx)")
    return Parity(figures, summary, "" if fraction >= PIXELS_SAME else summary)


def _detect(ours: tuple, theirs: tuple) -> Parity:
    images = [d for outs in ours[1] for d in outs], [d for outs in theirs[1] for d in outs]
    wanted = matched = 0
    shift = 0.0
    for a, b in zip(*images):
        n, found, worst = match_boxes(a, b)
        wanted, matched, shift = wanted + n, matched + found, max(shift, worst)
    gaps = {k: abs(ours[0][k] - theirs[0][k]) for k in ("map50_95", "map50")}
    figures = {"images": len(images[0]), "map50_95_torch": ours[0]["map50_95"], "map50_95_onnx": theirs[0]["map50_95"],
               "map50_torch": ours[0]["map50"], "map50_onnx": theirs[0]["map50"], "boxes": wanted,
               "boxes_matched": matched, "max_box_shift_px": shift}
    summary = (f"{len(images[0])} val images: mAP {ours[0]['map50_95']:.4f} (torch) vs {theirs[0]['map50_95']:.4f} "
               f"(onnx), mAP@.5 {ours[0]['map50']:.4f} vs {theirs[0]['map50']:.4f} (limit +-{MAP_ATOL}); "
               f"{matched} of {wanted} boxes (score >= {BOX_CONF}) matched within {BOX_ATOL} px (max shift "
               f"{shift:.2g} px)")
    ok = max(gaps.values()) <= MAP_ATOL and matched == wanted
    return Parity(figures, summary, "" if ok else summary)


def match_boxes(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], conf: float = BOX_CONF
                ) -> tuple[int, int, float]:
    """(boxes of ``ours`` with score >= ``conf``, how many of them have a partner in ``theirs`` of the same label
    within BOX_ATOL px (one-to-one, pairs chosen by the Hungarian method on the largest coordinate difference), the
    largest difference of a matched pair in pixels)."""
    wanted, pairs = box_pairs(ours, theirs, conf)
    return wanted, len(pairs), max((d for _, _, d in pairs), default=0.0)


def box_pairs(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], conf: float = BOX_CONF
              ) -> tuple[int, list[tuple[int, int, float]]]:
    """(boxes of ``ours`` with score >= ``conf``, the matched pairs as (index in ``ours``, index in ``theirs``,
    largest coordinate difference in px)); see ``match_boxes``."""
    from scipy.optimize import linear_sum_assignment

    keep = torch.nonzero(ours["scores"] >= conf).flatten()
    a, labels = ours["boxes"][keep].float().nan_to_num(), ours["labels"][keep]
    if not len(a):
        return 0, []
    b = theirs["boxes"].float().nan_to_num()
    distance = (a[:, None, :] - b[None, :, :]).abs().amax(-1)
    distance[labels[:, None] != theirs["labels"][None, :]] = float("inf")
    rows, cols = linear_sum_assignment(distance.clamp(max=1e9).numpy())
    return len(a), [(int(keep[r]), int(c), float(distance[r, c])) for r, c in zip(rows, cols)
                    if distance[r, c] <= BOX_ATOL]


def _instance(ours: tuple, theirs: tuple) -> Parity:
    images = [d for outs in ours[1] for d in outs], [d for outs in theirs[1] for d in outs]
    wanted = matched = 0
    worst = 1.0  # lowest mask IoU of a matched pair
    for a, b in zip(*images):
        n, pairs = box_pairs(a, b)
        wanted, matched = wanted + n, matched + len(pairs)
        for i, j, _ in pairs:
            ma, mb = a["masks"][i, 0] > 0.5, b["masks"][j, 0] > 0.5
            union = int((ma | mb).sum())
            worst = min(worst, int((ma & mb).sum()) / union if union else 1.0)
    keys = ("segm_map50_95", "segm_map50", "box_map50_95")
    gaps = {k: abs(ours[0][k] - theirs[0][k]) for k in keys}
    figures = {"images": len(images[0]), **{f"{k}_{side}": run[0][k] for k in keys
                                            for side, run in (("torch", ours), ("onnx", theirs))},
               "boxes": wanted, "boxes_matched": matched, "min_mask_iou": worst}
    summary = (f"{len(images[0])} val images: mask mAP {ours[0]['segm_map50_95']:.4f} (torch) vs "
               f"{theirs[0]['segm_map50_95']:.4f} (onnx), box mAP {ours[0]['box_map50_95']:.4f} vs "
               f"{theirs[0]['box_map50_95']:.4f} (limit +-{MAP_ATOL}); {matched} of {wanted} objects (score >= "
               f"{BOX_CONF}) matched within {BOX_ATOL} px, lowest mask IoU {worst:.4f} (limit {MASK_IOU_MIN})")
    ok = max(gaps.values()) <= MAP_ATOL and matched == wanted and worst >= MASK_IOU_MIN
    return Parity(figures, summary, "" if ok else summary)


def _segment3d(task: Any, torch_model: nn.Module, onnx_model: nn.Module, dataset: Dataset) -> Parity:
    from monai.metrics import compute_dice

    from toolkit.inference.sliding_window import SlidingWindow

    m = task.cfg.model
    window = SlidingWindow(task.cfg.data.roi, m.overlap, m.sw_batch_size)
    dices = []
    with torch.no_grad():
        for i in range(len(dataset)):
            image = torch.as_tensor(dataset[i]["image"])[None].float()
            a, b = ((torch.sigmoid(window(image, model)) > 0.5).reshape(1, 1, -1).float()
                    for model in (torch_model, onnx_model))
            dices.append(float(compute_dice(a, b, include_background=True, ignore_empty=False)))
    worst = min(dices) if dices else float("nan")
    figures = {"cases": len(dices), "min_dice": worst, "mean_dice": float(np.mean(dices)) if dices else float("nan")}
    summary = (f"{len(dices)} val cases: Dice between the torch and onnx masks min {worst:.5f}, mean "
               f"{figures['mean_dice']:.5f} (limit {DICE_MIN} on every case)")
    return Parity(figures, summary, "" if dices and worst >= DICE_MIN else summary)
