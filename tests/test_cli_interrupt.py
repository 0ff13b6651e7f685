"""A real Ctrl-C on ``python -m helpers finetune-classifier``: it stops at a step boundary with a checkpoint,
says in one line how to continue (exit 130, no traceback), refuses a second run into the same folder while
it runs, and the ``--resume`` command it prints ends with the same model metrics as an uninterrupted run.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_resume import LABELS, LOSS_TOLERANCE, ROOT, make_tiny_model, subprocess_env  # noqa: E402

from helpers.cli import main
from helpers.data import BANKING77_DIR

STEPS = 800  # about 8 s of training on the tiny model
# Once the worker has saved a checkpoint, the test freezes it (SIGSTOP) while it tries two refused runs, so on any
# machine the Ctrl-C arrives mid-run; the frozen worker still holds its lock. Its numbers do not change.


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("interrupt")
    found = {"model": make_tiny_model(root / "model", dropout=0.1)}  # dropout on: the random state must resume too
    for split, n in (("train", 8), ("test", 4)):
        frame = pd.read_csv(BANKING77_DIR / f"{split}.csv")
        frame[frame["category"].isin(LABELS)].groupby("category").head(n).to_csv(root / f"{split}.csv", index=False)
        found[split] = root / f"{split}.csv"
    return found


def command(files, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "helpers",
        "finetune-classifier",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--label-column",
        "category",
        "--output",
        str(out),
        "--model",
        str(files["model"]),
        "--max-steps",
        str(STEPS),
        "--batch-size",
        "8",
        "--max-length",
        "12",
        "--lora-rank",
        "4",
        "--checkpoint-every",
        "5",
        "--method",
        "lora",
    ]


def checkpoint_step(out: Path) -> int:
    try:
        return json.loads((out / ".in-progress" / "checkpoint" / "trainer_state.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def _default_ctrl_c() -> None:
    # As a terminal starts a command: Ctrl-C at its default. A shell starts a background job (`make test &`)
    # with SIGINT ignored, pytest then runs with it ignored, and a child inherits that and never sees the signal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly_and_resume_matches_an_uninterrupted_run(files, tmp_path, capsys):
    out = tmp_path / "run"
    worker = subprocess.Popen(
        command(files, out),
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_ctrl_c,
    )
    deadline = time.time() + 180
    while checkpoint_step(out) < 5 and worker.poll() is None and time.time() < deadline:
        time.sleep(0.05)

    worker.send_signal(signal.SIGSTOP)
    # While it runs, a second run into the same folder is refused (its lock holds the worker's pid).
    assert main(command(files, out)[3:]) == 1
    assert f"Another run (process {worker.pid}) is writing into {out}" in capsys.readouterr().err
    assert main(command(files, out)[3:] + ["--resume"]) == 1
    assert f"Another run (process {worker.pid})" in capsys.readouterr().err

    worker.send_signal(signal.SIGINT)
    worker.send_signal(signal.SIGCONT)  # the Ctrl-C is read at the end of the step the worker was in
    _, err = worker.communicate(timeout=120)
    last = err.strip().splitlines()[-1]
    assert worker.returncode == 130, err[-3000:]
    assert "Traceback" not in err and last.startswith("Stopped at step "), err[-3000:]
    stopped_at = int(last.split()[3])
    assert 5 <= stopped_at < STEPS and f"of {STEPS} (checkpoint saved); to continue, run: " in last
    assert checkpoint_step(out) == stopped_at  # saved at the step boundary where it stopped

    resume = shlex.split(last.split("to continue, run: ", 1)[1])
    assert resume == command(files, out) + ["--resume"]  # the exact command, as it was run, plus --resume
    resumed = subprocess.run(resume, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming the run in {out}" in resumed.stdout
    assert f"| {stopped_at}/{STEPS} [" in resumed.stderr and f"| 0/{STEPS} [" not in resumed.stderr  # not from 0

    straight = tmp_path / "straight"
    done = subprocess.run(
        command(files, straight), cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (json.loads((folder / "metrics.json").read_text()) for folder in (out, straight))
    assert a["methods"]["lora"]["steps"] == b["methods"]["lora"]["steps"] == STEPS
    assert a["accuracy"] == b["accuracy"] and a["macro_f1"] == pytest.approx(b["macro_f1"], abs=1e-9)
    ha, hb = (json.loads((folder / "history.json").read_text())["train"] for folder in (out, straight))
    assert [r["step"] for r in ha] == list(range(1, STEPS + 1))  # the History continues across the interrupt
    for x, y in zip(ha, hb):
        assert x["loss"] == pytest.approx(y["loss"], abs=LOSS_TOLERANCE), (x, y)
    assert not (out / ".in-progress").exists()
