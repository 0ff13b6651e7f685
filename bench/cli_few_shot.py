"""Does ``finetune-classifier`` learn from few examples? The recipe chosen on half of banking77's intents, the CLI
tested on the other half, which the choice never saw.

    python -m bench.cli_few_shot choose CANDIDATE   # half A: one candidate setting (torch: run under the CPU lock)
    python -m bench.cli_few_shot files              # half B: few-shot CSV files, as a user would have them
    python -m bench.cli_few_shot cli RUN            # half B: one CLI run (runs it under the CPU lock itself)
    python -m bench.cli_few_shot report             # bench/results/cli_few_shot.json (under the CPU lock)

The 77 intents are split in two halves by a fixed seed. On half A, 8 training examples per intent and 10 more for
validation (banking77's train split) decide the recipe's settings: the head's C, SetFit's contrastive steps, and
whether fine-tuning would beat it. Half B's files (8 per intent from the train split; banking77's test split of
those intents) are then given to the CLI as a new user would: ``--method auto`` against the old default (LoRA rank 8,
run from the last commit's code, with the issue's 8 epochs). Each CLI run is one ``flock /tmp/cpu.lock`` job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "cli_few_shot"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
LOCK = ["flock", "/tmp/cpu.lock"]
SEED, PER_INTENT, VAL_PER_INTENT = 0, 8, 10
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WORKBOOK_CACHE": "off"}
# half A candidates: name -> (method, settings)
CANDIDATES = {
    "frozen": ("frozen", {"c_grid": [1.0, 10.0, 100.0]}),
    "setfit-100": ("setfit", {"max_steps": 100}),
    "setfit-200": ("setfit", {"max_steps": 200}),
    "full-8ep": ("full", {"epochs": 8, "lr": 1e-4}),
}
# half B CLI runs: name -> (arguments after the files, run the last commit's code?)
RUNS = {
    "auto": (["--method", "auto"], False),
    "old-default-8ep": (["--epochs", "8"], True),  # the run: defaults (LoRA rank 8) and 8 epochs
    "old-default": ([], True),  # the old defaults exactly (3 epochs)
}


def halves() -> tuple[list[str], list[str]]:
    """banking77's 77 intents in two halves (38 and 39), shuffled by a fixed seed."""
    names = json.loads((ROOT / "data" / "banking77" / "categories.json").read_text())
    order = np.random.default_rng(SEED).permutation(len(names))
    return sorted(names[i] for i in order[:38]), sorted(names[i] for i in order[38:])


def few_shot_frames(intents: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train: PER_INTENT per intent, validation: VAL_PER_INTENT more, test: banking77's test split) for ``intents``."""
    train = pd.read_csv(ROOT / "data" / "banking77" / "train.csv")
    train = train[train.category.isin(intents)].sample(frac=1.0, random_state=SEED)
    rank = train.groupby("category").cumcount()
    test = pd.read_csv(ROOT / "data" / "banking77" / "test.csv")
    test = test[test.category.isin(intents)]
    return train[rank < PER_INTENT], train[(rank >= PER_INTENT) & (rank < PER_INTENT + VAL_PER_INTENT)], test


def choose(name: str) -> dict:
    """Half A: one candidate trained on 8 per intent and scored on half A's validation (its test split unused)."""
    from datasets import ClassLabel, Dataset, Features, Value  # noqa: PLC0415

    from helpers import few_shot  # noqa: PLC0415
    from helpers.classifier import fine_tune_classifier  # noqa: PLC0415
    from helpers.evaluation import predict_logits  # noqa: PLC0415
    from helpers.training import TrainConfig  # noqa: PLC0415

    intents = halves()[0]
    features = Features({"text": Value("string"), "label": ClassLabel(names=intents)})
    train, val = (
        Dataset.from_dict({"text": f.text.tolist(), "label": f.category.tolist()}, features=features)
        for f in few_shot_frames(intents)[:2]
    )
    method, settings = CANDIDATES[name]
    start, row = time.perf_counter(), {"candidate": name, "method": method, **settings}
    if method == "frozen":
        encoder = few_shot.frozen(train).encoder
        x_train, x_val = few_shot.embed(encoder, train["text"]), few_shot.embed(encoder, val["text"])
        row["val_accuracy_by_c"] = {
            str(c): float(few_shot.fit_head(x_train, train["label"], c).score(x_val, val["label"]))
            for c in settings["c_grid"]
        }
    elif method == "setfit":
        model = few_shot.setfit(train, few_shot.SetFitConfig(max_steps=settings["max_steps"], progress=True))
        x_train, x_val = few_shot.embed(model.encoder, train["text"]), few_shot.embed(model.encoder, val["text"])
        row["val_accuracy_by_c"] = {
            str(c): float(few_shot.fit_head(x_train, train["label"], c).score(x_val, val["label"]))
            for c in (1.0, 10.0, 100.0)
        }
    else:
        steps = settings["epochs"] * int(np.ceil(len(train) / 16))
        config = TrainConfig(settings["lr"], max_steps=steps, batch_size=16, eval_every_steps=None)
        run = fine_tune_classifier(train, config, method=method, max_length=64)
        from helpers.data import tokenize  # noqa: PLC0415

        logits, labels = predict_logits(run.model, tokenize(val, run.tokenizer, 64), run.tokenizer)
        row["val_accuracy"] = float(np.mean(logits.argmax(-1) == labels))
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def write_files() -> None:
    """Half B's few-shot train and test CSVs, as a user would bring them (columns text, category)."""
    WORK.mkdir(parents=True, exist_ok=True)
    train, _, test = few_shot_frames(halves()[1])
    train.to_csv(WORK / "half_b_train.csv", index=False)
    test.to_csv(WORK / "half_b_test.csv", index=False)
    print(f"half B: {len(train)} training, {len(test)} test examples, {train.category.nunique()} intents")


def old_code() -> Path:
    """The last commit's ``helpers/`` (the CLI before this change), unpacked outside the checkout."""
    where = WORK / "old_cli"
    if not (where / "helpers").exists():
        where.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", "HEAD", "helpers"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def cli(name: str) -> dict:
    """One half-B CLI run as a user types it, in its own locked job: accuracy, seconds, what it said."""
    extra, old = RUNS[name]
    out = WORK / f"run-{name}"
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    files = ["--train", str(WORK / "half_b_train.csv"), "--test", str(WORK / "half_b_test.csv")]
    command = ["-m", "helpers", "finetune-classifier", *files, "--label-column", "category", "--output", str(out)]
    cwd = old_code() if old else ROOT
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(cwd)}
    start = time.perf_counter()
    done = subprocess.run([*LOCK, PYTHON, *command, *extra], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    said = [  # as the user read it, with the repository's path made relative (the record holds no machine's paths)
        line.replace(f"{cwd}/", "")
        for line in done.stdout.splitlines()
        if line.startswith(("Method", "setfit", "lora", "frozen"))
    ]
    row = {"run": name, "arguments": extra, "code": "last commit" if old else "this change", "said": said}
    row |= {"wall_seconds_incl_lock_wait": round(time.perf_counter() - start, 1), "metrics": metrics}
    (WORK / f"cli-{name}.json").write_text(json.dumps(row, indent=1))
    return row


def interval(accuracy: float, n: int) -> list[float]:
    """95% bootstrap interval of an accuracy from its hit count (the same resampling as intervals.py)."""
    from helpers.intervals import accuracy_interval  # noqa: PLC0415

    hits = round(accuracy * n)
    ci = accuracy_interval([1] * hits + [0] * (n - hits), [1] * n)
    return [round(ci.low, 4), round(ci.high, 4)]


def report() -> None:
    """Gather half A's choice and half B's CLI runs into bench/results/cli_few_shot.json."""
    from bench.common import commit, save  # noqa: PLC0415

    a, b = halves()
    chosen = [json.loads(p.read_text()) for p in sorted(WORK.glob("choose-*.json"))]
    runs = {p.stem[4:]: json.loads(p.read_text()) for p in sorted(WORK.glob("cli-*.json"))}
    table = []
    for name, r in runs.items():
        m = r["metrics"]
        table.append(
            dict(
                run=name,
                method=m.get("method", "lora"),
                accuracy=m["accuracy"],
                ci95=interval(m["accuracy"], m["n_test"]),
            )
            | dict(seconds=m["seconds"], code=r["code"], arguments=r["arguments"])
        )
        if "baseline" in m:
            base = m["baseline"]
            table.append(
                dict(run=f"{name}: its frozen baseline", method="frozen", accuracy=base["accuracy"])
                | dict(ci95=interval(base["accuracy"], m["n_test"]), seconds=base["train_seconds"])
            )
    save(
        "cli_few_shot",
        {
            "seed": SEED,
            "per_intent": PER_INTENT,
            "half_a_intents": a,
            "half_b_intents": b,
            "half_a_choice": chosen,
            "half_b_cli": table,
            "half_b_runs": runs,
            "old_code_commit": commit().split("+")[0],
        },
    )


def main(argv: list[str]) -> int:
    what = argv[0] if argv else ""
    if what == "choose":
        row = choose(argv[1])
        WORK.mkdir(parents=True, exist_ok=True)
        (WORK / f"choose-{argv[1]}.json").write_text(json.dumps(row, indent=1))
        print(json.dumps(row))
    elif what == "files":
        write_files()
    elif what == "cli":
        print(json.dumps(cli(argv[1]), indent=1)[:3000])
    elif what == "report":
        report()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
