"""Safe file I/O: atomic writes (temp file + ``os.replace`` + directory fsync; text, bytes, CSV tables) and
weights-only torch reads.

The only module that calls ``torch.load``; backbones, heads and the engine all read through it. A write that
finds the disk full raises ``DiskFullError`` naming the file and the bytes it needs.
"""
from __future__ import annotations

import csv
import errno
import io
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import torch

from toolkit.errors import CheckpointError, DiskFullError

TEMP_GLOB = ".*.tmp"  # what an interrupted atomic write leaves behind: .<name>.<random>.tmp


def atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` with ``torch.save`` so that a killed process never leaves a half-written ``path``."""
    _atomic_write(path, lambda f: torch.save(obj, f), lambda: _saved_size(obj))


def atomic_write_text(text: str, path: Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old file or the new one, never a mix."""
    data = text.encode()
    _atomic_write(path, lambda f: f.write(data), lambda: len(data))


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """``rows`` as CSV text under a header of ``columns`` (a row's other keys are left out; "\\n" line ends)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def atomic_write_csv(rows: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """``csv_text(rows, columns)`` written to ``path`` atomically."""
    atomic_write_text(csv_text(rows, columns), path)


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (e.g. an exported ONNX file)."""
    _atomic_write(path, lambda f: f.write(data), lambda: len(data))


def _atomic_write(path: Path, write: Callable[[IO[bytes]], Any], size: Callable[[], int]) -> None:
    """Temp file in ``path``'s folder (mode from the umask, as ``open`` gives), ``write``, fsync, ``os.replace``,
    fsync of the folder so that the rename itself survives a power cut."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if is_disk_full(e):
            raise disk_full_error(path, size()) from None
        raise


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a filesystem that cannot sync folders is left as it is."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def remove_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files that killed atomic writes left in ``folder``; returns them."""
    found = sorted(folder.glob(TEMP_GLOB)) if folder.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


def is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` or an error it was raised from is ENOSPC / EDQUOT (``torch.save`` wraps it in a
    RuntimeError)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_error(path: Path, needed: int | None = None) -> DiskFullError:
    """The one-line error of a full disk: the file, the bytes it needs and the bytes free where it goes."""
    folder = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(folder).free
    need = f"{needed:,} bytes needed, " if needed is not None else ""
    return DiskFullError(f"disk full: cannot write {path} ({need}{free:,} bytes free there); free some space "
                         "or write to another folder")


def _saved_size(obj: Any) -> int:
    """Bytes ``torch.save(obj)`` writes, counted without storing them."""
    class Counter:
        n = 0

        def write(self, data: bytes) -> int:
            self.n += len(data)
            return len(data)

        def flush(self) -> None:
            pass

    counter = Counter()
    torch.save(obj, counter)
    return counter.n


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_torch_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` to CPU; unsafe, corrupt or foreign files raise ``CheckpointError``."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise CheckpointError(f"{path} holds pickled objects that are not plain tensors/data and "
                              f"is refused for safety ({first[:160]})") from None
    except Exception as e:  # noqa: BLE001 - any failure of the unpickler means "not a readable torch file"
        raise CheckpointError(f"{path} is not a readable torch checkpoint, corrupt or truncated ({type(e).__name__}); "
                              "use another checkpoint, e.g. weights/best.pt") from None


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A plain ``state_dict`` from ``.pth``/``.pt`` (weights only; a toolkit checkpoint gives its
    ``model``) or ``.safetensors``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not path.is_file():
            raise CheckpointError(f"weights file not found: {path}")
        return load_file(str(path))
    state = load_torch_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state_dict")
    return state
