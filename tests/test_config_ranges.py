"""Every numeric config key has a valid range, checked when the config is built: a value outside it is one line
naming the key and the range, exit 2, for `toolkit config` and `toolkit train` alike (before any data is read)."""
from __future__ import annotations

import dataclasses
import typing

import pytest
from annotated_types import Ge, Gt, Interval, Le, Lt

from toolkit import cli, config
from toolkit.tasks import task_class

TASKS = ("classify", "detect", "segment", "segment3d")
UNBOUNDED = {"data.ignore_index", "data.mean"}  # any integer / any float is a valid value

BAD = [  # (task, override, the error line)
    ("classify", "train.epochs=-3", "train.epochs=-3 must be >= 1"),
    ("classify", "train.epochs=0", "train.epochs=0 must be >= 1"),
    ("classify", "train.batch_size=-1", "train.batch_size=-1 must be >= 1"),
    ("classify", "train.batch_size=0", "train.batch_size=0 must be >= 1"),
    ("classify", "data.img_size=-5", "data.img_size=-5 must be >= 0"),
    ("classify", "train.lr=0", "train.lr=0.0 must be > 0"),
    ("classify", "train.lr=nan", "train.lr=nan must be a finite number"),
    ("classify", "train.momentum=1", "train.momentum=1.0 must be in [0, 1)"),
    ("classify", "train.label_smoothing=1.5", "train.label_smoothing=1.5 must be in [0, 1]"),
    ("classify", "train.workers=-2", "train.workers=-2 must be >= -1"),
    ("classify", "train.seed=-1", "train.seed=-1 must be in [0, 4294967296)"),
    ("classify", "data.val_split=1", "data.val_split=1.0 must be in [0, 1)"),
    ("classify", "data.hflip=2", "data.hflip=2.0 must be in [0, 1]"),
    ("classify", "data.std=[0.2,0]", "data.std[1]=0.0 must be > 0"),
    ("classify", "model.dropout=-0.1", "model.dropout=-0.1 must be in [0, 1)"),
    ("classify", "model.trainable_stages=-1", "model.trainable_stages=-1 must be >= 0"),
    ("detect", "data.crop=0.5", "data.crop=0.5 must be in [0, 0.5)"),
    ("detect", "model.anchor_ratios=[1,-2]", "model.anchor_ratios[1]=-2.0 must be > 0"),
    ("detect", "model.score_thresh=2", "model.score_thresh=2.0 must be in [0, 1]"),
    ("detect", "model.detections_per_img=0", "model.detections_per_img=0 must be >= 1"),
    ("segment", "data.repeat=0", "data.repeat=0 must be >= 1"),
    ("segment", "data.background=-2", "data.background=-2 must be >= -1"),
    ("segment", "data.crop=-1", "data.crop=-1 must be >= 0"),
    ("segment3d", "data.roi=[0,64,64]", "data.roi[0]=0 must be >= 1"),
    ("segment3d", "model.overlap=1", "model.overlap=1.0 must be in [0, 1)"),
    ("segment3d", "data.cache=1.5", "data.cache=1.5 must be in [0, 1]"),
]


@pytest.mark.parametrize("task,override,line", BAD, ids=[b[1] for b in BAD])
def test_a_value_out_of_range_is_one_line_from_config(task: str, override: str, line: str,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["config", task, override]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {line}"]


@pytest.mark.parametrize("override,line", [(o, line) for t, o, line in BAD[:6]], ids=[b[1] for b in BAD[:6]])
def test_a_value_out_of_range_stops_train_before_it_starts(override: str, line: str, tmp_path,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["train", "classify", "data=digits", override, f"train.project={tmp_path}"]) == 2
    out = capsys.readouterr()
    assert out.err.strip().splitlines() == [f"error: {line}"] and "metrics" not in out.out
    assert not list(tmp_path.iterdir())  # no run directory, no best.pt to report


@pytest.mark.parametrize("task,override", [("classify", "data.img_size=0"), ("classify", "train.workers=-1"),
                                           ("detect", "model.anchor_size=0"), ("segment", "data.background=-1"),
                                           ("segment", "model.trainable_stages=null"), ("segment3d", "data.flip=1")])
def test_documented_sentinels_stay_valid(task: str, override: str) -> None:
    cls = task_class(task)
    cfg = config.load(task, cls.DataConfig, cls.ModelConfig, [override])
    section, key = override.split("=")[0].split(".")
    assert getattr(getattr(cfg, section), key) == config.parse_value(override.split("=")[1])


def test_every_numeric_key_of_every_task_declares_a_range() -> None:
    unbounded = []
    for task in TASKS:
        cls = task_class(task)
        for section, klass in (("train", config.TrainConfig), ("data", cls.DataConfig), ("model", cls.ModelConfig)):
            for f in dataclasses.fields(klass):
                hint = typing.get_type_hints(klass, include_extras=True)[f.name]
                if typing.get_origin(hint) is list:
                    hint = typing.get_args(hint)[0]
                base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
                numeric = {int, float} & set(typing.get_args(base) or (base,))
                bounds = [b for b in typing.get_args(hint)[1:] if isinstance(b, (Ge, Gt, Le, Lt, Interval))]
                if numeric and not bounds and f"{section}.{f.name}" not in UNBOUNDED:
                    unbounded.append(f"{task}: {section}.{f.name}")
    assert unbounded == []
