"""A user's table file (.csv, .jsonl or .json) read as strings, with errors that name the line to fix.

Cells are kept as written: "007" stays "007", "NA" and "None" stay labels. Each row's index is its line number
(for a .json array: its example number), so a check on the rows can say where a problem is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

CSV_SEPARATORS = ",;\t|"  # tried on the header line; the one that splits it into most columns wins


def read_table(path: Path) -> pd.DataFrame:
    """A user's .csv (separator sniffed), .jsonl or .json (array of objects, or JSON lines) as strings.

    The index holds each row's line number (a .json array: its example number), for error messages.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the path (relative paths start at {Path.cwd()}).")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise ValueError(f"{path.name}: use a .csv, .jsonl or .json file (one example per row).")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is dropped
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path.name} is not UTF-8 text (byte {err.start}, line {line}); re-save it as UTF-8."
        ) from None
    if not text.strip():
        raise ValueError(f"{path} is empty; it needs a header row and at least one example.")
    frame = _read_csv(text, path) if suffix == ".csv" else _read_json(text, path)
    if frame.empty:
        raise ValueError(f"{path.name} has a header but no rows; add examples.")
    return frame


def _read_csv(text: str, path: Path) -> pd.DataFrame:
    header = text.split("\n", 1)[0]
    sep = max(CSV_SEPARATORS, key=lambda s: len(next(csv.reader([header], delimiter=s))))  # ties: ','
    try:  # dtype=str and no NA parsing: "007" stays "007", "NA" and "None" stay labels
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        where = (
            f"line {found[2]} has {found[3]} fields but the header has {found[1]}"
            if found
            else " ".join(str(err).split())
        )
        raise ValueError(
            f"{path.name} could not be read as CSV separated by {sep!r}: {where}; put texts that "
            f"contain {sep!r} in double quotes."
        ) from None
    frame.index = range(2, len(frame) + 2)  # line 1 is the header
    return frame.fillna("")  # a row with fewer fields than the header


def _read_json(text: str, path: Path) -> pd.DataFrame:
    array = path.suffix.lower() == ".json" and text.lstrip().startswith("[")
    if array:
        try:
            rows = list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path.name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                "fix it, or write one JSON object per line."
            ) from None
    else:
        rows = jsonl_rows(text, path)
    for number, row in rows:
        if not isinstance(row, dict):
            raise ValueError(
                f"{path.name} {'example' if array else 'line'} {number} is not a JSON object; write "
                'each example as {"text": "...", "label": "..."}.'
            )
    cells = [{key: _json_cell(value) for key, value in row.items()} for _, row in rows]
    return pd.DataFrame(cells, index=[number for number, _ in rows], dtype=object).fillna("")


def jsonl_rows(text: str, path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line of JSON Lines ``text`` read from ``path``."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path.name} line {number} is not valid JSON ({err.msg}); fix or remove that line."
                ) from None
    return rows


def _json_cell(value: Any) -> Any:
    # Strings stay as written; numbers keep their JSON spelling (7 -> "7", 7.0 -> "7.0"); null is empty;
    # lists and objects are kept so that the check can name them.
    if value is None:
        return ""
    return value if isinstance(value, (str, list, dict)) else json.dumps(value)
