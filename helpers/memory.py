"""Training memory, exactly: what one optimiser step holds, counted by kind and measured by the allocator.

A training step keeps four kinds of tensors: the weights, a gradient per trainable weight, the optimiser's
state (AdamW: two moments per trainable weight), and the activations the forward pass saves for the
backward pass. ``step_memory`` counts each kind from the tensors themselves, then measures the peak of
live tensor bytes during one steady-state step. The counts explain the peak up to the short-lived tensors
inside a layer, which ``working_mib`` measures on its own: CUDA's allocator statistics on a GPU, ``torch.profiler``'s
allocation records on a CPU. Both are exact and repeat to the byte, unlike the process's resident size,
which depends on what earlier work left in the allocator's free lists.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass

import torch
from torch.profiler import ProfilerActivity, profile

from helpers.paths import MIB  # every size in this module is in MiB (2**20 bytes)


@dataclass(frozen=True)
class StepMemory:
    """Memory of one training step in MiB: four counted parts, and the measured peak of live tensors."""

    weights_mib: float  # every parameter and buffer of the model
    gradients_mib: float  # one gradient per trainable parameter
    optimizer_mib: float  # the optimiser's state (AdamW: two moments per trainable parameter)
    activations_mib: float  # tensors the forward pass saves for the backward pass
    working_mib: float  # peak of short-lived tensors in one forward pass without gradients (measured)
    measured_mib: float  # weights + optimiser state + the allocator's peak during one step
    source: str  # what measured the peak: "torch.profiler (cpu)" or "cuda allocator"

    @property
    def counted_mib(self) -> float:
        """The peak the counts predict: weights and optimiser state live throughout; the backward pass frees
        activations as it creates gradients, so the step peaks at about the larger of the two."""
        return self.weights_mib + self.optimizer_mib + max(self.activations_mib, self.gradients_mib)

    def to_dict(self) -> dict[str, float | str]:
        """The fields plus ``counted_mib``, ready for a table row or JSON."""
        return {**asdict(self), "counted_mib": self.counted_mib}


def tensors_mib(tensors: Iterable[torch.Tensor]) -> float:
    """Bytes of ``tensors`` in MiB, each storage counted once (views and shared weights are not doubled)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values()) / MIB


def step_memory(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    make_optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer] | None = None,
) -> StepMemory:
    """Count and measure the memory of training ``model`` on ``batch``; ``model`` and the global RNG are untouched.

    Runs two optimiser steps on a copy of the model: the first creates the optimiser state and counts the
    saved activations, the second (steady state, as every later step) is measured.
    """
    probe = copy.deepcopy(model).train()
    trainable = [p for p in probe.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("No parameter of the model requires grad: there is no training step to measure.")
    optimizer = (make_optimizer or _adamw)(trainable)
    frozen = {p.untyped_storage().data_ptr() for p in probe.parameters()}
    with torch.random.fork_rng(devices=[]):  # dropout draws here must not move the caller's RNG
        saved = _train_step(probe, batch, optimizer, frozen)
        peak_bytes, source = _measured_peak(lambda: _train_step(probe, batch, optimizer, frozen))
        with torch.no_grad():
            working_bytes, _ = _measured_peak(lambda: probe(**batch))
    states = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    weights = tensors_mib([*probe.parameters(), *probe.buffers()])
    optimizer_mib = tensors_mib(states)
    return StepMemory(
        weights_mib=weights,
        gradients_mib=tensors_mib(trainable),
        optimizer_mib=optimizer_mib,
        activations_mib=saved,
        working_mib=working_bytes / MIB,
        measured_mib=weights + optimizer_mib + peak_bytes / MIB,
        source=source,
    )


def _adamw(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    fused = params[0].device.type in ("cpu", "cuda")  # as the training loop builds it
    return torch.optim.AdamW(params, lr=1e-5, fused=fused)


def _train_step(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer, weights: set[int]
) -> float:
    """One forward, backward and optimiser step; returns the MiB of activations saved for backward."""
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:  # a weight saved for backward is counted as a weight
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return sum(saved.values()) / MIB


def _measured_peak(step: Callable[[], object]) -> tuple[int, str]:
    """(peak bytes allocated above the starting level while ``step`` runs, what measured it)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start, "cuda allocator"
    return profiled_peak_bytes(step), "torch.profiler (cpu)"


def profiled_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of CPU tensor bytes allocated and not yet freed while ``fn`` runs, from torch.profiler's records."""
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _native_stderr_muted():  # the profiler's C++ side prints a start line that notebooks would show
        prof.start()
    try:
        fn()
    finally:
        with _native_stderr_muted():
            prof.stop()
    records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(records, key=lambda e: e.start_ns()):
        live += event.nbytes()  # negative for a free
        peak = max(peak, live)
    return peak


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Send file descriptor 2 (what C++ code writes to) to /dev/null for the block; Python's own errors still raise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
