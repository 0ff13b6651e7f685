"""Mixed precision chosen per machine: bf16 only where the hardware computes it natively and it measures faster.

On a GPU with bf16 (Ampere and later) bf16 autocast is the standard choice. On a CPU it depends on the chip: Intel
CPUs with AMX or AVX-512 BF16 multiply bf16 natively and can train faster in it; on a CPU with AVX2 only, bf16 is
emulated and a training step took 22x longer in our measurements. So "auto" asks the CPU what it has, and where it
has native bf16, times a short probe both ways and keeps fp32 unless bf16 wins clearly.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

MIN_SPEEDUP = 1.15  # bf16 must beat fp32 by this factor on the probe, so noise never picks it


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` chose (accelerate's names: "no" for fp32, or "bf16") and why, in one sentence."""

    mode: str
    reason: str


def cpu_has_native_bf16() -> tuple[bool, str]:
    """(True, which instructions) when this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16)."""
    if torch.cpu._is_amx_tile_supported():
        return True, "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return True, "AVX-512 BF16"
    return False, f"{torch.backends.cpu.get_cpu_capability()} without native bf16"


def probe_speedup(width: int = 384, tokens: int = 2048, repeats: int = 3) -> float:
    """fp32 time / bf16-autocast time of a transformer-sized forward and backward on this CPU (> 1: bf16 faster)."""
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(width, 4 * width), torch.nn.GELU(), torch.nn.Linear(4 * width, width))
    x = torch.randn(tokens, width, generator=generator)

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = layer(x).float().square().mean()
        loss.backward()
        return time.perf_counter() - start

    step(False), step(True)  # warm-up: first calls pick kernels and allocate
    fp32 = min(step(False) for _ in range(repeats))
    bf16 = min(step(True) for _ in range(repeats))
    return fp32 / bf16


@functools.cache
def auto_precision(device_type: str) -> PrecisionChoice:
    """The precision "auto" trains in on ``device_type`` ('cpu', 'cuda', 'mps'), with the reason; probed once."""
    if device_type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"{torch.cuda.get_device_name()} computes bf16 natively")
        return PrecisionChoice("no", "this GPU has no native bf16; fp32")
    if device_type != "cpu":
        return PrecisionChoice("no", f"fp32 on {device_type}")
    native, what = cpu_has_native_bf16()
    if not native:
        return PrecisionChoice("no", f"fp32: this CPU has {what}, so bf16 would be emulated (slower)")
    speedup = probe_speedup()
    if speedup >= MIN_SPEEDUP:
        return PrecisionChoice("bf16", f"bf16: this CPU has {what} and the probe ran {speedup:.2f}x faster than fp32")
    return PrecisionChoice("no", f"fp32: this CPU has {what} but bf16 was only {speedup:.2f}x as fast on the probe")
