"""The reference: a plain MONAI BraTS-tutorial-style loop (SegResNet, DiceLoss, random crops, Adam 1e-4, cosine,
sliding-window validation), written the way the MONAI tutorial writes it. Used by the segment3d benchmarks."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from monai.data import DataLoader, Dataset, load_decathlon_datalist
from monai.inferers import sliding_window_inference
from monai.losses import DiceLoss
from monai.metrics import DiceMetric
from monai.networks.nets import SegResNet
from monai.transforms import (
    Compose, ConvertToMultiChannelBasedOnBratsClassesd, EnsureChannelFirstd, LoadImaged, NormalizeIntensityd,
    Orientationd, RandFlipd, RandScaleIntensityd, RandShiftIntensityd, RandSpatialCropd,
)


def tutorial_net(init_filters: int = 16) -> SegResNet:
    return SegResNet(blocks_down=[1, 2, 2, 4], blocks_up=[1, 1, 1], init_filters=init_filters, in_channels=4,
                     out_channels=3, dropout_prob=0.2)


def tutorial_transforms(roi: tuple[int, int, int]) -> tuple[Compose, Compose]:
    keys = ["image", "label"]
    head = [LoadImaged(keys, reader="NibabelReader"), EnsureChannelFirstd(keys),
            ConvertToMultiChannelBasedOnBratsClassesd("label"), Orientationd(keys, axcodes="RAS")]
    train = Compose(head + [
        RandSpatialCropd(keys, roi_size=roi, random_size=False),
        RandFlipd(keys, prob=0.5, spatial_axis=0), RandFlipd(keys, prob=0.5, spatial_axis=1),
        RandFlipd(keys, prob=0.5, spatial_axis=2),
        NormalizeIntensityd("image", nonzero=True, channel_wise=True),
        RandScaleIntensityd("image", factors=0.1, prob=1.0), RandShiftIntensityd("image", offsets=0.1, prob=1.0)])
    val = Compose(head + [NormalizeIntensityd("image", nonzero=True, channel_wise=True)])
    return train, val


def tutorial_roi(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The tutorial crops 224 x 224 x 144 of 240 x 240 x 155: ~93 % of each side, here rounded to 8."""
    return tuple(max(8, int(s * 0.93) // 8 * 8) for s in shape[-3:])


def cpu_budget(limit: float, budget_file: Path | None) -> float:
    """The CPU-seconds budget: ``limit``, or the number in ``budget_file`` once it exists."""
    if budget_file is not None and budget_file.is_file():
        return float(budget_file.read_text())
    return limit


def train_plain(root: Path, cpu_seconds: float, roi: tuple[int, int, int] | None = None, lr: float = 1e-4,
                epochs_for_schedule: int = 100, seed: int = 0, budget_file: Path | None = None) -> dict[str, Any]:
    """Train until ``cpu_seconds`` of process CPU time are used (or the number written into ``budget_file``
    meanwhile; checked per step), then validate once."""
    torch.manual_seed(seed)
    files = {k: load_decathlon_datalist(str(root / "dataset.json"), True, k, base_dir=str(root))
             for k in ("training", "validation")}
    if roi is None:
        first = Compose([LoadImaged("image", reader="NibabelReader"), EnsureChannelFirstd("image")])
        roi = tutorial_roi(tuple(first(files["training"][0])["image"].shape))
    train_t, val_t = tutorial_transforms(roi)
    loader = DataLoader(Dataset(files["training"], train_t), batch_size=1, shuffle=True, num_workers=0)
    model = tutorial_net()
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    optimizer = torch.optim.Adam(model.parameters(), lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs_for_schedule)
    start, steps, epochs = time.process_time(), 0, 0
    while time.process_time() - start < cpu_budget(cpu_seconds, budget_file):
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(batch["image"]), batch["label"].float())
            loss.backward()
            optimizer.step()
            steps += 1
            if time.process_time() - start >= cpu_budget(cpu_seconds, budget_file):
                break
        epochs += 1
        scheduler.step()
    train_cpu = time.process_time() - start
    dice = validate_plain(model, files["validation"], val_t, roi)
    return {"roi": list(roi), "steps": steps, "epochs": epochs, "train_cpu_s": round(train_cpu, 1), **dice}


@torch.no_grad()
def validate_plain(model: torch.nn.Module, files: list[dict], transform: Compose,
                   roi: tuple[int, int, int]) -> dict[str, float]:
    model.eval()
    metric = DiceMetric(include_background=True, reduction="mean_batch")
    for batch in DataLoader(Dataset(files, transform), batch_size=1):
        logits = sliding_window_inference(batch["image"], roi, 4, model, overlap=0.5)
        metric(y_pred=(torch.sigmoid(logits) > 0.5).float(), y=batch["label"].float())
    tc, wt, et = (float(v) for v in metric.aggregate())
    return {"dice_tc": tc, "dice_wt": wt, "dice_et": et, "dice_mean": (tc + wt + et) / 3}
