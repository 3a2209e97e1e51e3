"""Entry points: what a resume may change, where a resume from an older checkpoint writes, where val writes."""
import shutil
from pathlib import Path

import pytest

from toolkit.cli import main
from toolkit.engine import checkpoint
from toolkit.engine.run import resolve_config, train, validate
from toolkit.errors import ConfigError


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished 1-epoch run on 300 digits: ``<project>/classify/exp``."""
    project = tmp_path_factory.mktemp("runs")
    train("classify", ["data=digits", "data.limit=300", "train.epochs=1", "train.progress=false", "train.workers=0",
                       f"train.project={project}"])
    return project / "classify" / "exp"


def test_a_resume_refuses_settings_its_state_cannot_follow(run: Path) -> None:
    last = run / "weights" / "last.pt"
    with pytest.raises(ConfigError, match=r"train\.lr=1000000\.0 cannot change \(a resume may change "
                                          r"train\.resume, train\.epochs.*start a new run without train\.resume"):
        resolve_config("classify", [f"train.resume={last}", "train.lr=1e6"])
    with pytest.raises(ConfigError, match=r"data\.img_size=16, model\.backbone=resnet18 cannot change"):
        resolve_config("classify", [f"train.resume={last}", "model.backbone=resnet18", "data.img_size=16"])
    saved = checkpoint.load(last)["config"]
    cfg = resolve_config("classify", [f"train.resume={last}", "train.epochs=5", f"train.lr={saved['train']['lr']}"])
    assert cfg.train.epochs == 5 and cfg.train.lr == saved["train"]["lr"]  # an unchanged value is no change


def test_resume_from_an_older_checkpoint_starts_a_new_run(run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """best.pt, or a last.pt copied out of its run, never writes into that run or beside the copy."""
    before = snapshot(run)
    train("classify", [f"train.resume={run / 'weights' / 'best.pt'}", "train.epochs=2"])
    assert snapshot(run) == before
    new = run.parent / "exp2"
    epoch = checkpoint.load(run / "weights" / "best.pt")["epoch"]
    assert f"training goes on after its epoch {epoch} in a new run directory" in capsys.readouterr().out
    assert [line.split(",")[0] for line in (new / "results.csv").read_text().split()] == ["epoch", "1", "2"]
    assert checkpoint.load(new / "weights" / "last.pt")["epoch"] == 2
    copy = tmp_path / "copies" / "last.pt"
    copy.parent.mkdir()
    shutil.copy(run / "weights" / "last.pt", copy)
    train("classify", [f"train.resume={copy}", "train.epochs=2"])
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["copies", "last.pt"]  # nothing beside the copy
    assert (run.parent / "exp3" / "weights" / "best.pt").is_file() and snapshot(run) == before


def test_val_writes_into_the_run_or_where_asked(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    loose = tmp_path / "models" / "digits.pt"
    loose.parent.mkdir()
    shutil.copy(run / "weights" / "best.pt", loose)
    validate(loose, device="cpu")
    assert (tmp_path / "runs" / "val" / "digits-val" / "confusion_matrix.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "runs"]  # nothing beside the loose file
    assert main(["val", str(run / "weights" / "best.pt"), "--device", "cpu", "--out", str(tmp_path / "mine")]) == 0
    assert "evaluation outputs -> " + str(tmp_path / "mine") in capsys.readouterr().out
    assert (tmp_path / "mine" / "confusion_matrix.png").is_file()
    validate(run / "weights" / "best.pt", device="cpu")
    assert (run / "val-val" / "confusion_matrix.png").is_file()
