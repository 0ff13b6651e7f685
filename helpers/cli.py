"""Command line: ``python -m helpers <command>``."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path
from typing import NoReturn

import torch

from helpers.finetune import CHECKPOINT_EVERY_STEPS, RunStopped, finetune_classifier
from helpers.finetune_files import load_predictor
from helpers.finetune_methods import FEW_SHOT_BELOW, METHODS
from helpers.learner_copies import write_learner_copies
from helpers.notebooks import execute_notebook, notebook_paths, write_summary
from helpers.tables import read_table


def run_notebooks(args: argparse.Namespace) -> int:
    """Execute notebooks into args.out, print a run-time table, exit 1 if any failed."""
    paths = notebook_paths(args.pattern)
    if not paths:
        print(f"No notebooks match {args.pattern!r} in notebooks/.", file=sys.stderr)
        return 1
    out, results = Path(args.out), []
    for path in paths:
        print(f"▶ {path.name} ({args.profile})", flush=True)
        result = execute_notebook(path, out, args.profile, timeout_s=args.timeout)
        print(f"  {'ok' if result['ok'] else 'FAILED'} in {result['seconds']} s", flush=True)
        if result["error"]:
            print(result["error"], file=sys.stderr)
        results.append(result)
    table = write_summary(results, out)
    print(table.read_text())
    print(f"Executed notebooks and HTML are in {out}/")
    return 0 if all(r["ok"] for r in results) else 1


def exercises(args: argparse.Namespace) -> int:
    """Write the learner copies of the notebooks into args.out; a copy the learner edited is kept."""
    try:
        done = write_learner_copies(notebook_paths(), Path(args.out), force=args.force)
    except ValueError as err:  # a notebook whose exercise lacks its starting point or check
        print(f"Could not write the learner copies: {err}", file=sys.stderr)
        return 1
    for name, what in done.items():
        print(f"{name}: {what}")
    print(f"Learner copies are in {args.out}/; the complete notebooks in notebooks/ are the solutions.")
    return 0


def finetune(args: argparse.Namespace) -> int:
    """Fine-tune a classifier on the user's files; a mistake prints one line and exits 1, Ctrl-C exits 130."""
    if args.full and args.method not in ("auto", "full"):
        print(f"error: --full asks for --method full, not --method {args.method}; pass one of them.", file=sys.stderr)
        return 1
    try:
        finetune_classifier(
            args.train,
            args.test,
            args.text_column,
            args.label_column,
            args.output,
            epochs=args.epochs,
            lr=args.lr,
            lora_rank=args.lora_rank,
            method="full" if args.full else args.method,
            max_steps=args.max_steps,
            model=args.model,
            batch_size=args.batch_size,
            max_length=args.max_length,
            seed=args.seed,
            resume=args.resume,
            skip_labels=args.skip_labels,
            checkpoint_every=args.checkpoint_every,
        )
    except KeyboardInterrupt as err:
        if isinstance(err, RunStopped) and err.resumable:
            print(f"{err}; to continue, run: {_resume_command(args.argv)}", file=sys.stderr)
        else:
            print("Stopped before training began; nothing was written.", file=sys.stderr)
        return 130
    except Exception as err:  # a person reads this, not a program: one line, no traceback
        return _one_line(err)
    return 0


def predict(args: argparse.Namespace) -> int:
    """Print label, confidence and text for each text, from a folder finetune-classifier wrote (either kind)."""
    try:
        texts = list(args.text)
        if args.input:
            texts += load_text_column(args.input, args.text_column)
        if not texts:
            raise ValueError("No texts to classify; pass --text '...' or --input FILE.")
        labels, predict_proba = load_predictor(args.model)
        for text, probs in zip(texts, predict_proba(texts)):
            print(f"{labels[int(probs.argmax())]}\t{probs.max():.3f}\t{text}")
    except Exception as err:
        return _one_line(err)
    return 0


def load_text_column(path: str, column: str) -> list[str]:
    """The texts in ``column`` of a .csv/.jsonl/.json file."""
    frame = read_table(Path(path))
    if column not in frame.columns:
        raise ValueError(
            f"column {column!r} not found in {Path(path).name}; columns are: {', '.join(map(str, frame.columns))}. "
            "Pass --text-column '<one of those>'."
        )
    return [str(t) for t in frame[column]]


def _one_line(err: Exception) -> int:
    if os.environ.get("WORKBOOK_TRACEBACK") == "1":
        raise err
    known = isinstance(err, (ValueError, OSError, ModuleNotFoundError, torch.OutOfMemoryError))
    said = _cli_words(str(err))
    print(
        f"error: {said}"
        if known
        else f"error: unexpected {type(err).__name__} ({said}); please report it "
        "with the command you ran (WORKBOOK_TRACEBACK=1 shows where it happened).",
        file=sys.stderr,
    )
    return 1


FLAGS = (
    "text_column",
    "label_column",
    "epochs",
    "lr",
    "lora_rank",
    "max_steps",
    "model",
    "batch_size",
    "max_length",
    "seed",
    "skip_labels",
    "checkpoint_every",
    "method",
)


def _cli_words(message: str) -> str:
    """Say --text-column where the library's message says text_column=, and keep it to one line."""
    message = message.replace("resume=True", "--resume")
    message = re.sub(rf"\b({'|'.join(FLAGS)})=", lambda m: f"--{m[1].replace('_', '-')} ", message)
    return " ".join(message.split())


def _resume_command(argv: list[str] | None) -> str:
    """The command that was run (as typed, when it came from the command line) with --resume added."""
    words = list(sys.orig_argv) if argv is None else ["python", "-m", "helpers", *argv]
    return shlex.join(words + ([] if "--resume" in words else ["--resume"]))


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line on stderr (exit 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; see {self.prog} --help.\n")


def _add_finetune_parser(sub) -> None:
    ft = sub.add_parser("finetune-classifier", help="fine-tune a text classifier on your own CSV/JSONL/JSON files")
    ft.add_argument("--train", required=True, help="training file (.csv with any of , ; tab |, .jsonl or .json)")
    ft.add_argument("--test", required=True, help="test file, same columns; scored after training")
    ft.add_argument("--text-column", default="text", help="column with the texts (default: text)")
    ft.add_argument("--label-column", default="label", help="column with the labels (default: label)")
    ft.add_argument("--output", required=True, help="NEW folder for model, metrics.json and README.md")
    ft.add_argument("--resume", action="store_true", help="continue the stopped run in --output (same settings)")
    ft.add_argument(
        "--method",
        default="auto",
        choices=METHODS,
        help=f"auto (default): setfit when the median label has fewer than {FEW_SHOT_BELOW} training examples, "
        "else lora; frozen: sentence embedding + head; setfit: contrastive encoder training + head; "
        "full or lora: fine-tune the classifier. The frozen baseline is always fitted too and shipped "
        "instead when it scores higher on validation (a fifth of each label held out of --train)",
    )
    ft.add_argument("--epochs", type=float, default=3.0, help="passes over the data (full and lora)")
    ft.add_argument("--lr", type=float, default=None, help="learning rate (default 5e-4 lora, 5e-5 full, 2e-5 setfit)")
    ft.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (default 8)")
    ft.add_argument("--full", action="store_true", help="the same as --method full")
    ft.add_argument(
        "--max-steps", type=int, default=None, help="stop after this many optimiser steps (setfit: default 200)"
    )
    ft.add_argument("--model", default=None, help="hub id or folder (default: the bundled all-MiniLM-L6-v2)")
    ft.add_argument("--batch-size", type=int, default=16, help="examples per step on each process")
    ft.add_argument("--max-length", type=int, default=128, help="tokens kept per text (longer ones are cut)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument(
        "--skip-labels",
        type=lambda s: s.split(","),
        default=[],
        metavar="L1,L2",
        help="leave out rows with these labels, e.g. NA,None,null (by default every value is a label)",
    )
    ft.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_EVERY_STEPS,
        metavar="STEPS",
        help=f"optimiser steps between checkpoints (also one at every epoch end; default {CHECKPOINT_EVERY_STEPS})",
    )
    ft.set_defaults(func=finetune)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m helpers`` and the ``workbook`` script."""
    parser = _OneLineParser(prog="python -m helpers", description="Fine-tuning workbook tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run-notebooks", help="execute notebooks headless into a folder, timed")
    run.add_argument("--profile", default="workshop", choices=["smoke", "workshop", "full"])
    run.add_argument("--out", default="build/workshop", help="folder for executed notebooks and HTML")
    run.add_argument("--pattern", default="*.ipynb", help="which notebooks, e.g. '0[0-2]*.ipynb'")
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.set_defaults(func=run_notebooks)
    copies = sub.add_parser("exercises", help="write the learner copies (solutions blanked) into a folder")
    copies.add_argument("--out", default="exercises", help="folder for the learner copies")
    copies.add_argument("--force", action="store_true", help="replace edited copies (a dated backup is kept)")
    copies.set_defaults(func=exercises)
    _add_finetune_parser(sub)
    pr = sub.add_parser("predict", help="classify texts with a folder that finetune-classifier wrote")
    pr.add_argument("--model", required=True, help="the --output folder of finetune-classifier")
    pr.add_argument("--text", action="append", default=[], help="a text to classify (repeat for more)")
    pr.add_argument("--input", default=None, help="a .csv/.jsonl/.json file of texts to classify")
    pr.add_argument("--text-column", default="text", help="column with the texts in --input (default: text)")
    pr.set_defaults(func=predict)
    args = parser.parse_args(argv)
    args.argv = argv
    return args.func(args)
