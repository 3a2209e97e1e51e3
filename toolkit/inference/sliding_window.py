"""3D sliding windows (MONAI's ``SlidingWindowInferer``): overlapping windows blended with Gaussian weights, with
an optional progress bar and ETA; and whole-scan segmentation mapped back onto the input grid."""
from __future__ import annotations

from typing import Sequence

import torch
from monai.data import MetaTensor
from monai.inferers import SlidingWindowInferer
from monai.transforms import Compose, Invertd
from torch import nn


class SlidingWindow(SlidingWindowInferer):
    """``window(image, model)``: logits (B, K, X, Y, Z) for ``image`` (B, C, X, Y, Z) of any size, from windows
    of ``roi`` voxels overlapping by ``overlap`` (fraction), ``sw_batch_size`` windows per model call, blended
    with a Gaussian (sigma 0.125 roi) so window borders do not show. ``progress`` shows a bar with elapsed time
    and ETA over the windows."""

    def __init__(self, roi: Sequence[int], overlap: float = 0.5, sw_batch_size: int = 2,
                 progress: bool = False) -> None:
        super().__init__(tuple(int(s) for s in roi), sw_batch_size, overlap, mode="gaussian", progress=progress)


class ScanSegmenter:
    """``segmenter(image, model)``: binary multi-label masks (K, X, Y, Z) bool on the grid of ``image``
    (C, X, Y, Z), a MetaTensor with affine.

    ``pipeline`` (invertible: orientation, spacing, normalisation) prepares the scan, ``window`` runs the
    model over it; sigmoid probabilities are resampled back through the pipeline's inverse (``Invertd``)
    before thresholding at ``threshold``."""

    def __init__(self, pipeline: Compose, window: SlidingWindow, threshold: float = 0.5) -> None:
        self.pipeline, self.window, self.threshold = pipeline, window, threshold

    @torch.no_grad()
    def __call__(self, image: MetaTensor, model: nn.Module) -> torch.Tensor:
        device = next(model.parameters()).device
        data = self.pipeline({"image": image})
        logits = self.window(data["image"].as_tensor()[None].to(device), model)
        data["pred"] = MetaTensor(torch.sigmoid(logits[0].float()).cpu(), meta=data["image"].meta)
        restored = Invertd("pred", transform=self.pipeline, orig_keys="image", nearest_interp=False)(data)["pred"]
        return torch.as_tensor(restored) > self.threshold
