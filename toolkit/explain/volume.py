"""3D tumour segmentation: a heatmap per region (TC / WT / ET) over the whole scan, through the sliding window.

Each window batch runs the network once: its logits, and a Grad-CAM per region of pytorch-grad-cam (target: the
region's logits summed over the voxels the model predicts in it) at the last decoder layer. Logits and raw maps
are stitched by the same Gaussian-blended sliding window (MONAI) and resampled onto the scan's grid as the
prediction is, so the mask is the one ``toolkit predict`` writes and the maps lie in the scan's geometry. Raw
(unscaled) maps are comparable between windows; each region's map is scaled to [0, 1] over the whole scan."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.explain.base import Layer, cam_maps, check_target, pick_layer, trace
from toolkit.explain.results import VolumeExplanation
from toolkit.inference.sliding_window import ScanSegmenter, SlidingWindow
from toolkit.medical.transforms import REGIONS, array_pipeline, regions_to_labels

DECODER = "decoder"  # the last decoder layer: the input of the network's output convolution


class RegionTarget:
    """Region ``channel``'s logits (K, X, Y, Z) summed over the voxels predicted in it (logit > 0): pytorch-grad-cam's
    ``SemanticSegmentationTarget`` with the mask taken from the same forward pass, window by window."""

    def __init__(self, channel: int) -> None:
        self.channel = channel

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        logits = output[self.channel]
        return (logits * (logits > 0).detach()).sum()


class VolumeExplainer:
    """``explainer(sample, target, overlap=)``: region heatmaps of a MONAI segmentation network for the scan in
    ``sample["volume"]``. ``layer``: ``decoder`` (default) or a module path of the network."""

    def __init__(self, task: Any, model: nn.Module, classes: list[str], method: str, layer: str | None) -> None:
        self.task, self.model, self.method = task, model, method
        self.regions = list(classes) or list(REGIONS)
        d = task.cfg.data
        device = next(model.parameters()).device
        decoder = trace(model, torch.zeros(1, d.channels, *d.roi, device=device)).decoder()
        named = {DECODER: Layer(DECODER, model.get_submodule(decoder))} if decoder else {}
        self.layer = pick_layer(model, named, layer, DECODER)

    def check(self, target: str) -> str:
        return check_target(target, self.regions, "region")

    def __call__(self, sample: dict[str, Any], target: str | None = None, *, overlap: float | None = None
                 ) -> VolumeExplanation:
        """``target``: TC, WT or ET; None = all three. ``overlap``: of the windows (default ``model.overlap``)."""
        start = time.perf_counter()
        picked = list(self.regions) if target is None else [check_target(target, self.regions, "region")]
        channels = [self.regions.index(r) for r in picked]
        m, k = self.task.cfg.model, len(self.regions)
        window = SlidingWindow(self.task.cfg.data.roi, m.overlap if overlap is None else overlap, m.sw_batch_size)
        segmenter = ScanSegmenter(array_pipeline(self.task.spec()), window)

        def logits_and_maps(patch: torch.Tensor) -> torch.Tensor:
            """(B, K + R, x, y, z): the window batch's logits, then a raw map per picked region."""
            logits, maps = cam_maps(self.method, self.model, self.layer, patch,
                                    [[RegionTarget(c)] * len(patch) for c in channels])
            cams = torch.from_numpy(np.stack(maps, axis=1)).to(patch.device)
            if cams.shape[2:] != patch.shape[2:]:
                cams = F.interpolate(cams, size=patch.shape[2:], mode="trilinear")
            return torch.cat([logits.detach().float(), cams], dim=1)

        both = segmenter.on_grid(self.task._model_input(sample), logits_and_maps, next(self.model.parameters()).device,
                                 lambda out: torch.cat([torch.sigmoid(out[:k]), out[k:]]))
        probs, maps = both[:k].numpy(), both[k:].numpy()
        heatmaps, scores = {}, {}
        for region, c, heat in zip(picked, channels, maps):
            heat = np.maximum(heat, 0)
            heatmaps[region] = (heat / max(float(heat.max()), 1e-12)).astype(np.float32)
            inside = probs[c] > 0.5
            scores[region] = float(probs[c][inside].mean()) if inside.any() else None
        return VolumeExplanation(sample.get("source", ""), self.method, self.layer.name, sample["volume"],
                                 regions_to_labels(probs > 0.5), heatmaps, scores,
                                 seconds=time.perf_counter() - start)
