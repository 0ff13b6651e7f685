"""Fine-tune a text classifier on a user's own CSV/JSONL/JSON files, end to end, into a new folder.

The engine behind ``python -m helpers finetune-classifier``: check the settings and the data, claim the
output folder (``helpers.run_folder``), hold a validation share out of the training file, choose the method
(``method="auto"``: the few-shot recipe of ``helpers.few_shot`` when labels have few examples, else the
classifier recipe of ``helpers.classifier``: LoRA or every weight, the one loop, checkpointing, so Ctrl-C or a
kill loses little and ``resume=True`` continues), fit the frozen-embedding baseline too and ship it instead
when the chosen method scores lower on validation, evaluate on the test file, and write model, labels,
metrics (both scores) and a model card. It works unchanged under ``accelerate launch`` (only the main process
writes files). Nothing the user owns is overwritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accelerate import PartialState

from helpers import few_shot
from helpers.data import tokenize_and_count
from helpers.evaluation import evaluate_classifier, predict_labels
from helpers.finetune_files import (
    load_train_test,
    model_name,
    sha256_file,
    split_validation,
    truncation_report,
    write_outputs,
)
from helpers.finetune_methods import (
    DEFAULT_LR,
    METHODS,
    baseline,
    choose_method,
    fine_tune,
    run_setfit,
    scores_of,
)
from helpers.finetune_settings import check_settings, load_model
from helpers.run_folder import RunFolder
from helpers.runtime import seed_everything
from helpers.training import TrainConfig, TrainingDiverged, TrainingInterrupted

CHECKPOINT_EVERY_STEPS = 50  # also at every epoch end: a kill loses at most this many steps


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
    method: str = "auto",
    batch_size: int = 16,
    max_length: int = 128,
    seed: int = 0,
    progress: bool = True,
    resume: bool = False,
    skip_labels: Sequence[str] = (),
    checkpoint_every: int = CHECKPOINT_EVERY_STEPS,
) -> dict[str, Any]:
    """Train on ``train_path``, score on ``test_path``, write everything into the new ``output_dir``;
    returns the metrics. ``method``: auto, frozen, setfit, full or lora (``lora_rank=None`` also means full);
    ``model`` is a hub id or folder; ``resume=True`` continues a stopped run (same settings and data only)."""
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(
            f"method={method!r} is not one of {', '.join(METHODS)}; pass method='auto' to let the "
            "number of examples per label decide."
        )
    method = "full" if lora_rank is None and method in ("auto", "lora") else method
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
    method, why = choose_method(method, data[0])
    _say(why)
    lr = lr if lr is not None else DEFAULT_LR[method]
    if method != "lora":
        lora_rank = None
    facts = dict(
        method=method,
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
        learning_rate=lr if lr is not None else 1e-5,  # frozen trains nothing
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
    train_all, test_ds, labels = data
    train_ds, val_ds = split_validation(train_all, config.seed)
    seed_everything(config.seed)  # the new head and LoRA start alike in every run with this seed
    method, tuning = facts["method"], facts["method"] in ("full", "lora")
    net, tokenizer = load_model(labels, model) if tuning else (None, None)
    max_length = facts["max_length"]
    frozen, scores = baseline(train_ds, val_ds, test_ds, model, max_length)
    tokenizer = tokenizer or frozen.encoder.tokenizer
    max_length = min(max_length, tokenizer.model_max_length)
    (train_tok, cut_fit), (val_tok, cut_val), (test_tok, cut_test) = (
        tokenize_and_count(ds, tokenizer, max_length) for ds in (train_ds, val_ds, test_ds)
    )
    cut_train = cut_fit + cut_val
    _say(truncation_report({"train": cut_train, "test": cut_test}, len(train_all) + len(test_ds), max_length))
    history, extra, shipped = None, {}, frozen
    if method == few_shot.SETFIT:
        shipped, extra, seconds = run_setfit(config, train_ds, model, max_length)
        scores[method] = scores_of(
            shipped.predict(val_ds["text"]), val_ds, seconds, shipped.predict(test_ds["text"]), test_ds
        )
    elif tuning:
        shipped, history, extra = fine_tune(config, facts, net, tokenizer, labels, max_length, train_tok, resume)
        scores[method] = scores_of(predict_labels(shipped, val_tok, tokenizer), val_ds, history.train_seconds)
        scores[method] |= evaluate_classifier(shipped, test_tok, tokenizer)
    scores[method] |= {k: v for k, v in extra.items() if k == "steps"}
    if scores[method]["validation_accuracy"] < scores[few_shot.FROZEN]["validation_accuracy"]:
        _say(
            f"{method} scored {scores[method]['validation_accuracy']:.3f} on the {len(val_ds)} validation examples, "
            f"below the frozen baseline's {scores[few_shot.FROZEN]['validation_accuracy']:.3f}: shipping the "
            "baseline instead."
        )
        method, extra, shipped = few_shot.FROZEN, {}, frozen  # history.json still tells how the chosen one trained
    metrics = (
        dict(scores[method])
        | dict(
            method=method,
            chosen_method=facts["method"],
            baseline=scores[few_shot.FROZEN],
            methods=scores,
            n_train=len(train_ds),
            n_validation=len(val_ds),
            n_test=len(test_ds),
            n_labels=len(labels),
            truncated_train=cut_train,
            truncated_test=cut_test,
            max_length=max_length,
            seconds=round(time.perf_counter() - start, 2),
        )
        | extra
    )
    if run is not None:
        write_outputs(run, shipped, tokenizer, labels, metrics, facts, history)
        _say(
            f"{method}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {len(test_ds)} "
            f"test examples (frozen baseline {metrics['baseline']['accuracy']:.3f}); model, metrics.json and "
            f"README.md are in {run.out}/"
        )
    _wait_for_everyone()
    return metrics


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
