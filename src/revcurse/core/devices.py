"""Where and in which arithmetic a job runs: the device, and fp32 or bf16 autocast."""
from __future__ import annotations

from pathlib import Path

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is visible")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16): there bf16 pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:                      # not Linux: stay on the safe side
        return False
    return any(flag in flags.split() for flag in ("amx_bf16", "avx512_bf16"))


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' is bf16 on CUDA and on CPUs with bf16 matmul units, fp32 elsewhere."""
    if name not in PRECISIONS:
        raise ValueError(f"precision={name!r}; expected one of {PRECISIONS}")
    if name != "auto":
        return name
    return "bf16" if device.type == "cuda" or cpu_has_bf16_matmul() else "fp32"


def device_and_precision(device: str, precision: str) -> tuple[torch.device, str]:
    """What a job's spec names (``device``: auto | cpu | cuda; ``precision``: auto | fp32 | bf16) as the device it
    runs on and the arithmetic it runs in there: the one place every toy job resolves both."""
    resolved = resolve_device(device)
    return resolved, resolve_precision(precision, resolved)


def autocast(precision: str, device: torch.device):
    """bf16 autocast (matmuls in bf16; LayerNorm, softmax, losses and weights in fp32) or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
