"""LoRA from scratch: the teaching layer that notebook 04 derives, with peft's names.

A frozen weight ``W`` (out, in) gets a trainable low-rank update::

    y = x W^T + b + scaling * (x A^T) B^T,      A: (r, in),  B: (out, r),  scaling = alpha / r

``B`` starts at zero, so the wrapped layer equals the base layer until training
moves it. The names (``base_layer``, ``lora_A``, ``lora_B``, ``scaling``) are
peft's (``peft/tuners/lora/layer.py``), so a learner can read peft's code next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class LoRALinear(nn.Module):
    """An ``nn.Linear`` with a frozen base and a trainable rank-``r`` update ``scaling * B @ A``."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}.")
        if not isinstance(r, int) or r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}.")
        self.base_layer = base.requires_grad_(False)  # the pre-trained weight never changes
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # Same devices/dtypes as the base, same initialisation as peft (and the LoRA paper's code).
        kw = dict(bias=False, device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Linear(base.in_features, r, **kw)  # (r, in): projects down
        self.lora_B = nn.Linear(r, base.out_features, **kw)  # (out, r): projects back up
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)  # B = 0: the layer starts as the base layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (..., in) -> (..., out); the update costs r * (in + out) multiply-adds per token
        return self.base_layer(x) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update LoRA adds to the base weight: ``scaling * B @ A``, shape (out, in)."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight ``W + scaling * B @ A``: same outputs, no extra cost at inference."""
        base = self.base_layer
        merged = nn.Linear(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        with torch.no_grad():
            merged.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def _matches(name: str, targets: Sequence[str]) -> bool:
    # peft's rule for a list of targets: the module name equals a target or ends with ".<target>".
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(
    model: nn.Module,
    target_modules: Sequence[str],
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    trainable: Sequence[str] = (),
) -> list[str]:
    """Freeze ``model`` and wrap every nn.Linear named by ``target_modules`` in a LoRALinear, in place.

    ``trainable`` names parameters that should train as well (e.g. a new
    classifier head: ``["classifier"]``). Returns the wrapped module names.
    """
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, target_modules)]
    if not names:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(
            f"No nn.Linear matches target_modules={list(target_modules)}; linear layers here "
            f"end with: {', '.join(linear)}."
        )
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r=r, alpha=alpha, dropout=dropout))
    for pname, p in model.named_parameters():
        if any(pname.startswith(t + ".") or ("." + t + ".") in pname for t in trainable):
            p.requires_grad_(True)
    return names


def lora_state(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer name: (A, B)} for the LoRA layers of our model or of a peft model (adapter 'default')."""
    state = {}
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            state[name] = (module.lora_A.weight, module.lora_B.weight)
        elif isinstance(getattr(module, "lora_A", None), nn.ModuleDict) and "default" in module.lora_A:
            short = name.removeprefix("base_model.model.")  # peft wraps the model twice
            state[short] = (module.lora_A["default"].weight, module.lora_B["default"].weight)
    return state


@torch.no_grad()
def copy_lora_weights(source: nn.Module, target: nn.Module) -> int:
    """Copy every LoRA (A, B) pair from ``source`` into ``target`` (ours or peft, either way); returns the count.

    Used for the parity check: with the same A and B, our layer and peft's must
    give the same outputs.
    """
    src, dst = lora_state(source), lora_state(target)
    if set(src) != set(dst):
        missing = sorted(set(src) ^ set(dst))[:4]
        raise ValueError(f"The two models wrap different layers (e.g. {missing}); use the same target_modules.")
    for name, (a, b) in src.items():
        dst[name][0].copy_(a)
        dst[name][1].copy_(b)
    return len(src)


def merge_lora(model: nn.Module) -> int:
    """Replace every LoRALinear in ``model`` by its merged nn.Linear, in place; returns how many."""
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, getattr(parent, child).merge())
    return len(names)
