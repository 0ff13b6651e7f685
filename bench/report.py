"""Render docs/benchmarks.md and the README's run-time table from bench/results/*.json.

    python -m bench.report
Every number in those tables comes from a results file written by a bench script.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _machine(m: dict) -> str:
    gpu = f", {m['gpu']}" if m.get("gpu") else ""
    cpu = (
        f"{m['cpu_model']} ({', '.join(m['cpu_features']) or 'no AVX2'})"
        if m.get("cpu_model")
        else "CPU model not recorded"
    )
    return f"{m['device']}{gpu}, {cpu}, {m['cpu_cores']} cores, torch {m['torch']}, measured {m['date']}"


def runtime_table() -> str:
    """Markdown: seconds per notebook for each profile that has results."""
    profiles = {p: _load(f"notebooks-{p}") for p in ("smoke", "workshop", "full")}
    profiles = {p: r for p, r in profiles.items() if r}
    for p in ("smoke", "workshop", "full"):  # the same profile timed on a second machine (notebook_times --on)
        for path in sorted(RESULTS.glob(f"notebooks-{p}-on-*.json")):
            profiles[f"{p}, {path.stem.split('-on-', 1)[1]}"] = json.loads(path.read_text())
    in_make_test = _load("make_test")
    if in_make_test and in_make_test.get("notebook_seconds"):  # the newest smoke run: inside `make test`
        rows = [{"notebook": n, "seconds": s, "ok": True} for n, s in in_make_test["notebook_seconds"].items()]
        profiles["smoke, in make test"] = {
            "rows": rows,
            "total_seconds": sum(r["seconds"] for r in rows),
            "machine": in_make_test["machine"],
        }
    if not profiles:
        return "No notebook timings yet: run `python -m bench.notebook_times --profile smoke`."
    names = sorted({row["notebook"] for r in profiles.values() for row in r["rows"]})
    head = "| notebook | " + " | ".join(f"{p} (s)" for p in profiles) + " |"
    lines = [head, "|---|" + "---|" * len(profiles)]
    for name in names:
        cells = []
        for r in profiles.values():
            row = next((x for x in r["rows"] if x["notebook"] == name), None)
            cells.append("not timed" if row is None else f"{row['seconds']:.0f}" + ("" if row["ok"] else " (failed)"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    def total(r: dict) -> str:
        done = f"**{r['total_seconds'] / 60:.1f} min**"
        return done if len(r["rows"]) == len(names) else f"{done} ({len(r['rows'])} of {len(names)} notebooks)"

    lines.append("| **total** | " + " | ".join(total(r) for r in profiles.values()) + " |")
    lines.append("")
    lines += [
        f"- {p}: commit {r.get('commit', 'not recorded')}; {_machine(r['machine'])}"
        for p, r in profiles.items()
        if p != "smoke, in make test"
    ]
    if "smoke, in make test" in profiles:
        lines.append(
            f"- smoke, in make test: each notebook as `make test` ran it from a fresh clone of commit "
            f"{in_make_test['commit']} (exercise starting points checked after each run); "
            f"{_machine(in_make_test['machine'])}"
        )
    lines += [
        f"- {p}: not timed yet (`python -m bench.notebook_times --profile {p}`)"
        for p in ("smoke", "workshop", "full")
        if p not in profiles
    ]
    return "\n".join(lines)


def ab_section() -> str:
    """The interleaved before/after runs kept in bench/results/ab-*.txt, verbatim."""
    files = sorted(RESULTS.glob("ab-*.txt"))
    if not files:
        return "None kept yet."
    return "\n".join(f"\n`{f.name}`:\n\n```\n{f.read_text().strip()}\n```" for f in files)


def make_test_line() -> str:
    """One sentence: how long `make test` took from a fresh clone, and whether it passed."""
    r = _load("make_test")
    if not r:
        return "`make test` from a fresh clone: not timed yet (`python -m bench.make_test_time`)."
    status = "passed" if r["exit_code"] == 0 else f"FAILED (exit {r['exit_code']})"
    notebooks = r.get("notebook_seconds", {})
    alone = (
        (
            f" (the notebooks alone: {sum(notebooks.values()) / 60:.1f} min, the slowest "
            f"{max(notebooks, key=notebooks.get)} at {max(notebooks.values()):.0f} s)"
        )
        if notebooks
        else ""
    )
    what = (
        "`.ci/run` (CI: `make test`, then `make test-browser`)" if r.get("command") == "bash .ci/run" else "`make test`"
    )
    seed = f", unit tests in random order with seed {r['unit_seed']}" if r.get("unit_seed") is not None else ""
    return (
        f"{what} from a fresh clone (commit {r['commit']}; venv, install, unit tests, every notebook in the "
        f"smoke profile{seed}): **{r['seconds'] / 60:.0f} min**{alone}, {status}; {_machine(r['machine'])}."
    )


def quality_line() -> str:
    """One sentence for the README: full-data banking77 accuracy against the published reference."""
    q = _load("quality")
    if not q or "full" not in q:
        return "Full-data banking77 accuracy: not measured yet (`python -m bench.quality`)."
    r, ref = q["full"], q["references"]["full"]
    return (
        f"MiniLM fine-tuned on all of banking77 ({r['epochs']:g} epochs, {r['train_seconds'] / 60:.0f} min on "
        f"{q['machine']['cpu_cores']} CPU cores): **{r['accuracy']:.2%}** test accuracy, against "
        f"{ref['accuracy']:.2%} published for {ref['model']} ({ref['params_m']}M parameters, "
        f"{ref['params_m'] / r['params_m']:.0f}x larger)." + search_line()
    )


def _test_rows(search: dict | None) -> dict[str, dict]:
    """The search's test-stage runs that finished, by recipe name."""
    return {r["name"]: r for r in (search or {}).get("rows", []) if r["stage"] == "test" and "accuracy" in r}


def search_line() -> str:
    """One sentence for the README: the recipe chosen on validation and its one score on test, if searched."""
    s = _load("banking77_search")
    tests = _test_rows(s)
    if not s or s.get("chosen") not in tests:
        return ""
    best = tests[s["chosen"]]
    return (
        " A recipe search on a held-out 10% of the training set "
        f"(`bench/banking77_search.py`, {s['machine']['gpu'] or 'CPU'}) "
        f"chose {s['chosen']}: **{best['accuracy']:.2%}** on test (95% CI {best['low']:.2%} to {best['high']:.2%})."
    )


def quality_section() -> str:
    """Markdown: banking77 accuracy against the published references."""
    q = _load("quality")
    if not q:
        return "Not measured yet: run `python -m bench.quality`."
    lines = ["| setting | model | params | test accuracy | macro-F1 | training time |", "|---|---|---|---|---|---|"]
    for key, label in (("full", "full data (10,003 examples)"), ("10-shot", "10 examples per intent")):
        if key in q:
            r = q[key]
            lines.append(
                f"| {label} | {q['model']}, {r['epochs']:g} epochs, lr {r['learning_rate']:g} | "
                f"{r['params_m']}M | **{r['accuracy']:.2%}** | {r['macro_f1']:.3f} | "
                f"{r['train_seconds'] / 60:.1f} min |"
            )
        ref = q["references"][key]
        lines.append(f"| {label} | {ref['model']} (published) | {ref['params_m']}M | {ref['accuracy']:.2%} | | |")
    if "selection" in q:
        sel = q["selection"]
        lines += [
            "",
            f"The full-data learning rate was chosen on a stratified {sel['validation_share']:.0%} of the "
            "training set held back from training (the test set chose nothing):",
            "",
            "| learning rate | validation accuracy | training time |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['learning_rate']:g} | {r['accuracy']:.2%} | {r['train_seconds'] / 60:.1f} min |" for r in sel["rows"]
        ]
        lines += ["", f"Chosen: {sel['chosen_learning_rate']:g}."]
    return "\n".join(lines) + f"\n\nMeasured on {_machine(q['machine'])}."


def search_section() -> str:
    """Markdown: the banking77 recipe search on validation, and the chosen recipe's one score on test."""
    s = _load("banking77_search")
    if not s:
        return "Not run yet: `python -m bench.banking77_search` (minutes on a GPU; many hours on 2 CPU cores)."
    runs: dict[str, list[dict]] = {}
    for r in s["rows"]:
        if r["stage"] == "validation" and "accuracy" in r:
            runs.setdefault(r["name"], []).append(r)
    mean = {name: sum(r["accuracy"] for r in rs) / len(rs) for name, rs in runs.items()}
    start = runs.get("start", [{}])[0]
    lines = [
        f"Each recipe trained on {1 - s['validation_share']:.0%} of the training set and scored on the stratified "
        f"{s['validation_share']:.0%} held back, once per seed ({', '.join(map(str, s['seeds']))}). The start is "
        f"`bench/quality.py`'s recipe: {', '.join(f'{k} {v:g}' for k, v in s['start'].items())}. One seed's "
        f"validation accuracy has a 95% bootstrap interval about {start.get('high', 0) - start.get('low', 0):.1%} "
        "wide, so gains smaller than about half of that are not distinguishable from noise.",
        "",
        "| recipe (changes to the start) | validation accuracy (mean) | per seed | minus start | minutes per run* |",
        "|---|---|---|---|---|",
    ]
    for name, rs in sorted(runs.items(), key=lambda kv: (kv[0] != "start", -mean[kv[0]])):
        seeds = " / ".join(f"{r['accuracy']:.2%}" for r in rs)
        lines.append(
            f"| {name} | {mean[name]:.2%} | {seeds} | {mean[name] - mean.get('start', mean[name]):+.2%} | "
            f"{rs[0]['train_seconds'] / 60:.1f} |"
        )
    lines += ["", "\\* several runs at once on one device, so a run alone is faster."]
    stacks = [n for n in runs if "," in n]  # two or more changes together (step 2)
    if stacks:
        single = max((n for n in runs if "," not in n), key=mean.get)
        stack = max(stacks, key=mean.get)
        lines += [
            "",
            f"The changes that helped, stacked in the order of their gains: the best stack ({stack}) scored "
            f"{mean[stack] - mean[single]:+.2%} against the best single change ({single}), so "
            + ("the gains do not add up at this size." if mean[stack] <= mean[single] else "they add up."),
        ]
    failed = sorted({r["name"] for r in s["rows"] if "error" in r})
    if failed:
        lines += ["", f"Failed (not in the table): {', '.join(failed)}."]
    tests = _test_rows(s)
    if s.get("chosen") in tests:
        best = tests[s["chosen"]]
        lines += [
            "",
            f"Chosen on validation: **{s['chosen']}**. Trained on the whole training set and scored on the test set "
            f"once: **{best['accuracy']:.2%}** (95% CI {best['low']:.2%} to {best['high']:.2%}).",
        ]
        earlier = [n for n in s.get("chosen_in_turn", [])[:-1] if n in tests and n != s["chosen"]]
        lines += [
            f"An earlier call of the search, with fewer runs, chose {n} and scored it on test then: "
            f"{tests[n]['accuracy']:.2%} (95% CI {tests[n]['low']:.2%} to {tests[n]['high']:.2%})."
            for n in dict.fromkeys(earlier)
        ]
        published = (_load("quality") or {}).get("references", {}).get("full")
        if published:
            inside = best["low"] <= published["accuracy"] <= best["high"]
            lines.append(
                f"The published {published['accuracy']:.2%} of {published['model']} ({published['params_m']}M "
                f"parameters) lies {'inside' if inside else 'outside'} that interval"
                + (
                    f": on these {len(best['right']):,} test queries the two are not distinguishable."
                    if inside
                    else "."
                )
            )
        if "start" in tests and "test_gain_over_start" in s:
            g = s["test_gain_over_start"]
            lines.append(
                f"The start recipe, trained the same way: {tests['start']['accuracy']:.2%}; the chosen recipe minus "
                f"the start on the same test queries: {g['estimate']:+.2%} "
                f"(95% CI {g['low']:+.2%} to {g['high']:+.2%})."
            )
    return "\n".join(lines) + f"\n\nMeasured on {_machine(s['machine'])}; {s.get('minutes', '?')} min in all."


def loop_section() -> str:
    """Markdown: the workbook loop against transformers.Trainer, on a CPU and, where measured, on a GPU."""
    found = [r for r in map(_load, ("loop_vs_trainer", "loop_vs_trainer-gpu")) if r]
    if not found:
        return "Not measured yet: run `python -m bench.loop_vs_trainer`."
    return "\n\n".join(map(_loop_table, found))


def _loop_table(r: dict) -> str:
    """Markdown: one machine's loop-against-Trainer table; the ratio and MFU from each side's fastest repetition
    (a device's first repetition also pays for warming it up)."""
    lines = ["| loop | examples/s min | median | max | seconds per repetition |", "|---|---|---|---|---|"]
    for name, s in r["runs"].items():
        e = s["examples_per_s"]
        reps = ", ".join(f"{x:.1f}" for x in s["seconds"])
        lines.append(f"| {name} | {e['min']:.1f} | {e['median']:.1f} | {e['max']:.1f} | {reps} |")
    best = {name: s["examples_per_s"]["max"] for name, s in r["runs"].items()}
    mfu = ""
    if r.get("gpu_peak_tflops"):  # the JSON's MFU is at the median rate: scale it to the fastest repetition
        rates = {name: s["mfu"] * best[name] / s["examples_per_s"]["median"] for name, s in r["runs"].items()}
        mfu = " Model FLOPs utilisation: " + ", ".join(f"{name} {m:.2%}" for name, m in rates.items()) + "."
    return (
        "\n".join(lines) + "\n\nRatio (workbook / Trainer, fastest repetitions): "
        f"**{best['workbook loop'] / best['HF Trainer']:.2f}**. {r['steps']} steps of batch {r['batch_size']}, "
        f"{r['reps']} interleaved repetitions, max_length {r['max_length']}, dynamic padding in both.{mfu} "
        f"{_machine(r['machine'])}."
    )


def chat_section() -> str:
    """Markdown: SmolLM2 training and generation throughput."""
    r = _load("chat_throughput")
    if not r:
        return "Not measured yet: run `python -m bench.chat_throughput`."
    lines = ["| what | tokens per example | batch | tokens/s |", "|---|---|---|---|"]
    lines += [
        f"| {x['what']} | {x['tokens_per_example']} | {x['batch']} | {x['tokens_per_s']:.0f} |" for x in r["rows"]
    ]
    return "\n".join(lines) + f"\n\n{_machine(r['machine'])}."


def branches_section() -> str:
    """Markdown: the full profile's branches rehearsed at smoke sizes on a CPU (bench/full_branches.py)."""
    r = _load("full_branches")
    if not r:
        return "Not rehearsed yet: run `python -m bench.full_branches`."
    lines = ["| notebook | switched on | ran | seconds | claims held at smoke sizes |", "|---|---|---|---|---|"]
    for row in r["rows"]:
        held = [c["claim"] for c in row["claims"] if c["holds"]]
        failed = [c["claim"] for c in row["claims"] if not c["holds"]]
        claims = f"{len(held)} of {len(row['claims'])}" + (f"; not held: {'; '.join(failed)}" if failed else "")
        ran = "yes" if row["ok"] else f"no: {row['error'][-200:]}"
        lines.append(f"| {row['notebook']} | {row['switched_on']} | {ran} | {row['seconds']:.0f} | {claims} |")
    return "\n".join(lines) + f"\n\nCommit {r['commit']}; {_machine(r['machine'])}."


def _precision_results() -> list[dict]:
    """Every bf16-against-fp32 measurement, one per machine (precision_speed.json, precision_speed-<cpu>.json)."""
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("precision_speed*.json"))]


def _speedup(name: str, row: dict) -> float:
    """How many times as fast bf16 ran as fp32 (seconds rows divide fp32 by bf16, rates the other way)."""
    return row["fp32"] / row["bf16"] if "(s)" in name else row["bf16"] / row["fp32"]


def _precision_table(r: dict) -> str:
    modes = [m for m in ("fp32", "bf16") if any(m in row for row in r["rows"].values())]
    lines = ["| measure | " + " | ".join(modes) + (" | bf16 speed-up |" if len(modes) == 2 else " |")]
    lines.append("|---|" + "---|" * (len(modes) + (len(modes) == 2)))
    for name, row in r["rows"].items():
        cells = [f"{row[m]:.3g}" for m in modes] + ([f"{_speedup(name, row):.2f}x"] if len(modes) == 2 else [])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    acc = r.get("banking77_10_intents")
    if acc:
        lines += ["", "banking77, 10 intents, MiniLM trained 3 epochs on all their training examples:", ""]
        lines += [
            f"- {m}: test accuracy {a['accuracy']:.1%} (95% CI {a['low']:.1%} to {a['high']:.1%}), "
            f"{a['train_seconds']:.0f} s of training, {a['test_examples']} test queries"
            for m, a in acc.items()
        ]
        d = r.get("bf16_minus_fp32")
        if d:
            lines.append(
                f"- bf16 minus fp32 on the same test queries: {d['estimate']:+.1%} "
                f"(95% CI {d['low']:+.1%} to {d['high']:+.1%})"
            )
    return "\n".join(lines) + f"\n\n`auto` chose: {r['auto']}. {_machine(r['machine'])}."


def precision_section() -> str:
    """Markdown: bf16 against fp32 on each measuring machine, and banking77 accuracy trained each way."""
    results = _precision_results()
    if not results:
        return "Not measured yet: run `python -m bench.precision_speed`."
    return "\n\n".join(
        f"### {r['machine']['cpu_model']} ({', '.join(r['machine']['cpu_features'])})\n\n{_precision_table(r)}"
        for r in results
    )


def cpu_line() -> str:
    """One sentence per measured CPU for the README: why run times differ by CPU, from the precision runs."""
    results = _precision_results()
    if not results:
        return "Run times depend on the CPU; `python -m bench.precision_speed` measures bf16 against fp32 on yours."
    per_cpu = []
    for r in results:
        m = r["machine"]
        ratios = [
            f"{name.rsplit(' (', 1)[0]}: {_speedup(name, row):.2f}x" for name, row in r["rows"].items() if "bf16" in row
        ]
        per_cpu.append(
            f"On {m['cpu_model']} with {', '.join(m['cpu_features'])} (measured {m['date']}), bf16 ran this many "
            f"times as fast as fp32: {'; '.join(ratios)}."
        )
    return (
        "Run times depend on the CPU (each row's machine is named above). "
        + " ".join(per_cpu)
        + ' So `mixed_precision="auto"` probes each run\'s own first step and trains in bf16 only where it measures '
        "clearly faster; notebooks 09 and 10 generate with bf16 weights where the CPU has native bf16. A CPU with "
        "AVX2 only (no AVX-512 BF16, no AMX) trains in fp32, since bf16 is emulated there, and takes longer; "
        "docs/benchmarks.md has the tables."
    )


def main() -> None:
    """Write docs/benchmarks.md and refresh the README's run-time table."""
    gpu = next(
        (
            r["machine"]
            for r in map(_load, ("notebooks-full", "banking77_search", "loop_vs_trainer-gpu", "quality"))
            if r and r["machine"].get("gpu")
        ),
        None,
    )
    gpu_text = (
        f"The banking77 search and the loop against Trainer ran on {gpu['gpu']} (each section names its machine). "
        "The full profile has not run on a GPU yet: `FULL=1 bash bench/gpu_all.sh` with the whole "
        "requirements.txt installed there."
        if gpu
        else "No GPU was available to the sessions that produced these numbers, so the full profile and the "
        "model FLOPs utilisation of the loop on a GPU are not measured yet. On a CUDA machine: "
        "`WORKBOOK_PROFILE=full python -m bench.notebook_times --profile full`, then `python -m bench.report`."
    )
    doc = f"""# Benchmarks

Every number here is written by a script in `bench/` into `bench/results/*.json` and rendered by
`python -m bench.report` (which also refreshes the run-time table in the README). Re-run a script to update it.

## Workbook run time per profile (`bench/notebook_times.py`)

{runtime_table()}

{make_test_line()}

### Before and after the speed work (`bench/ab_notebooks.sh`)

Run times on these 2-core virtual machines drift within a day: the same commit ran notebook 04 about a third slower
in the afternoon (the runs below) than in the morning (`bench/results/notebooks-smoke-fc489dd.json`). So a
before/after comparison runs the two commits interleaved, in one sitting.
{ab_section()}

## Quality against published numbers (`bench/quality.py`)

{quality_section()}

### Toward the published number: a recipe search (`bench/banking77_search.py`)

{search_section()}

## The training loop against the Hugging Face Trainer (`bench/loop_vs_trainer.py`)

{loop_section()}

## bf16 against fp32 by CPU (`bench/precision_speed.py`)

{precision_section()}

## Chat model throughput (`bench/chat_throughput.py`)

{chat_section()}

## GPU

{gpu_text}

### The full profile's branches, rehearsed on a CPU (`bench/full_branches.py`)

Without `WORKBOOK_PROFILE`, a GPU runs the full profile, whose notebooks do a few things the others do not (more
seeds, every candidate compared on validation, stricter claims). This rehearsal runs those notebooks at smoke sizes
with exactly those choices switched on, so the code has run before a learner's GPU runs it. A claim that fails at
smoke sizes is recorded rather than raised: the full profile's numbers themselves need the GPU run above.

{branches_section()}
"""
    (ROOT / "docs" / "benchmarks.md").write_text(doc)
    readme = ROOT / "README.md"
    block = (
        "<!-- runtimes:start -->\n"
        + runtime_table()
        + "\n\n"
        + cpu_line()
        + "\n\n"
        + make_test_line()
        + "\n\n"
        + quality_line()
        + "\n\nRendered by `bench/report.py` from `bench/results/`; details in "
        "[docs/benchmarks.md](docs/benchmarks.md).\n<!-- runtimes:end -->"
    )
    text = re.sub(r"<!-- runtimes:start -->.*<!-- runtimes:end -->", lambda _: block, readme.read_text(), flags=re.S)
    readme.write_text(text)
    print("wrote docs/benchmarks.md and README.md's run-time table")


if __name__ == "__main__":
    main()
