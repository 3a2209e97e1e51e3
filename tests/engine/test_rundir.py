"""The run directory after a kill: results.csv and best.pt are repaired from what last.pt records."""
import csv
import math
from pathlib import Path

import pytest
import torch

from toolkit.engine import checkpoint, rundir


def state(epoch: int, accuracy: float, best_epoch: int, best_value: float) -> dict:
    """A checkpoint of ``epoch`` as the trainer writes it (metrics of the epoch, best-so-far bookkeeping)."""
    return {"format_version": 1, "model": {"w": torch.full((2,), float(epoch))}, "config": {}, "classes": ["a"],
            "epoch": epoch, "metrics": {"epoch": float(epoch), "train_loss": 1.0 / epoch, "accuracy": accuracy,
                                        "time": 2.5 * epoch, "is_best": float(best_epoch == epoch)},
            "best": {"metric": "accuracy", "value": best_value, "stale_epochs": epoch - best_epoch}}


def table(run: Path) -> list[list[str]]:
    return list(csv.reader((run / "results.csv").open()))


def test_rows_after_the_checkpoint_are_dropped_and_a_missing_row_is_rebuilt(tmp_path: Path) -> None:
    for epoch, acc in ((1, 0.5), (2, 0.7)):
        rundir.add_row(tmp_path, {"epoch": epoch, "train_loss": 1.0 / epoch, "accuracy": acc, "time": 2.5 * epoch,
                                  "is_best": True, "precision/a": 1.0})
    assert table(tmp_path) == [["epoch", "train_loss", "accuracy", "time"], ["1", "1", "0.5", "2.5"],
                               ["2", "0.5", "0.7", "5"]]
    rundir.add_row(tmp_path, {"epoch": 3, "train_loss": 0.3, "accuracy": 0.9, "time": 7.5})
    notes = rundir.repair(tmp_path, state(2, 0.7, 2, 0.7))  # last.pt is of epoch 2: the row of 3 came later
    assert [r[0] for r in table(tmp_path)] == ["epoch", "1", "2"] and "dropped the rows of epochs 3" in notes[0]
    (tmp_path / "results.csv").write_text("epoch,train_loss,accuracy,time\n1,1,0.5,2.5\n")  # killed before row 2
    notes = rundir.repair(tmp_path, state(2, 0.7, 2, 0.7))
    assert table(tmp_path)[-1] == ["2", "0.5", "0.7", "5"] and notes == [
        "results.csv: the row of epoch 2 was missing; rebuilt from the checkpoint's metrics"]
    assert rundir.repair(tmp_path, state(2, 0.7, 2, 0.7)) == []  # consistent: nothing to do


def test_best_pt_is_rewritten_from_last_pt_when_the_kill_came_between_them(tmp_path: Path) -> None:
    best = tmp_path / "weights" / "best.pt"
    checkpoint.save(state(1, 0.5, 1, 0.5), best)  # epoch 2 was better, but the run died before its best.pt
    last = state(2, 0.7, 2, 0.7)
    assert rundir.repair(tmp_path, last)[-1].startswith("weights/best.pt: rewritten")
    assert checkpoint.load(best)["epoch"] == 2 and torch.equal(checkpoint.load(best)["model"]["w"], last["model"]["w"])
    assert "best.pt" not in str(rundir.repair(tmp_path, state(3, 0.6, 2, 0.7)))  # best.pt holds the best epoch 2
    assert checkpoint.load(best)["epoch"] == 2
    assert rundir.repair(tmp_path, state(3, math.nan, 0, -math.inf)) == []  # no finite best yet: nothing to do


def test_results_csv_is_replaced_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way (here: a new column makes the whole table be rewritten) keeps the old table."""
    rundir.add_row(tmp_path, {"epoch": 1, "accuracy": 0.5})
    before = (tmp_path / "results.csv").read_text()

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    monkeypatch.setattr(csv.DictWriter, "writerow", killed)
    with pytest.raises(KeyboardInterrupt):
        rundir.add_row(tmp_path, {"epoch": 2, "accuracy": 0.6, "dice": 0.1})
    assert (tmp_path / "results.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]
