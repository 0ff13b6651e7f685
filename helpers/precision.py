"""Mixed precision chosen per run: bf16 only where the hardware computes it natively and it measures faster.

On a GPU with bf16 (Ampere and later) bf16 autocast is the standard choice. On a CPU it depends on the chip and on
the work. Intel CPUs with AMX or AVX-512 BF16 multiply bf16 natively: on one, a MiniLM step of 32 x 64 tokens ran
1.8x as fast in bf16, but short runs of small dynamically padded batches (a new batch shape at most steps) lost: a
12-step SmolLM2 LoRA run on short chats took 23.5 s in bf16 and 21.6 s in fp32 (bench/precision_speed.py). On a CPU
with AVX2 only, bf16 is emulated and a step took 22x longer. So "auto" asks the CPU what it has and, where it has
native bf16 and a micro-batch of at least MIN_PROBE_TOKENS tokens, times this run's own first batch both ways (once
per kind of run in a process) and keeps fp32 unless bf16 wins clearly.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from helpers import runtime

MIN_SPEEDUP = 1.15  # bf16 must beat fp32 by this factor on the probe, so noise never picks it
# Below this many tokens per micro-batch a CPU run stays in fp32 without probing: such runs gained nothing from bf16
# in the notebooks (module docstring), and a probe costs about four steps (bench/precision_speed.py).
MIN_PROBE_TOKENS = 1024
_PROBED: dict[tuple, PrecisionChoice] = {}  # one probe per kind of run (model, trainable part, batch shape)


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


def inference_dtype(device: torch.device) -> tuple[torch.dtype, str]:
    """(dtype, why) for generation and scoring: bf16 where ``device`` computes bf16 natively, else fp32."""
    if device.type == "cuda":
        native, what = torch.cuda.is_bf16_supported(), "CUDA"
    else:
        native, what = cpu_has_native_bf16()
    return (torch.bfloat16, f"bf16: native on {what}") if native else (torch.float32, f"fp32: {what}")


def step_speedup(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """fp32 time / bf16-autocast time of one forward and backward of ``model`` on ``batch`` on the CPU (> 1: bf16
    faster). Gradients and the random generator are left as they were, so training after it is unchanged."""
    rng, was_training = torch.get_rng_state(), model.training
    model.train()

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.float().backward()
        return time.perf_counter() - start

    try:
        repeats = 3 if step(False) < 0.2 else 1  # the first call of each picks kernels and allocates: not timed
        step(True)
        fp32 = min(step(False) for _ in range(repeats))
        bf16 = min(step(True) for _ in range(repeats))
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        torch.set_rng_state(rng)
    return fp32 / bf16


def resolve(requested: str, device_type: str, model=None, batch: dict | None = None) -> PrecisionChoice:
    """The precision to train in: ``requested`` as is, unless "auto": $WORKBOOK_PRECISION, else the hardware, else a
    probe of ``model`` on ``batch`` (a CPU with native bf16); without a model to probe there, fp32."""
    if requested != "auto":
        return PrecisionChoice(requested, f"{'fp32' if requested == 'no' else requested}: set in TrainConfig")
    pinned = os.environ.get("WORKBOOK_PRECISION", "auto")  # lets a run or a benchmark pin what "auto" means
    if pinned not in ("no", "bf16", "auto"):
        raise ValueError(f"WORKBOOK_PRECISION must be no, bf16 or auto, not {pinned!r}.")
    if pinned != "auto":
        return PrecisionChoice(pinned, f"{'fp32' if pinned == 'no' else pinned}: set by WORKBOOK_PRECISION")
    if device_type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"{torch.cuda.get_device_name()} computes bf16 natively")
        return PrecisionChoice("no", "this GPU has no native bf16; fp32")
    if device_type != "cpu":
        return PrecisionChoice("no", f"fp32 on {device_type}")
    native, what = cpu_has_native_bf16()
    if not native:
        return PrecisionChoice("no", f"fp32: this CPU has {what}, so bf16 would be emulated (slower)")
    if model is None or batch is None:
        return PrecisionChoice("no", f"fp32 unless a run's probe says otherwise: this CPU has {what}")
    if batch["input_ids"].numel() < MIN_PROBE_TOKENS:
        tokens = "x".join(map(str, batch["input_ids"].shape))
        return PrecisionChoice(
            "no", f"fp32: this CPU has {what}, but a micro-batch of {tokens} tokens is too small to gain"
        )
    return _probed(model, batch, what)


def _probed(model: torch.nn.Module, batch: dict, what: str) -> PrecisionChoice:
    """bf16 if this kind of run measured at least MIN_SPEEDUP faster in it; probed once per kind per process."""
    params = list(model.parameters())
    shape = tuple(batch["input_ids"].shape)
    key = (
        type(model).__name__,
        sum(p.numel() for p in params),
        sum(p.numel() for p in params if p.requires_grad),
        shape[0],
        math.ceil(shape[-1] / 32),  # batches within 32 tokens of each other count as one kind
    )
    if key not in _PROBED:
        speedup = step_speedup(model, batch)
        mode = "bf16" if speedup >= MIN_SPEEDUP else "no"
        tokens = f"{shape[0]} x {shape[-1]} tokens"
        _PROBED[key] = PrecisionChoice(
            mode,
            f"{'bf16' if mode == 'bf16' else 'fp32'}: this CPU has {what}, and bf16 ran this run's step "
            f"({tokens}) {speedup:.2f}x as fast as fp32",
        )
    return _PROBED[key]


def make_accelerator(
    requested: str, grad_accum_steps: int, model=None, batch: dict | None = None
) -> tuple[Accelerator, PrecisionChoice]:
    """(Accelerator, choice) for one training run in the precision ``requested`` resolves to on this machine."""
    # torchrun without a GPU: accelerate sets up gloo only when told to use the CPU (else each process trains alone).
    cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    chosen = resolve(requested, "cpu" if cpu else runtime.pick_device().type, model, batch)
    AcceleratorState._reset_state()  # accelerate keeps one precision per process; each run may choose its own
    return Accelerator(cpu=cpu, mixed_precision=chosen.mode, gradient_accumulation_steps=grad_accum_steps), chosen
