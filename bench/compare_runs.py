"""Compare the outputs of two runs of the executed notebooks, cell by cell, with timings masked.

A refactor must not change a lesson's numbers: run the notebooks before and after (same profile, cache
off) and compare. Only what the learner reads is compared: printed text, rendered Markdown and tables.
Numbers that are timings (a number with a unit of time or a rate) are masked, since they differ between
any two runs; every other difference is printed and makes the exit status 1.

    python -m bench.compare_runs BEFORE_DIR AFTER_DIR [--notebooks 01 04]
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import nbformat

# A number followed by a unit of time or a rate, or a clock time: masked before comparing.
TIMING = re.compile(
    r"\d[\d,]*(?:\.\d+)?\s*(?:ms|s|sec|secs|seconds?|min|mins|minutes?|h|hours?|it/s|s/it|steps?/s|s/step"
    r"|tokens?/s|examples?/s|queries/s|q/s|x faster|x slower)\b"
    r"|\d+:\d\d(?::\d\d)?"
)
# Lines that are about time throughout (a table row or sentence of timings): every number in them is masked.
TIME_WORDS = re.compile(r"second|latency|throughput|per second|/s\b|wall|elapsed|time|load_s|_s\b|_ms\b", re.IGNORECASE)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


def cell_texts(path: Path) -> list[str]:
    """The text a learner reads under each code cell (stdout, text/markdown, text/plain), one string a cell."""
    notebook = nbformat.read(path, as_version=4)
    texts = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                parts.append(mask(out.text))
            elif out.output_type in ("execute_result", "display_data"):
                data = out.get("data", {})
                markdown = data.get("text/markdown")
                parts.append(mask(markdown, tables=False) if markdown else mask(data.get("text/plain", "")))
            elif out.output_type == "error":
                parts.append(f"ERROR {out.ename}: {out.evalue}")
        texts.append("\n".join(parts))
    return texts


def mask(text: str, tables: bool = True) -> str:
    """``text`` with timings replaced by <t>: numbers with a unit of time, every number on a line about time,
    the columns of a printed table whose header is about time, and object addresses (``0x7f...``)."""
    lines, spans = [], []
    for line in text.splitlines():
        line = ADDRESS.sub("0x<a>", line)
        if not line.strip():
            spans = []  # a table ends at a blank line
        elif TIME_WORDS.search(line):
            spans = (_time_columns(line) or spans) if tables else []
            lines.append(line if spans else NUMBER.sub("<t>", TIMING.sub("<t>", line)))
            continue
        for start, end in spans:  # a row of a table with time columns: blank those columns out
            line = line[:start] + NUMBER.sub(lambda m: "t" * len(m[0]), line[start:end]) + line[end:]
        lines.append(TIMING.sub("<t>", line))
    return "\n".join(lines)


def _time_columns(header: str) -> list[tuple[int, int]]:
    # A pandas table header: right-aligned names; a column spans from the end of the previous name to its own end.
    # A line with numbers in it is a sentence or a row, not a header.
    if NUMBER.search(header):
        return []
    spans, previous_end = [], 0
    for match in re.finditer(r"\S+", header):
        if TIME_WORDS.search(match[0]):
            spans.append((previous_end, match.end()))
        previous_end = match.end()
    return spans


def compare(before: Path, after: Path) -> list[str]:
    """Unified diffs (one per changed cell) between the two executed copies of a notebook."""
    old, new = cell_texts(before), cell_texts(after)
    if len(old) != len(new):
        return [f"{before.name}: {len(old)} code cells before, {len(new)} after; compared in order"]
    diffs = []
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            lines = difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after", lineterm="", n=0)
            diffs.append(f"{before.name}, code cell {i}:\n" + "\n".join(list(lines)[2:]))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--notebooks", nargs="*", default=None, help="notebook numbers to compare (default: all)")
    args = parser.parse_args(argv)
    changed = 0
    for path in sorted(args.before.glob("[0-9][0-9]_*.ipynb")):
        if args.notebooks and path.name[:2] not in args.notebooks:
            continue
        other = args.after / path.name
        if not other.exists():
            print(f"{path.name}: missing in {args.after}")
            changed += 1
            continue
        diffs = compare(path, other)
        print(f"{path.name}: {'same' if not diffs else f'{len(diffs)} cells differ'}")
        for diff in diffs:
            print(diff)
        changed += bool(diffs)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
