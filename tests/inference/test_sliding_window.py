"""3D sliding windows: the blended windows equal one pass over the whole volume for a voxel-wise model, and
whole-scan segmentation comes back on the scan's own grid."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from toolkit.inference.sliding_window import ScanSegmenter, SlidingWindow
from toolkit.medical.transforms import PipelineSpec, array_pipeline, to_meta_tensor


def _voxelwise(weight: float, bias: float, out_channels: int = 1) -> nn.Module:
    """A 1x1x1 convolution: each output voxel depends on its own input voxel only."""
    conv = nn.Conv3d(1, out_channels, 1)
    nn.init.constant_(conv.weight, weight)
    nn.init.constant_(conv.bias, bias)
    return conv.eval()


def test_blended_windows_equal_the_whole_volume_for_a_voxelwise_model() -> None:
    model = _voxelwise(2.0, -1.0, out_channels=3)
    image = torch.rand(1, 1, 40, 19, 35)  # larger than the roi in two axes, smaller in one
    with torch.no_grad():
        logits = SlidingWindow((32, 32, 32), overlap=0.5, sw_batch_size=2)(image, model)
        whole = model(image)
    assert logits.shape == (1, 3, 40, 19, 35)
    torch.testing.assert_close(logits, whole, atol=1e-5, rtol=1e-5)


def test_scan_masks_come_back_on_the_input_grid() -> None:
    rng = np.random.default_rng(0)
    array = rng.choice([0.2, 0.8], size=(20, 14, 9)).astype(np.float32)
    affine = np.diag([-1.5, -1.0, 2.0, 1.0])  # LPS-like: the pipeline flips two axes to RAS and back
    segment = ScanSegmenter(array_pipeline(PipelineSpec()), SlidingWindow((16, 16, 16)))
    mask = segment(to_meta_tensor(array, affine), _voxelwise(10.0, 0.0))  # z-scored 0.8 -> +1 -> logit 10
    assert mask.dtype == torch.bool and mask.shape == (1, 20, 14, 9)
    np.testing.assert_array_equal(mask[0].numpy(), array > 0.5)
