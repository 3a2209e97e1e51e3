import os
import stat
from pathlib import Path

import pytest
import torch

from tests.helpers.faults import small_disk
from toolkit.cli import main
from toolkit.engine import checkpoint
from toolkit.errors import CheckpointError, DiskFullError


class Evil:
    def __reduce__(self):  # runs a command when unpickled unsafely
        return (os.system, ("echo pwned",))


def test_atomic_save_and_safe_load(tmp_path: Path) -> None:
    state = {"format_version": 1, "model": {"w": torch.ones(2)}, "config": {}, "classes": ["a", "b"]}
    checkpoint.save(state, tmp_path / "w" / "last.pt")
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["last.pt"]  # no temp file left
    assert torch.equal(checkpoint.load(tmp_path / "w" / "last.pt")["model"]["w"], torch.ones(2))


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    torch.save({"format_version": 1, "model": {}, "config": {}, "classes": [], "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused for safety"):
        checkpoint.load(tmp_path / "evil.pt")


def test_truncated_missing_and_foreign_files(tmp_path: Path) -> None:
    checkpoint.save({"format_version": 1, "model": {"w": torch.ones(1000)}, "config": {}, "classes": []}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "nope.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a toolkit checkpoint"):
        checkpoint.load(tmp_path / "plain.pt")


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "last.pt"
    checkpoint.save({"format_version": 1, "model": {"v": torch.tensor(1)}, "config": {}, "classes": []}, target)

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"format_version": 1, "model": {"v": torch.tensor(2)}}, target)
    monkeypatch.undo()
    assert checkpoint.load(target)["model"]["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_file_the_unpickler_fails_on_in_any_way_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "notes.pt").write_text("hello")  # torch.load(weights_only=True) raises KeyError on it
    with pytest.raises(CheckpointError, match="notes.pt is not a readable torch checkpoint"):
        checkpoint.load(tmp_path / "notes.pt")
    assert main(["val", str(tmp_path / "notes.pt")]) == 2


def test_checkpoints_get_the_umask_mode_and_a_synced_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real_fsync(fd))
    old = os.umask(0o027)
    try:
        checkpoint.save({"format_version": 1, "model": {}, "config": {}, "classes": []}, tmp_path / "last.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "last.pt").stat().st_mode) == 0o640  # as open() would make it, not 0600
    assert synced == [False, True]  # the file, then the folder holding the rename


def test_a_full_disk_is_one_error_naming_the_file_and_its_size(tmp_path: Path) -> None:
    state = {"format_version": 1, "model": {"w": torch.zeros(1024, 1024)}, "config": {}, "classes": []}
    with small_disk(tmp_path / "disk", "2m") as disk:
        checkpoint.save({**state, "model": {}}, disk / "last.pt")
        with pytest.raises(DiskFullError, match=r"disk full: cannot write .*big.pt \(4,19\d,\d+ bytes needed, "):
            checkpoint.save(state, disk / "big.pt")
        assert sorted(p.name for p in disk.iterdir()) == ["last.pt"]  # no temp file left, the earlier file kept
        assert checkpoint.load(disk / "last.pt")["model"] == {}
