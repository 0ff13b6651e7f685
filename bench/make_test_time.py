"""Wall time of `make test` from a fresh clone, as CI runs it: install, unit tests, then every notebook (smoke).

    python -m bench.make_test_time [--repo .]
Clones the repository's committed HEAD into a temporary folder, runs `make test` (or, with --ci, `.ci/run`:
make test and then the browser test) there, and writes
bench/results/make_test.json (total seconds, exit status, tests passed per stage, each notebook's duration as
pytest reports it); the whole log goes to build/make_test.log as it runs. The README's run-time table shows
bench/notebook_times.py's runs and, beside them, these per-notebook durations.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import save


def main() -> None:
    """Clone, run `make test`, time it, save the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--ci", action="store_true", help="run .ci/run (make test, then the browser test)")
    args = parser.parse_args()
    command = ["bash", ".ci/run"] if args.ci else ["make", "test"]
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "workbook"
        subprocess.run(["git", "clone", "--quiet", args.repo, str(clone)], check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.strip()
        (Path(args.repo) / "build").mkdir(exist_ok=True)
        log_path = Path(args.repo) / "build" / "make_test.log"  # written as it runs: `tail -f` it to follow
        start = time.perf_counter()
        with log_path.open("w") as log_file:
            done = subprocess.run(command, cwd=clone, stdout=log_file, stderr=subprocess.STDOUT, text=True)
        seconds = time.perf_counter() - start
    log = log_path.read_text()
    passed = [int(n) for n in re.findall(r"(\d+) passed", log)]
    print(log[-3000:])
    durations = re.findall(r"([\d.]+)s call\s+tests/test_notebooks.py::test_notebook_executes\[(\w+)\]", log)
    notebook_seconds = {f"{name}.ipynb": float(s) for s, name in sorted(durations, key=lambda d: d[1])}
    seed = re.search(r"random order, seed (\d+)", log)
    save(
        "make_test",
        {
            "commit": commit,
            "command": " ".join(command),
            "seconds": round(seconds, 1),
            "exit_code": done.returncode,
            "unit_seed": int(seed[1]) if seed else None,
            "passed_per_stage": passed,
            "fresh_venv": True,
            "notebook_seconds": notebook_seconds,
        },
    )


if __name__ == "__main__":
    main()
