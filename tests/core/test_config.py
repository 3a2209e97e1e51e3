from pathlib import Path

import pytest

from toolkit import config
from toolkit.engine.run import resolve_config
from toolkit.errors import ConfigError
from toolkit.registry import Registry


def test_overrides_beat_yaml_beat_recipe(tmp_path: Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("train:\n  epochs: 7\n  lr: 0.5\nmodel:\n  backbone: resnet18\n")
    cfg = resolve_config("classify", [f"cfg={user}", "train.lr=1e-4", "data=digits", "model.pretrained=true"])
    assert cfg.train.epochs == 7  # from the user file
    assert cfg.train.lr == pytest.approx(1e-4)  # the override wins over the file
    assert cfg.model.backbone == "resnet18"
    assert cfg.model.pretrained is True
    assert cfg.data.source == "digits"
    assert cfg.data.hflip == 0.0  # from the digits recipe


def test_a_built_in_dataset_overlays_the_task_recipe(tmp_path: Path) -> None:
    demo, custom = resolve_config("classify", []), resolve_config("classify", [f"data={tmp_path}"])
    assert demo.data.source == "fashion-mnist" and demo.train.time_limit == 9.5  # classify-fashion-mnist.yaml
    assert custom.train.time_limit == 0.0  # a fine-tune on your own data is never cut by the demo's limit
    assert custom.model.backbone == demo.model.backbone == "simple_cnn_x2"  # both from classify.yaml
    assert resolve_config("detect", []).train.time_limit == 9.5
    assert resolve_config("detect", [f"data={tmp_path}"]).train.time_limit == 0.0


def test_unknown_key_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config("classify", ["train.epoch=3"])
    assert "train.epochs" in str(err.value) and "Did you mean" in str(err.value)


@pytest.mark.parametrize("item", ["train.epochs=three", "train.channels_last=maybe", "epochs=3", "noequals"])
def test_bad_values_are_errors(item: str) -> None:
    with pytest.raises(ConfigError):
        resolve_config("classify", [item])


def test_pretrained_accepts_bool_enum_name_and_path() -> None:
    for raw, expected in [("false", False), ("IMAGENET1K_V2", "IMAGENET1K_V2"), ("w/my.pth", "w/my.pth")]:
        assert resolve_config("classify", [f"model.pretrained={raw}"]).model.pretrained == expected


def test_unknown_task_and_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid: classify"):
        resolve_config("clasify", [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config("classify", [f"cfg={bad}"])


def test_registry_rejects_duplicates_and_suggests() -> None:
    reg = Registry("thing")
    reg.register("alpha", object())
    with pytest.raises(ValueError):
        reg.register("alpha", object())
    with pytest.raises(ConfigError, match="Did you mean 'alpha'"):
        reg.get("alpah")
    assert reg.names() == ["alpha"]


def test_saved_config_round_trips(tmp_path: Path) -> None:
    cfg = resolve_config("classify", ["data=digits"])
    config.save(cfg, tmp_path / "c.yaml")
    again = config.read_yaml(tmp_path / "c.yaml")
    assert again["data"]["source"] == "digits" and again["train"]["epochs"] == cfg.train.epochs
