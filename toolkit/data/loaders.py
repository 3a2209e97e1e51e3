"""DataLoaders: seeded shuffling and augmentation per epoch, worker seeding, DDP sampling, balancing."""
from __future__ import annotations

import os
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from toolkit.errors import ConfigError


def auto_workers(requested: int, device: torch.device) -> int:
    """``-1`` = auto: none on a small CPU box (workers would steal the model's cores), else up to 8."""
    if requested >= 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if device.type == "cpu":
        return 0 if cores <= 2 else min(4, cores // 4)
    return min(8, max(1, cores - 1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_transform(dataset: Any, seed: int) -> None:
    transform = getattr(dataset, "transform", None)
    if hasattr(transform, "set_seed"):
        transform.set_seed(seed % 2**32)


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    _seed_transform(info.dataset, seed)


def balanced_sampler(labels: Sequence[int], num_samples: int, generator: torch.Generator) -> WeightedRandomSampler:
    """Draw each class equally often in expectation (weights 1 / class count)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples,
                                 replacement=True, generator=generator)


def build_loader(dataset: Dataset, batch_size: int, *, train: bool, workers: int, seed: int,
                 collate: Callable | None = None, distributed: bool = False,
                 balance_labels: Sequence[int] | None = None, pin_memory: bool = False) -> DataLoader:
    """A loader whose shuffle order and augmentation depend only on (seed, epoch): see ``set_epoch``."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if distributed:
        if balance_labels is not None:
            raise ConfigError("data.balance=sampler does not work with DDP; use data.balance=weights")
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=train)
    elif train and balance_labels is not None:
        sampler = balanced_sampler(balance_labels, len(dataset), generator)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=train and sampler is None, sampler=sampler,
        num_workers=workers, collate_fn=collate, pin_memory=pin_memory, drop_last=train and len(dataset) > batch_size,
        worker_init_fn=_worker_init if workers else None, generator=generator,
        persistent_workers=False,
    )


def set_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Reseed shuffling, workers and in-process augmentation for ``epoch``: resume-exact."""
    epoch_seed = seed * 1000 + epoch
    loader.generator.manual_seed(epoch_seed)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    _seed_transform(loader.dataset, epoch_seed)
    seed_everything(epoch_seed)
