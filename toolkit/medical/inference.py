"""Sliding-window inference (MONAI): overlapping windows blended with Gaussian weights, with a progress bar and
ETA; and whole-scan segmentation mapped back onto the input grid."""
from __future__ import annotations

from typing import Sequence

import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.transforms import Compose, Invertd
from torch import nn


def sliding_window(model: nn.Module, image: torch.Tensor, roi: Sequence[int], overlap: float = 0.5,
                   sw_batch_size: int = 2, progress: bool = False) -> torch.Tensor:
    """Logits (B, K, X, Y, Z) for ``image`` (B, C, X, Y, Z) of any size: windows of ``roi`` voxels overlapping
    by ``overlap`` (fraction), blended with a Gaussian (sigma 0.125 roi) so window borders do not show.
    ``progress`` shows a bar with elapsed time and ETA over the windows."""
    return sliding_window_inference(image, tuple(int(s) for s in roi), sw_batch_size, model, overlap=overlap,
                                    mode="gaussian", progress=progress)


@torch.no_grad()
def segment_scan(model: nn.Module, image: MetaTensor, pipeline: Compose, roi: Sequence[int], overlap: float = 0.5,
                 sw_batch_size: int = 2, progress: bool = False, threshold: float = 0.5) -> torch.Tensor:
    """Binary multi-label masks (K, X, Y, Z) bool on the grid of ``image`` (C, X, Y, Z), a MetaTensor with affine.

    ``pipeline`` (invertible: orientation, spacing, normalisation) prepares the scan; sigmoid probabilities are
    resampled back through its inverse (``Invertd``) before thresholding."""
    device = next(model.parameters()).device
    data = pipeline({"image": image})
    logits = sliding_window(model, data["image"].as_tensor()[None].to(device), roi, overlap, sw_batch_size, progress)
    data["pred"] = MetaTensor(torch.sigmoid(logits[0].float()).cpu(), meta=data["image"].meta)
    restored = Invertd("pred", transform=pipeline, orig_keys="image", nearest_interp=False)(data)["pred"]
    return torch.as_tensor(restored) > threshold
