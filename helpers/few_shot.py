"""The few-shot recipe: a sentence encoder and a logistic-regression head, the encoder frozen or SetFit-trained.

With a handful of labelled texts per label, notebook 09 and ``bench/cli_few_shot.py`` measured that fine-tuning a
classifier with a fresh random head (full or LoRA) loses to keeping MiniLM's sentence embedding and fitting a
linear head on it (*frozen*), and that sharpening the encoder first on pairs of training texts (same label: pull
together, different labels: push apart; SetFit, Tunstall et al. 2022) does better still. An ``EncoderHead`` is
saved as a sentence-transformers folder (``encoder/``) plus the head in ``head.safetensors``: no pickle.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression

from helpers import models, runtime

FROZEN, SETFIT = "frozen", "setfit"
ENCODER_DIR, HEAD_FILE, KIND_FILE = "encoder", "head.safetensors", "few_shot.json"


@dataclass(frozen=True)
class SetFitConfig:
    """Contrastive training of the encoder: pairs per text, step cap, batch, learning rate; the head's C."""

    iterations: int = 5  # SetFit draws 2 x this many pairs per training text
    max_steps: int | None = None  # cap on contrastive steps (None: as many as the pairs make)
    batch_size: int = 16  # pairs per step
    learning_rate: float = 2e-5  # SetFit's default for the encoder
    c: float = 10.0  # the logistic-regression head's inverse regularisation
    max_length: int = 128  # tokens kept per text
    seed: int = 0
    progress: bool = False

    def steps(self, n_texts: int) -> int:
        """Contrastive optimiser steps for ``n_texts`` training texts."""
        steps = math.ceil(2 * self.iterations * n_texts / self.batch_size)
        return steps if self.max_steps is None else min(steps, self.max_steps)


@dataclass
class EncoderHead:
    """A sentence encoder (unit-length embeddings) and a linear softmax head over ``labels``."""

    encoder: object  # sentence_transformers.SentenceTransformer
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    labels: list[str]
    method: str = FROZEN

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (N, C), in input order."""
        z = embed(self.encoder, texts) @ self.weight.T + self.bias  # (N, C)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Label ids (N,)."""
        return self.predict_proba(texts).argmax(axis=1)

    def save(self, folder: str | Path) -> None:
        """Write the encoder (safetensors), head and kind into ``folder`` (labels.json is the caller's)."""
        folder = Path(folder)
        self.encoder.save(str(folder / ENCODER_DIR), safe_serialization=True)
        save_file({"weight": self.weight.astype(np.float32), "bias": self.bias.astype(np.float32)}, folder / HEAD_FILE)
        (folder / KIND_FILE).write_text(json.dumps({"kind": "encoder+head", "method": self.method}))

    @classmethod
    def load(cls, folder: str | Path) -> EncoderHead:
        """The model ``save`` wrote into ``folder`` (with its labels.json)."""
        folder = Path(folder)
        head = load_file(folder / HEAD_FILE)
        labels = json.loads((folder / "labels.json").read_text())
        method = json.loads((folder / KIND_FILE).read_text())["method"]
        return cls(models.load_embedder(folder / ENCODER_DIR), head["weight"], head["bias"], labels, method)


def is_encoder_head(folder: str | Path) -> bool:
    """Whether ``folder`` holds an ``EncoderHead`` (else a transformers classifier)."""
    return (Path(folder) / KIND_FILE).exists()


def embed(encoder, texts: Sequence[str]) -> np.ndarray:
    """Unit-length sentence embeddings (N, D)."""
    return encoder.encode(list(texts), normalize_embeddings=True, batch_size=64, show_progress_bar=False)


def fit_head(x: np.ndarray, y: Sequence[int], c: float = 10.0) -> LogisticRegression:
    """A logistic-regression head on fixed embeddings."""
    return LogisticRegression(C=c, max_iter=2000).fit(x, list(y))


def head_weights(head: LogisticRegression, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (C, D), bias (C,)) whose softmax equals ``head.predict_proba``; a label never seen gets -inf odds."""
    coef, bias = head.coef_, head.intercept_
    if len(head.classes_) == 2:  # sklearn keeps one row for two classes: sigmoid(z) = softmax([-z/2, z/2])
        coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    weight, full_bias = np.zeros((n_labels, coef.shape[1])), np.full(n_labels, -1e4)
    weight[head.classes_], full_bias[head.classes_] = coef, bias
    return weight, full_bias


def with_head(encoder, train: Dataset, c: float, method: str = FROZEN) -> EncoderHead:
    """Fit a head on ``encoder``'s embeddings of ``train`` (text, ClassLabel label)."""
    labels = train.features["label"].names
    weight, bias = head_weights(fit_head(embed(encoder, train["text"]), train["label"], c), len(labels))
    return EncoderHead(encoder, weight, bias, labels, method)


def frozen(train: Dataset, model: str | Path | None = None, c: float = 10.0, max_length: int = 128) -> EncoderHead:
    """The baseline: the pre-trained encoder unchanged (bundled MiniLM by default) and a head; seconds on a CPU."""
    encoder = models.load_embedder(model)
    encoder.max_seq_length = min(max_length, encoder.max_seq_length or max_length)
    return with_head(encoder, train, c)


def setfit(train: Dataset, config: SetFitConfig | None = None, model: str | Path | None = None) -> EncoderHead:
    """SetFit (the ``setfit`` library): contrastive training of the encoder on pairs of ``train``, then a head."""
    from setfit import SetFitModel, Trainer, TrainingArguments  # noqa: PLC0415  (seconds to import; only here)

    config = config or SetFitConfig()
    runtime.seed_everything(config.seed)
    source = str(models.minilm_dir()) if model is None else str(model)
    logging.getLogger("setfit").setLevel(logging.ERROR)  # "model_head.pkl not found": we fit our own head
    net = SetFitModel.from_pretrained(source, local_files_only=True)
    net.model_body.max_seq_length = min(config.max_length, net.model_body.max_seq_length or config.max_length)
    with tempfile.TemporaryDirectory() as out:  # setfit's trainer writes checkpoints; keep them out of sight
        args = TrainingArguments(
            output_dir=out,
            batch_size=config.batch_size,
            num_iterations=config.iterations,
            body_learning_rate=config.learning_rate,
            seed=config.seed,
        )
        args.max_steps, args.save_strategy, args.report_to = config.steps(len(train)), "no", "none"
        args.show_progress_bar = config.progress
        Trainer(model=net, args=args).train_embeddings(list(train["text"]), list(train["label"]))
    return with_head(net.model_body, train, config.c, SETFIT)
