"""MONAI 3D segmentation networks by name: segresnet, unet, swinunetr. Input (B, C, X, Y, Z), output logits
(B, out_channels, X, Y, Z); each spatial size of a crop must be a multiple of ``divisor(arch)``."""
from __future__ import annotations

from monai.networks.nets import SegResNet, SwinUNETR, UNet
from torch import nn

from toolkit.errors import ConfigError

ARCHS = ("segresnet", "unet", "swinunetr")
DIVISORS = {"segresnet": 8, "unet": 16, "swinunetr": 32}


def divisor(arch: str) -> int:
    """Total downsampling factor: roi sizes must be multiples of it."""
    if arch not in DIVISORS:
        raise ConfigError(f"model.arch={arch!r} is unknown; valid: {', '.join(ARCHS)}")
    return DIVISORS[arch]


def check_roi(arch: str, roi: tuple[int, ...]) -> None:
    """ConfigError naming the roi and the nearest valid one unless every side is a multiple of the divisor."""
    d = divisor(arch)
    if len(roi) != 3 or any(int(s) % d or s <= 0 for s in roi):
        fixed = [max(d, round(int(s) / d) * d) for s in roi]
        raise ConfigError(f"data.roi={list(roi)} does not fit model.arch={arch}: use 3 sizes that are multiples of "
                          f"{d}, e.g. data.roi={fixed}")


def build_network(arch: str, in_channels: int, out_channels: int, init_filters: int = 16,
                  dropout: float = 0.0) -> nn.Module:
    """SegResNet (blocks 1-2-2-4, as in MONAI's BraTS tutorial), a residual UNet with 5 levels (f .. 16f), or
    SwinUNETR (``init_filters`` is its feature size, a multiple of 12)."""
    divisor(arch)
    if init_filters < 1:
        raise ConfigError(f"model.init_filters={init_filters} must be >= 1")
    if arch == "segresnet":
        if init_filters % 8:
            raise ConfigError(f"model.init_filters={init_filters} must be a multiple of 8 for segresnet (GroupNorm of "
                              f"8 groups), e.g. model.init_filters={max(8, round(init_filters / 8) * 8)}")
        return SegResNet(spatial_dims=3, init_filters=init_filters, in_channels=in_channels,
                         out_channels=out_channels, blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1),
                         dropout_prob=dropout or None)
    if arch == "unet":
        return UNet(spatial_dims=3, in_channels=in_channels, out_channels=out_channels,
                    channels=tuple(init_filters * 2 ** i for i in range(5)), strides=(2, 2, 2, 2),
                    num_res_units=2, dropout=dropout)
    if init_filters % 12:
        raise ConfigError(f"model.init_filters={init_filters} must be a multiple of 12 for swinunetr, e.g. "
                          f"model.init_filters={max(12, round(init_filters / 12) * 12)}")
    return SwinUNETR(in_channels=in_channels, out_channels=out_channels, feature_size=init_filters,
                     drop_rate=dropout, spatial_dims=3)
