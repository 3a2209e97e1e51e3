"""Several models of one task (e.g. the folds of a cross-validation run) as one model, ``Ensemble(members, kind)``.

``softmax`` / ``sigmoid`` outputs (classification, segmentation, 3D regions): the members' probabilities are
averaged, and the ensemble returns the logits of that mean (log of the mean for softmax, logit of the mean for
sigmoid, both computed in log space), so that a task uses it as it uses one model: its softmax / sigmoid is the
mean probability. ``boxes`` (detection): the members' detections of each image are fused by weighted boxes
fusion (``tta.fuse``), as test-time views are.

Uncertainty: inside ``spreading(model)``, an ensemble returns 2K channels: the K logits of the mean, then K
logits of the standard deviation of the members' probabilities per channel (their disagreement; in [0, 0.5]).
Being logits too, they pass through sliding windows and resampling as the scores do; ``split_spread`` takes them
apart again.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from toolkit.errors import ConfigError
from toolkit.inference.tta import fuse

KINDS = ("softmax", "sigmoid", "boxes")
EPS = 1e-6  # the spread is clamped to [EPS, 1 - EPS] before its logit: finite through window blending


class Ensemble(nn.Module):
    """``members``: models of one task with the same inputs and outputs; ``kind``: one of ``KINDS``."""

    def __init__(self, members: Sequence[nn.Module], kind: str) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"an ensemble averages {', '.join(KINDS)} outputs, not {kind!r}")
        if not members:
            raise ConfigError("an ensemble needs at least one model")
        self.members, self.kind, self.spread = nn.ModuleList(members), kind, False

    def forward(self, x: Any) -> Any:
        if self.kind == "boxes":
            per_member = [m(x) for m in self.members]
            return [fuse(image, [dets[i] for dets in per_member], [(False, False, False)] * len(self.members))
                    for i, image in enumerate(x)]
        logits = torch.stack([m(x).float() for m in self.members])  # (M, B, K, ...)
        log_k = math.log(len(self.members))
        if self.kind == "softmax":
            log_probs = torch.log_softmax(logits, 2)
            mean = torch.logsumexp(log_probs, 0) - log_k
            probs = log_probs.exp()
        else:
            mean = torch.logsumexp(nn.functional.logsigmoid(logits), 0) - \
                torch.logsumexp(nn.functional.logsigmoid(-logits), 0)
            probs = torch.sigmoid(logits)
        if not self.spread:
            return mean
        std = probs.std(0, unbiased=False).clamp(EPS, 1 - EPS)
        return torch.cat([mean, torch.logit(std)], 1)


@contextlib.contextmanager
def spreading(model: nn.Module) -> Iterator[None]:
    """Within it, an ``Ensemble`` also returns its spread channels (see the module docstring); any other model
    is unchanged."""
    if not isinstance(model, Ensemble) or model.kind == "boxes":
        yield
        return
    model.spread = True
    try:
        yield
    finally:
        model.spread = False


def split_spread(values: torch.Tensor, classes: int, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the first ``classes`` channels along ``dim``, the uncertainty or None): the largest of the spread channels
    after them, in the units given (logits as the model returns them, or standard deviations after a sigmoid)."""
    if values.shape[dim] == classes:
        return values, None
    scores, spread = values.split([classes, values.shape[dim] - classes], dim)
    return scores, spread.amax(dim)
