"""precision: "auto" picks bf16 on a CPU only with native bf16 and a faster probe of the run's own step; never on
an AVX2-only CPU."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from transformers import DataCollatorWithPadding

from helpers import data, precision, runtime, training
from tests.tiny import tiny_classifier, tokenizer, two_class_dataset


@pytest.fixture(autouse=True)
def fresh_choices(monkeypatch):
    monkeypatch.delenv("WORKBOOK_PRECISION", raising=False)
    monkeypatch.setattr(precision, "MIN_PROBE_TOKENS", 0)  # tiny test batches are probed too
    precision._PROBED.clear()  # choices are kept per process; each test mocks another CPU
    yield
    precision._PROBED.clear()


def mock_cpu(monkeypatch, amx: bool, avx512_bf16: bool, speedup: float | None = None):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    probes = []

    def probe(model, batch):
        probes.append(tuple(batch["input_ids"].shape))
        if speedup is None:
            raise AssertionError("a CPU without native bf16 must not even be probed")
        return speedup

    monkeypatch.setattr(precision, "step_speedup", probe)
    return probes


def model_and_batch(rows: int = 8, length: int = 16):
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, length)
    return tiny_classifier(), DataCollatorWithPadding(tok)([ds[i] for i in range(rows)])


def test_avx2_only_cpu_trains_in_fp32_without_probing(monkeypatch):
    probes = mock_cpu(monkeypatch, amx=False, avx512_bf16=False)
    choice = precision.resolve("auto", "cpu", *model_and_batch())
    assert choice.mode == "no" and "emulated" in choice.reason and "AVX2" in choice.reason
    assert probes == []


@pytest.mark.parametrize("amx, avx512_bf16, what", [(True, False, "AMX"), (False, True, "AVX-512 BF16")])
def test_native_bf16_that_measures_faster_is_chosen(monkeypatch, amx, avx512_bf16, what):
    mock_cpu(monkeypatch, amx=amx, avx512_bf16=avx512_bf16, speedup=1.8)
    choice = precision.resolve("auto", "cpu", *model_and_batch())
    assert choice.mode == "bf16" and what in choice.reason and "1.80x" in choice.reason


@pytest.mark.parametrize("speedup", [0.5, 1.0, precision.MIN_SPEEDUP - 0.01])
def test_native_bf16_that_is_not_clearly_faster_stays_fp32(monkeypatch, speedup):
    mock_cpu(monkeypatch, amx=True, avx512_bf16=True, speedup=speedup)
    assert precision.resolve("auto", "cpu", *model_and_batch()).mode == "no"


def test_each_kind_of_run_is_probed_once_per_process(monkeypatch):
    probes = mock_cpu(monkeypatch, amx=True, avx512_bf16=False, speedup=2.0)
    model, batch = model_and_batch()
    precision.resolve("auto", "cpu", model, batch), precision.resolve("auto", "cpu", tiny_classifier(seed=1), batch)
    assert len(probes) == 1  # the same model and batch shape: one probe
    precision.resolve("auto", "cpu", model, model_and_batch(rows=4)[1])
    assert len(probes) == 2  # another batch size is another kind of run


def test_a_micro_batch_too_small_to_gain_stays_fp32_without_probing(monkeypatch):
    probes = mock_cpu(monkeypatch, amx=True, avx512_bf16=False, speedup=2.0)
    model, batch = model_and_batch()
    monkeypatch.setattr(precision, "MIN_PROBE_TOKENS", batch["input_ids"].numel() + 1)
    choice = precision.resolve("auto", "cpu", model, batch)
    assert choice.mode == "no" and "too small" in choice.reason and probes == []
    monkeypatch.setattr(precision, "MIN_PROBE_TOKENS", batch["input_ids"].numel())
    assert precision.resolve("auto", "cpu", model, batch).mode == "bf16" and len(probes) == 1


def test_without_a_run_to_probe_a_native_cpu_stays_fp32(monkeypatch):
    mock_cpu(monkeypatch, amx=True, avx512_bf16=False, speedup=2.0)
    assert precision.resolve("auto", "cpu").mode == "no"


def test_other_devices(monkeypatch):
    assert precision.resolve("auto", "mps").mode == "no"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.resolve("auto", "cuda").mode == "no"


def test_the_probe_measures_a_ratio_and_leaves_training_untouched():
    model, batch = model_and_batch()
    model.eval()
    before = torch.get_rng_state()
    ratio = precision.step_speedup(model, batch)
    assert 0.01 < ratio < 100
    assert torch.equal(torch.get_rng_state(), before)  # dropout's draws do not shift the training that follows
    assert all(p.grad is None for p in model.parameters()) and not model.training


def test_resolve_keeps_an_explicit_choice_and_reads_the_environment_for_auto(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PRECISION", "bf16")
    assert precision.resolve("no", "cpu").mode == "no"  # TrainConfig's explicit value wins over the environment
    assert precision.resolve("auto", "cpu") == precision.PrecisionChoice("bf16", "bf16: set by WORKBOOK_PRECISION")
    monkeypatch.setenv("WORKBOOK_PRECISION", "no")
    assert precision.resolve("auto", "cpu").mode == "no"
    monkeypatch.setenv("WORKBOOK_PRECISION", "fp8")
    with pytest.raises(ValueError, match="WORKBOOK_PRECISION must be no, bf16 or auto"):
        precision.resolve("auto", "cpu")


@pytest.mark.parametrize("speedup, mode", [(2.0, "bf16"), (1.0, "no")])
def test_train_uses_and_records_what_auto_chose(monkeypatch, speedup, mode):
    monkeypatch.setattr(runtime, "pick_device", lambda: torch.device("cpu"))
    probes = mock_cpu(monkeypatch, amx=True, avx512_bf16=True, speedup=speedup)
    seen = []
    monkeypatch.setattr(precision, "Accelerator", lambda **kw: seen.append(kw["mixed_precision"]) or Accelerator(**kw))
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    model, autocast = tiny_classifier(), []
    model.classifier.register_forward_hook(lambda *_: autocast.append(torch.is_autocast_enabled("cpu")))
    config = training.TrainConfig(max_steps=2, batch_size=8, progress=False)
    history = training.train(model, ds, config, tokenizer=tok)
    assert seen == [mode] and probes[0][0] == 8  # probed on a batch of the run's own size
    assert history.precision["mode"] == mode and "AMX" in history.precision["reason"]
    assert autocast == [mode == "bf16"] * 2  # both training steps ran in the chosen precision
    model(**{k: torch.tensor(ds[:2][k]) for k in ("input_ids", "attention_mask")})
    assert autocast[-1] is False  # and the trained model predicts in fp32, as it came


def test_runs_in_one_process_may_choose_different_precisions():
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    for mode in ("no", "bf16", "no"):  # accelerate would refuse a second precision without a reset
        config = training.TrainConfig(max_steps=1, batch_size=8, mixed_precision=mode, progress=False)
        assert training.train(tiny_classifier(), ds, config, tokenizer=tok).precision["mode"] == mode


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "dtype"), [(False, False, torch.float32), (False, True, torch.bfloat16)]
)
def test_inference_dtype_is_bf16_only_with_native_bf16(monkeypatch, amx, avx512_bf16, dtype):
    mock_cpu(monkeypatch, amx=amx, avx512_bf16=avx512_bf16)
    chosen, why = precision.inference_dtype(torch.device("cpu"))
    assert chosen == dtype and why.startswith("bf16" if dtype == torch.bfloat16 else "fp32")
