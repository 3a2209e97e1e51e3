"""train.amp: the autocast dtype per mode; ``auto`` picks bf16 only where the hardware computes it."""
from pathlib import Path

import pytest
import torch

from toolkit.engine import optim
from toolkit.engine.optim import Precision
from toolkit.errors import ConfigError

CPU = torch.device("cpu")


def _linear_dtype(precision: Precision) -> torch.dtype:
    with precision.autocast():
        return torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype


def test_bf16_autocasts_and_none_does_not() -> None:
    assert _linear_dtype(Precision("bf16", CPU)) == torch.bfloat16
    assert _linear_dtype(Precision("none", CPU)) == torch.float32


def test_auto_follows_the_hardware(monkeypatch) -> None:
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(optim, "native_bf16", lambda device, native=native: native)
        assert _linear_dtype(Precision("auto", CPU)) == dtype


def test_native_bf16_matches_the_cpu_flags() -> None:  # Linux, like the rest of the suite (Debian's Chromium)
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert optim.native_bf16(CPU) == bool({"amx_bf16", "avx512_bf16"} & flags)


def test_unknown_mode_and_fp16_without_cuda_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="valid: none, bf16, fp16, auto"):
        Precision("fp8", CPU)
    with pytest.raises(ConfigError, match="needs CUDA"):
        Precision("fp16", CPU)
