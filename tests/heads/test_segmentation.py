"""Every (decoder x backbone) pair builds, trains a step and predicts full-size logits at odd sizes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from toolkit.backbones import BACKBONES
from toolkit.errors import ConfigError
from toolkit.heads.segmentation import SEG_HEADS, build_segmenter

HEADS = ["unet", "fpn", "deeplabv3", "lraspp"]


def test_heads_registered() -> None:
    assert SEG_HEADS.names() == sorted(HEADS)


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_every_head_on_backbone(backbone: str) -> None:
    torch.manual_seed(0)
    for head in HEADS:
        model = build_segmenter(head, backbone, num_classes=3, in_chans=1)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, target = torch.randn(2, 1, 37, 45), torch.randint(0, 3, (2, 37, 45))
        logits = model(x)
        assert logits.shape == (2, 3, 37, 45), head
        F.cross_entropy(logits, target).backward()
        grads = [p.grad for p in model.decoder.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), head
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(1, 1, 97, 131))
        assert out.shape == (1, 3, 97, 131), head
        assert torch.isfinite(out).all(), head


def test_padding_is_cut_back_exactly() -> None:
    """Output (i, j) of an odd-sized input = output of the explicitly zero-padded input at (i, j)."""
    torch.manual_seed(0)
    model = build_segmenter("unet", "resnet18", num_classes=2).eval()
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        out = model(x)
        padded = model(F.pad(x, (0, 160 - 131, 0, 128 - 97)))
    assert padded.shape[-2:] == (128, 160)
    torch.testing.assert_close(out, padded[..., :97, :131])


def test_batch_of_one_trains_with_aspp() -> None:
    model = build_segmenter("deeplabv3", "simple_cnn", num_classes=2)
    model(torch.randn(1, 3, 32, 32)).sum().backward()


def test_trainable_stages_and_bad_names() -> None:
    model = build_segmenter("fpn", "resnet18", 2, trainable_stages=2)
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    assert any("layer1" in n for n in frozen) and not any("layer4" in n for n in frozen)
    assert all(p.requires_grad for p in model.decoder.parameters())
    with pytest.raises(ConfigError, match="unet"):
        build_segmenter("unett", "resnet18", 2)
    with pytest.raises(ConfigError, match="resnet18"):
        build_segmenter("unet", "resnet81", 2)
