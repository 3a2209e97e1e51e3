from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from toolkit.backbones import BACKBONES, create_backbone, weights
from toolkit.errors import WeightsError


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_meets_the_contract(name: str) -> None:
    in_chans = 1 if name == "simple_cnn" else 3
    bb = create_backbone(name, in_chans=in_chans)
    x = torch.randn(2, in_chans, 64, 64)
    feats = bb(x)
    assert list(feats) == bb.stage_names and len(feats) == len(bb.out_channels) == len(bb.strides)
    for f, c, s in zip(feats.values(), bb.out_channels, bb.strides):
        assert f.shape == (2, c, 64 // s, 64 // s)
    assert bb.strides == sorted(bb.strides) and bb.strides[-1] >= 8


def test_freeze_freezes_parameters_and_batchnorm_statistics() -> None:
    bb = create_backbone("resnet18", trainable_stages=2)
    frozen = [n for n, p in bb.named_parameters() if not p.requires_grad]
    trainable = [n for n, p in bb.named_parameters() if p.requires_grad]
    assert all(n.split(".")[1] in ("conv1", "bn1", "layer1", "layer2") for n in frozen)
    assert all(n.split(".")[1] in ("layer3", "layer4") for n in trainable)
    bn = bb.body.bn1
    before = bn.running_mean.clone()
    bb.train()
    assert not bn.training and bb.body.get_submodule("layer4.0.bn1").training
    bb(torch.randn(4, 3, 32, 32))
    assert torch.equal(bn.running_mean, before)


def test_one_channel_stem_sums_the_rgb_kernel() -> None:
    torch.manual_seed(0)
    rgb = torchvision.models.resnet18()
    torch.manual_seed(0)
    gray = create_backbone("resnet18", in_chans=1)
    assert gray.body.conv1.weight.shape[1] == 1
    assert torch.allclose(gray.body.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))


def test_pretrained_loads_through_the_weights_api_from_a_temporary_cache(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, dst: str, **_: object) -> None:
        raise OSError(f"no network for {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    w = torchvision.models.ResNet18_Weights.DEFAULT
    with pytest.raises(WeightsError, match="toolkit weights fetch resnet18"):
        create_backbone("resnet18", pretrained=True)  # offline and not cached
    reference = torchvision.models.resnet18()
    torch.nn.init.constant_(reference.conv1.weight, 0.123)
    file = weights.cache_file(w)
    file.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), file)
    bb = create_backbone("resnet18", pretrained=True)
    assert torch.allclose(bb.body.conv1.weight, torch.full_like(bb.body.conv1.weight, 0.123))


def test_pretrained_from_a_file_path(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    ref = torchvision.models.mobilenet_v3_small()
    save_file(ref.state_dict(), str(tmp_path / "w.safetensors"))
    bb = create_backbone("mobilenet_v3_small", pretrained=str(tmp_path / "w.safetensors"))
    assert torch.equal(bb.body.get_submodule("features.0.0").weight, ref.features[0][0].weight)
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="does not hold weights"):
        create_backbone("mobilenet_v3_small", pretrained=str(tmp_path / "bad.pth"))


def test_real_mobilenet_v2_imagenet_weights() -> None:
    """The cached file (`toolkit weights fetch mobilenet_v2`) is the real one: it recognises a cat."""
    from skimage import data

    path = weights.fetch("mobilenet_v2")
    assert path.name == "mobilenet_v2-b0353104.pth"
    w = weights.resolve("mobilenet_v2")  # IMAGENET1K_V1 when that is the cached one
    model = torchvision.models.mobilenet_v2(weights=w).eval()
    x = w.transforms()(torch.from_numpy(np.ascontiguousarray(data.chelsea())).permute(2, 0, 1))[None]
    with torch.no_grad():
        top = model(x).softmax(1)[0].topk(5).indices.tolist()
    names = [w.meta["categories"][i] for i in top]
    assert any("cat" in n.lower() for n in names), names
    bb = create_backbone("mobilenet_v2", pretrained=True).eval()
    with torch.no_grad():
        assert torch.allclose(bb(x)["stage5"], model.features(x), atol=1e-5)
