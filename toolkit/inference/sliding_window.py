"""3D sliding windows (MONAI's ``SlidingWindowInferer``): overlapping windows blended with Gaussian weights, with
an optional progress bar and ETA; and whole-scan segmentation mapped back onto the input grid."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from monai.data import MetaTensor
from monai.data.utils import dense_patch_slices
from monai.inferers import SlidingWindowInferer
from monai.transforms import Compose, Invertd
from torch import nn


class SlidingWindow(SlidingWindowInferer):
    """``window(image, model)``: logits (B, K, X, Y, Z) for ``image`` (B, C, X, Y, Z) of any size, from windows
    of ``roi`` voxels overlapping by ``overlap`` (fraction), ``sw_batch_size`` windows per model call, blended
    with a Gaussian (sigma 0.125 roi) so window borders do not show. ``progress``: True shows a bar with elapsed
    time and ETA; a callable gets the fraction done (0..1] after each model call."""

    def __init__(self, roi: Sequence[int], overlap: float = 0.5, sw_batch_size: int = 2,
                 progress: bool | Callable[[float], None] = False) -> None:
        super().__init__(tuple(int(s) for s in roi), sw_batch_size, overlap, mode="gaussian", progress=progress is True)
        self.report = progress if callable(progress) else None

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.report is None:
            return super().__call__(inputs, network, *args, **kwargs)
        total, done = self.model_calls(inputs.shape[2:]), 0

        def counted(x: torch.Tensor, *a: Any, **k: Any) -> Any:
            nonlocal done
            out = network(x, *a, **k)
            done += 1
            self.report(min(done / total, 1.0))
            return out
        return super().__call__(inputs, counted, *args, **kwargs)

    def model_calls(self, spatial_shape: Sequence[int]) -> int:
        """Model calls on an input of ``spatial_shape`` voxels: MONAI pads it to at least the roi, steps windows by
        ``roi * (1 - overlap)`` (a whole side where the roi spans it) and batches ``sw_batch_size`` of them."""
        size = [max(int(n), r) for n, r in zip(spatial_shape, self.roi_size)]
        interval = [r if r == n else max(int(r * (1 - self.overlap)), 1) for r, n in zip(self.roi_size, size)]
        return math.ceil(len(dense_patch_slices(size, self.roi_size, interval)) / self.sw_batch_size)


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
        return self.on_grid(image, model, next(model.parameters()).device) > self.threshold

    @torch.no_grad()
    def on_grid(self, image: MetaTensor, network: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
                activation: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid) -> torch.Tensor:
        """``activation`` of ``network``'s stitched windows (K, X, Y, Z) float on the grid of ``image``: prepared by
        the pipeline, windows on ``device``, resampled back through its inverse. ``network``: the model, or any
        callable of a window batch (B, C, x, y, z) -> (B, K, x, y, z)."""
        data = self.pipeline({"image": image})
        out = self.window(data["image"].as_tensor()[None].to(device), network)
        data["pred"] = MetaTensor(activation(out[0].float()).cpu(), meta=data["image"].meta)
        restored = Invertd("pred", transform=self.pipeline, orig_keys="image", nearest_interp=False)(data)["pred"]
        return torch.as_tensor(restored)
