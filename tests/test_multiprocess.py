"""The one training loop under ``torchrun --nproc_per_node 2`` on the CPU (gloo): it completes, only the
main process writes checkpoints and logs, and the metric matches a single-process run.
Run as a script (by torchrun), this file is the worker.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import PartialState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_resume import make_tiny_model, run_tiny, subprocess_env  # noqa: E402

# Two processes with micro-batch 4 see the same 8 examples per step as one process with 8, and DDP
# averages their gradients, so only float summation order differs. Dropout is off (its random masks
# differ per process).
LOSS_TOLERANCE = 1e-3
TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed next to this Python")
def test_two_processes_match_one(tmp_path):
    model_dir = make_tiny_model(tmp_path / "model", dropout=0.0)
    ckpt, logs, out = tmp_path / "ckpt", tmp_path / "logs", tmp_path / "history.json"
    command = [
        str(TORCHRUN),
        "--standalone",
        "--nproc_per_node",
        "2",
        "--log-dir",
        str(logs),
        "--redirects",
        "3",
        __file__,
        "--model",
        str(model_dir),
        "--ckpt",
        str(ckpt),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, env=subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=240)
    rank_logs = {int(p.parent.name): p.read_text() for p in logs.rglob("stderr.log")}
    assert done.returncode == 0, f"{done.stderr[-2000:]}\n{rank_logs}"

    two = json.loads(out.read_text())
    assert two["steps"] == 24 and two["world"] == 2
    # Only the main process shows progress and writes the checkpoint's state and weights.
    assert "Training" in rank_logs[0] and "Training" not in rank_logs[1]
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        [
            "trainer_state.json",
            "model.safetensors",
            "optimizer.bin",
            "scheduler.bin",
            "best.safetensors",
            "random_states_0.pkl",
            "random_states_1.pkl",
        ]
    )  # one RNG file per process is accelerate's design
    assert not ckpt.with_name("ckpt.tmp").exists() and not ckpt.with_name("ckpt.old").exists()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one, _ = run_tiny(model_dir, batch_size=8)
    finally:
        torch.set_num_threads(threads)
    assert one.steps == 24
    assert two["final_eval_loss"] == pytest.approx(one.evals[-1]["eval_loss"], abs=LOSS_TOLERANCE)
    assert two["final_train_loss"] == pytest.approx(one.final_loss, abs=LOSS_TOLERANCE)


def _main() -> None:
    parser = argparse.ArgumentParser(description="worker for test_multiprocess (run under torchrun)")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    history, _ = run_tiny(args.model, args.ckpt, batch_size=4, progress=True)
    state = PartialState()
    if state.is_main_process:
        args.out.write_text(
            json.dumps(
                {
                    "steps": history.steps,
                    "world": state.num_processes,
                    "final_eval_loss": history.evals[-1]["eval_loss"],
                    "final_train_loss": history.final_loss,
                }
            )
        )


if __name__ == "__main__":
    _main()
