"""memory: a training step's memory, counted by kind and measured exactly, the same in every run and order."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from helpers import memory, plots
from helpers.adapters import add_lora, freeze_all_but_head

matplotlib.use("Agg")

MIB = 2**20


def small_bert(seed: int = 0) -> BertForSequenceClassification:
    # Wide enough that activations and weights are megabytes, small enough for a fast test.
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=2000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=64,
        num_labels=4,
    )
    return BertForSequenceClassification(config)


def batch(n: int = 16, length: int = 48) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(0, 2000, (n, length), generator=generator),
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "labels": torch.randint(0, 4, (n,), generator=generator),
    }


def test_profiler_sees_an_allocation_whatever_ran_before():
    # The old resident-size sampler read 0 here once freed memory from earlier tests was reused.
    warm = torch.ones(64 * MIB // 4)
    del warm  # the allocator now holds freed memory that a new block can reuse

    def allocate():
        block = torch.ones(64 * MIB // 4)
        block += 1
        return float(block[0])

    first, second = memory.profiled_peak_bytes(allocate), memory.profiled_peak_bytes(allocate)
    assert first == second and 64 * MIB <= first < 65 * MIB


def test_counts_are_exact_for_full_fine_tuning():
    model = small_bert()
    step = memory.step_memory(model, batch())
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers() if b.dtype == torch.float32)
    int_buffers = sum(b.numel() * b.element_size() for b in model.buffers() if b.dtype != torch.float32)
    assert step.weights_mib == pytest.approx((4 * (params + buffers) + int_buffers) / MIB, abs=1e-9)
    assert step.gradients_mib == pytest.approx(4 * params / MIB, abs=1e-9)
    n_tensors = len(list(model.parameters()))  # AdamW: two moments per parameter, plus a step counter each
    assert step.optimizer_mib == pytest.approx((8 * params + 4 * n_tensors) / MIB, abs=1e-9)
    assert step.activations_mib > 1.0


def test_measurement_repeats_and_leaves_model_and_rng_alone():
    model, data = small_bert(), batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    first, second = memory.step_memory(model, data), memory.step_memory(model, data)
    assert first == second
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("method", ["full", "lora", "head-only"])
def test_counts_explain_the_measured_peak(method):
    model = small_bert()
    model = {
        "full": lambda m: m,
        "lora": lambda m: add_lora(m, rank=4, target_modules=["query", "value"]),
        "head-only": freeze_all_but_head,
    }[method](model)
    step = memory.step_memory(model, batch())
    assert step.source == "torch.profiler (cpu)"
    # The peak holds at least what the counts say must coexist, and at most a forward pass's working memory more.
    assert step.counted_mib <= step.measured_mib <= 1.01 * (step.counted_mib + step.working_mib), step


def test_lora_needs_less_than_full_fine_tuning():
    full = memory.step_memory(small_bert(), batch())
    lora = memory.step_memory(add_lora(small_bert(), rank=4, target_modules=["query", "value"]), batch())
    assert lora.gradients_mib < full.gradients_mib / 10 and lora.optimizer_mib < full.optimizer_mib / 10
    assert lora.measured_mib < full.measured_mib


def test_nothing_to_train_is_refused():
    model = small_bert()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="requires grad"):
        memory.step_memory(model, batch())


def test_tensors_counted_once_per_storage():
    weight = torch.zeros(256, 256)
    assert memory.tensors_mib([weight, weight.t(), weight[:10]]) == pytest.approx(256 * 256 * 4 / MIB)


def test_plot_shows_the_account_and_the_measured_peak():
    rows = [
        {"variant": name, **memory.step_memory(model, batch()).to_dict()}
        for name, model in (("full", small_bert()), ("head-only", freeze_all_but_head(small_bert())))
    ]
    ax = plots.plot_step_memory(pd.DataFrame(rows))
    tops = [
        sum(bar.get_height() for container in ax.containers for bar in container.patches[i : i + 1]) for i in range(2)
    ]
    assert tops == pytest.approx([r["counted_mib"] + r["working_mib"] for r in rows])
    peaks = ax.collections[0].get_offsets()[:, 1]
    assert list(peaks) == pytest.approx([r["measured_mib"] for r in rows])
    matplotlib.pyplot.close(ax.figure)
