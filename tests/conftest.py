"""Shared fixtures. Every test runs with the network blocked: code that tries the hub fails loudly."""

from __future__ import annotations

import socket

import pytest
import torch
from transformers import AutoTokenizer

from helpers import models


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse connections to anything but this machine (Jupyter kernels talk over loopback)."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1") or "/" in host):
            return real_connect(sock, address)
        raise RuntimeError(f"Test tried to reach the network ({address}); the workbook must run offline.")

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, above all on a shared machine (threads spin-wait)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def chat_tok():
    """SmolLM2's tokenizer, from the de-quantized cache (built on first use)."""
    if not (models.chat_cache_dir() / "tokenizer.json").exists():
        models.load_chat_model()
    return AutoTokenizer.from_pretrained(models.chat_cache_dir())
