"""precision: "auto" picks bf16 on a CPU only with native bf16 and a faster probe; never on an AVX2-only CPU."""

from __future__ import annotations

import pytest
import torch

from helpers import precision


@pytest.fixture(autouse=True)
def fresh_choice():
    precision.auto_precision.cache_clear()  # the choice is cached per process; each test mocks another CPU
    yield
    precision.auto_precision.cache_clear()


def mock_cpu(monkeypatch, amx: bool, avx512_bf16: bool, speedup: float | None = None):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    probes = []

    def probe():
        probes.append(1)
        if speedup is None:
            raise AssertionError("a CPU without native bf16 must not even be probed")
        return speedup

    monkeypatch.setattr(precision, "probe_speedup", probe)
    return probes


def test_avx2_only_cpu_trains_in_fp32_without_probing(monkeypatch):
    probes = mock_cpu(monkeypatch, amx=False, avx512_bf16=False)
    choice = precision.auto_precision("cpu")
    assert choice.mode == "no" and "emulated" in choice.reason and "AVX2" in choice.reason
    assert probes == []


@pytest.mark.parametrize("amx, avx512_bf16, what", [(True, False, "AMX"), (False, True, "AVX-512 BF16")])
def test_native_bf16_that_measures_faster_is_chosen(monkeypatch, amx, avx512_bf16, what):
    mock_cpu(monkeypatch, amx=amx, avx512_bf16=avx512_bf16, speedup=1.8)
    choice = precision.auto_precision("cpu")
    assert choice.mode == "bf16" and what in choice.reason and "1.80x" in choice.reason


@pytest.mark.parametrize("speedup", [0.5, 1.0, precision.MIN_SPEEDUP - 0.01])
def test_native_bf16_that_is_not_clearly_faster_stays_fp32(monkeypatch, speedup):
    mock_cpu(monkeypatch, amx=True, avx512_bf16=True, speedup=speedup)
    assert precision.auto_precision("cpu").mode == "no"


def test_the_probe_runs_once_per_process(monkeypatch):
    probes = mock_cpu(monkeypatch, amx=True, avx512_bf16=False, speedup=2.0)
    precision.auto_precision("cpu"), precision.auto_precision("cpu")
    assert len(probes) == 1


def test_other_devices(monkeypatch):
    assert precision.auto_precision("mps").mode == "no"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.auto_precision("cuda").mode == "no"


def test_probe_measures_a_ratio():
    ratio = precision.probe_speedup(width=64, tokens=64, repeats=1)
    assert 0.01 < ratio < 100
