"""Interruption and resume: a training process killed mid-run resumes from its checkpoint and ends
with the same metrics as an uninterrupted run (same seed). Also the tiny-model fixtures the
reliability tests share. Run as a script, this file is the worker the test kills.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, DataCollatorWithPadding

from helpers.data import load_banking77, stratified_split, tokenize
from helpers.models import load_classifier, minilm_dir
from helpers.runtime import seed_everything
from helpers.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed"]
# Tolerance for "same final metrics": resumed and uninterrupted runs on one CPU should agree to float noise.
LOSS_TOLERANCE = 1e-4


def make_tiny_model(folder: Path, dropout: float = 0.1) -> Path:
    """A 2-layer, 32-wide BERT classifier with the bundled MiniLM tokenizer, saved as safetensors."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={k: i for i, k in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(folder)
    return folder


def tiny_data(tokenizer, per_class: int = 16):
    """(train, validation) tokenised banking77 training subsets over LABELS: 64 and 32 examples, 16 tokens."""
    pool = load_banking77("train", per_class=per_class + 8, intents=LABELS)
    train, validation = stratified_split(pool, test_size=8 * len(LABELS))
    return tokenize(train, tokenizer, 16), tokenize(validation, tokenizer, 16)


def run_tiny(
    model_dir: Path,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    sleep_s: float = 0.0,
    batch_size: int = 8,
    progress: bool = False,
    **overrides,
):
    """Train the tiny model with the one loop; ``sleep_s`` per micro-batch gives a test time to kill it."""
    seed_everything(0)
    model, tokenizer = load_classifier(LABELS, model=model_dir)
    train_ds, eval_ds = tiny_data(tokenizer)
    pad = DataCollatorWithPadding(tokenizer)

    def collate(rows):
        time.sleep(sleep_s)
        return pad(rows)

    settings = dict(
        learning_rate=2e-3,
        epochs=3,
        batch_size=batch_size,
        eval_every_steps=4,
        warmup_ratio=0.0,
        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
        progress=progress,
        seed=0,
    )
    config = TrainConfig(**{**settings, **overrides})
    history = train(model, train_ds, config, eval_dataset=eval_ds, collate_fn=collate, resume=resume)
    return history, model


def subprocess_env() -> dict[str, str]:
    """Offline, repository on the path, one thread per process (2 cores are shared)."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _checkpoint_step(folder: Path) -> int:
    try:
        return json.loads((folder / "trainer_state.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1  # not there yet, or mid-rename


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_killed_run_resumes_to_the_same_metrics(tiny_dir, tmp_path):
    torch.set_num_threads(1)  # the worker runs with one thread too: same arithmetic, same floats
    ckpt = tmp_path / "ckpt"
    worker = subprocess.Popen(
        [sys.executable, __file__, "--model", str(tiny_dir), "--ckpt", str(ckpt), "--sleep", "0.4"],
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 120
    while _checkpoint_step(ckpt) < 4 and worker.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    output = worker.communicate()[0].decode(errors="replace")
    killed_at = _checkpoint_step(ckpt)
    assert worker.returncode == -signal.SIGKILL, f"worker ended before it was killed:\n{output[-2000:]}"
    assert 4 <= killed_at < 24, killed_at

    # What a kill can leave: a half-written temp folder, or (between the two renames) only the .old copy.
    assert load_file(ckpt / "model.safetensors")  # the checkpoint itself is whole
    (ckpt.with_name("ckpt.tmp")).mkdir(exist_ok=True)
    (ckpt.with_name("ckpt.tmp") / "model.safetensors").write_bytes(b"half-written")
    os.replace(ckpt, ckpt.with_name("ckpt.old"))

    resumed, _ = run_tiny(tiny_dir, ckpt, resume=True)
    straight, _ = run_tiny(tiny_dir)
    assert resumed.steps == straight.steps == 24
    assert resumed.train[0]["step"] == 1  # the History continues, it does not restart at the resume point
    for a, b in zip(resumed.train, straight.train):
        assert a["loss"] == pytest.approx(b["loss"], abs=LOSS_TOLERANCE), (a, b)
    assert resumed.evals[-1]["eval_loss"] == pytest.approx(straight.evals[-1]["eval_loss"], abs=LOSS_TOLERANCE)
    assert not ckpt.with_name("ckpt.tmp").exists() and not ckpt.with_name("ckpt.old").exists()


def _main() -> None:
    parser = argparse.ArgumentParser(description="worker for test_resume: train the tiny model")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_tiny(args.model, args.ckpt, sleep_s=args.sleep)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _main()
