"""Optimiser, warm-up + cosine schedule, EMA and mixed precision for the trainer."""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from toolkit.config import TrainConfig
from toolkit.errors import ConfigError


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and norm weights (1-D parameters)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    raise ConfigError(f"train.optimizer={cfg.optimizer!r} is unknown; valid: adamw, sgd")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per optimiser step: linear warm-up over ``warmup_epochs``, then cosine to ``lr * min_lr_ratio`` at the end
    of ``cfg.epochs``, read at every step (the trainer may shorten the run to fit ``time_limit``)."""
    if cfg.scheduler not in ("cosine", "constant"):
        raise ConfigError(f"train.scheduler={cfg.scheduler!r} is unknown; valid: cosine, constant")

    def factor(step: int) -> float:
        total = max(1, cfg.epochs * steps_per_epoch)
        warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.scheduler == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights (and buffers), or None when ``decay`` is 0."""
    if not decay:
        return None
    if not 0 < decay < 1:
        raise ConfigError(f"train.ema={decay} must be in (0, 1), e.g. 0.999, or 0 to turn it off")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def native_bf16(device: torch.device) -> bool:
    """Does ``device`` compute bfloat16 in hardware (CUDA Ampere+, CPU with AMX or AVX512-BF16)?"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return False


class Precision:
    """Autocast context + GradScaler for ``train.amp`` = none | bf16 | fp16 | auto (bf16 where native)."""

    def __init__(self, amp: str, device: torch.device) -> None:
        if amp not in ("none", "bf16", "fp16", "auto"):
            raise ConfigError(f"train.amp={amp!r} is unknown; valid: none, bf16, fp16, auto")
        if amp == "auto":
            amp = "bf16" if native_bf16(device) else "none"
        if amp == "fp16" and device.type != "cuda":
            raise ConfigError(f"train.amp=fp16 needs CUDA (device is {device}); use train.amp=bf16 or none")
        self.device_type = device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

