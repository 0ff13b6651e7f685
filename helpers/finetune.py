"""Fine-tune a text classifier on a user's own CSV/JSONL/JSON files, end to end, into a new folder.

The engine behind ``python -m helpers finetune-classifier``: check the settings and the data, claim the
output folder (``helpers.run_folder``), load the model (bundled MiniLM by default), fine-tune it with the
classifier recipe (``helpers.classifier``: LoRA or every weight, the one loop, checkpointing, so Ctrl-C or a
kill loses little and ``resume=True`` continues), evaluate on the test file, and write model, tokenizer,
labels, metrics and a model card. It works unchanged under ``accelerate launch`` (only the main process
writes files). Nothing the user owns is overwritten.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accelerate import PartialState
from transformers import AutoConfig

from helpers.classifier import fine_tune_classifier
from helpers.data import tokenize_and_count
from helpers.evaluation import evaluate_classifier
from helpers.finetune_files import load_train_test, model_name, sha256_file, truncation_report, write_outputs
from helpers.models import load_classifier
from helpers.run_folder import RunFolder
from helpers.runtime import seed_everything
from helpers.training import TrainConfig, TrainingDiverged, TrainingInterrupted

DEFAULT_LR = {"lora": 5e-4, "full": 5e-5}  # LoRA trains few weights from zero, so it takes a larger step
CHECKPOINT_EVERY_STEPS = 50  # also at every epoch end: a kill loses at most this many steps
# setting: (whole number?, smallest value, an example); every one must also be finite
LIMITS = {
    "epochs": (False, 0, "3"),
    "lr": (False, 0, "5e-4"),
    "batch_size": (True, 1, "16"),
    "max_length": (True, 2, "128"),
    "lora_rank": (True, 1, "8"),
    "max_steps": (True, 1, "100"),
    "checkpoint_every": (True, 1, "50"),
}


class RunStopped(KeyboardInterrupt):
    """Ctrl-C stopped a run; ``resumable``: the output folder holds it and ``resume=True`` continues it."""

    def __init__(self, message: str, resumable: bool):
        super().__init__(message)
        self.resumable = resumable


def finetune_classifier(
    train_path: str | Path,
    test_path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    output_dir: str | Path = "finetuned-classifier",
    epochs: float = 3.0,
    lr: float | None = None,
    lora_rank: int | None = 8,
    max_steps: int | None = None,
    model: str | Path | None = None,
    *,
    batch_size: int = 16,
    max_length: int = 128,
    seed: int = 0,
    progress: bool = True,
    resume: bool = False,
    skip_labels: Sequence[str] = (),
    checkpoint_every: int = CHECKPOINT_EVERY_STEPS,
) -> dict[str, Any]:
    """Train on ``train_path``, score on ``test_path``, write everything into the new ``output_dir``;
    returns the metrics. ``lora_rank=None`` fine-tunes every weight; ``model`` is a hub id or folder;
    ``resume=True`` continues a stopped run in ``output_dir`` (same settings and data only)."""
    start = time.perf_counter()
    lr = lr if lr is not None else DEFAULT_LR["full" if lora_rank is None else "lora"]
    check_settings(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        lora_rank=lora_rank,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
    )
    data = load_train_test(train_path, test_path, text_column, label_column, skip_labels)
    facts = dict(
        model=model_name(model),
        train=Path(train_path).name,
        test=Path(test_path).name,
        train_sha256=sha256_file(train_path),
        test_sha256=sha256_file(test_path),
        text_column=text_column,
        label_column=label_column,
        epochs=epochs,
        lr=lr,
        lora_rank=lora_rank,
        max_steps=max_steps,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        skip_labels=list(skip_labels),
    )
    settings = {k: v for k, v in facts.items() if k not in ("train", "test")}  # a moved file is still the same
    settings.update(model=_model_id(model), processes=int(os.environ.get("WORLD_SIZE", "1")))
    run = RunFolder.start(output_dir, settings, resume) if _is_main_process() else None
    if run is not None and resume:
        _say(
            f"Resuming the run in {run.out} from its last checkpoint."
            if run.has_checkpoint()
            else f"No checkpoint in {run.out} yet: training starts from the beginning."
        )
    config = TrainConfig(
        learning_rate=lr,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        eval_every_steps=None,
        restore_best=False,
        checkpoint_dir=str(RunFolder(output_dir).checkpoint_dir),
        checkpoint_every_steps=checkpoint_every,
    )
    try:
        return _train_and_write(run, config, facts, data, model, resume, start)
    except KeyboardInterrupt as err:
        if run is not None:
            run.release()
        kept = "the last checkpoint is kept" if run is not None and run.has_checkpoint() else "no checkpoint yet"
        raise RunStopped(
            str(err) if isinstance(err, TrainingInterrupted) else f"Stopped ({kept})", resumable=run is not None
        ) from None
    except BaseException as err:
        if run is not None and (isinstance(err, TrainingDiverged) or not run.has_checkpoint()):
            run.abandon()  # nothing worth resuming: the folder is as before the run
        elif run is not None:
            run.release()
        raise


def _train_and_write(
    run: RunFolder | None, config: TrainConfig, facts: dict[str, Any], data: tuple, model, resume: bool, start: float
) -> dict[str, Any]:
    train_ds, test_ds, labels = data
    seed_everything(config.seed)  # the new head and LoRA start alike in every run with this seed
    net, tokenizer = load_model(labels, model)
    max_length = min(facts["max_length"], tokenizer.model_max_length)
    (train_tok, cut_train), (test_tok, cut_test) = (
        tokenize_and_count(ds, tokenizer, max_length) for ds in (train_ds, test_ds)
    )
    _say(truncation_report({"train": cut_train, "test": cut_test}, len(train_ds) + len(test_ds), max_length))
    lora = facts["lora_rank"] is not None
    tuned = fine_tune_classifier(
        train_tok,
        config,
        method="lora" if lora else "full",
        model=net,
        tokenizer=tokenizer,
        labels=labels,
        max_length=max_length,
        rank=facts["lora_rank"] or 8,
        resume=resume,
    )
    metrics = evaluate_classifier(tuned.model, test_tok, tokenizer)
    metrics.update(
        n_train=len(train_ds),
        n_test=len(test_ds),
        n_labels=len(labels),
        steps=tuned.history.steps,
        truncated_train=cut_train,
        truncated_test=cut_test,
        max_length=max_length,
        trainable_parameters=tuned.trainable,
        total_parameters=tuned.total,
        train_seconds=round(tuned.history.train_seconds, 2),
        seconds=round(time.perf_counter() - start, 2),
    )
    if run is not None:
        net = tuned.model.merge_and_unload() if lora else tuned.model  # a plain model: loads without peft
        write_outputs(run, net, tokenizer, labels, metrics, facts, tuned.history)
        _say(
            f"Accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {len(test_ds)} test "
            f"examples; model, metrics.json and README.md are in {run.out}/"
        )
    _wait_for_everyone()
    return metrics


def check_settings(**values: float | int | None) -> None:
    """Raise ValueError naming the first setting that is not a finite number in range (None: not set)."""
    for name, value in values.items():
        whole, smallest, example = LIMITS[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if (
            value is None
            or number
            and (value >= smallest if whole else value > smallest)
            and (not whole or float(value).is_integer())
        ):
            continue
        kind = f"a whole number of at least {smallest}" if whole else "a finite number above 0"
        raise ValueError(f"{name}={value!r} is not allowed: it must be {kind} (for example {name}={example}).")


def load_model(labels: list[str], model: str | Path | None):
    """(classifier, tokenizer) for ``labels``; a saved classifier for another number of labels gets a sentence."""
    try:
        return load_classifier(labels, model=model)
    except RuntimeError as err:
        if "mismatch" not in str(err):
            raise
        try:
            heads = AutoConfig.from_pretrained(str(model)).num_labels
        except OSError:
            heads = "another number of"
        raise ValueError(
            f"The model {model} is a classifier for {heads} labels but the training data has "
            f"{len(labels)}; pass model='<the model it was fine-tuned from>', or train on data with "
            "its labels."
        ) from None


def _model_id(model: str | Path | None) -> str:
    # For the resume check: which model exactly.
    path = Path(str(model)).expanduser()
    return str(path.resolve()) if model is not None and path.exists() else model_name(model)


def _is_main_process() -> bool:
    # From the launcher's environment, not PartialState(): creating that before train() would fix the
    # accelerate state too early (train() picks the CPU backend for multi-process runs without a GPU).
    return int(os.environ.get("RANK", "0")) == 0


def _wait_for_everyone() -> None:
    PartialState().wait_for_everyone()


def _say(message: str) -> None:
    if _is_main_process():
        print(message, flush=True)
