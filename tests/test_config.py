import dataclasses
from pathlib import Path

import pytest

from toolkit import cli, config
from toolkit.engine.run import resolve, resolve_config
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
    assert demo.model.backbone == "simple_cnn_x2" and demo.model.pretrained is False
    # your own images: an ImageNet fine-tune at 224 px, never cut by the demo's time limit
    assert custom.train.time_limit == 0.0
    assert (custom.model.backbone, custom.model.pretrained, custom.data.img_size) == ("mobilenet_v2", True, 224)
    nuclei, own = resolve_config("detect", []), resolve_config("detect", [f"data={tmp_path}"])
    assert nuclei.train.time_limit == 9.5 and nuclei.data.img_size == 448 and nuclei.model.box_iou_thresh == 0.6
    assert own.train.time_limit == 0.0 and own.train.ema == 0.0 and own.model.box_iou_thresh == 0.5
    assert own.data.img_size == 0 and own.model.anchor_size == 0  # fitted to the user's data at the run's start
    assert own.model.anchor_ratios == [0.5, 1.0, 2.0]
    assert resolve_config("segment", [f"data={tmp_path}"]).model.pretrained is True
    assert resolve_config("segment3d", [f"data={tmp_path}"]).train.epochs == 50


def test_an_explicit_epoch_count_is_not_cut_by_a_recipe_time_limit(tmp_path: Path) -> None:
    cfg, notes = resolve("detect", ["train.epochs=30"])
    assert cfg.train.epochs == 30 and cfg.train.time_limit == 0.0
    assert len(notes) == 1 and "train.time_limit=9.5" in notes[0] and "train.epochs=30" in notes[0]
    cfg, notes = resolve("detect", ["train.epochs=30", "train.time_limit=3"])  # both given: both kept
    assert (cfg.train.epochs, cfg.train.time_limit, notes) == (30, 3.0, [])
    user = tmp_path / "user.yaml"
    user.write_text("train:\n  epochs: 4\n")
    cfg, notes = resolve("classify", [f"cfg={user}"])
    assert cfg.train.time_limit == 0.0 and notes
    assert resolve("classify", [])[1] == []  # the recipe's own epochs keep its limit silently


def test_every_key_is_described(capsys: pytest.CaptureFixture) -> None:
    cfg = resolve_config("detect", [])
    rows = {key: (value, meaning) for key, value, meaning in config.describe(cfg)}
    assert rows["train.epochs"] == (24, "")
    assert rows["data.img_size"][0] == 448 and "longest image side" in rows["data.img_size"][1]
    assert "degrees" in rows["data.rotate"][1]
    assert len(rows) == sum(len(dataclasses.fields(getattr(cfg, s))) for s in config.SECTIONS)
    assert cli.main(["train", "detect", "data=/elsewhere", "--help"]) == 0
    out = capsys.readouterr().out
    assert "model.anchor_size" in out and "0 = fitted" in out and "train.time_limit" in out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "parse, call" not in top and "toolkit train TASK --help" in top


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
    with pytest.raises(ConfigError, match="Valid: classify"):
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


def test_saving_a_config_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed while it rewrites config.yaml (here: the rename never happens) leaves the old file whole."""
    import os

    path = tmp_path / "config.yaml"
    old, new = resolve_config("classify", ["train.epochs=3"]), resolve_config("classify", ["train.epochs=9"])
    config.save(old, path)
    before = path.read_text()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        config.save(new, path)
    monkeypatch.undo()
    assert path.read_text() == before and "epochs: 3" in before
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temp file left
