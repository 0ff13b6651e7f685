"""bench.common.kept_rows: a partial re-run (notebook_times, full_branches) keeps only rows from this CPU, so one
results file never mixes machines."""

from __future__ import annotations

import json

from bench.common import cpu_model, kept_rows


def write(path, cpu: str) -> None:
    rows = [{"notebook": "01_x.ipynb", "seconds": 10.0, "ok": True}]
    path.write_text(json.dumps({"machine": {"cpu_model": cpu}, "rows": rows}))


def test_rows_from_this_cpu_are_kept(tmp_path):
    write(tmp_path / "notebooks-smoke.json", cpu_model())
    assert [r["notebook"] for r in kept_rows(tmp_path / "notebooks-smoke.json")] == ["01_x.ipynb"]


def test_rows_from_another_cpu_are_dropped_and_said(tmp_path, capsys):
    write(tmp_path / "notebooks-smoke.json", "Some Other CPU")
    assert kept_rows(tmp_path / "notebooks-smoke.json") == []
    assert "Some Other CPU" in capsys.readouterr().out


def test_no_earlier_file_keeps_nothing(tmp_path):
    assert kept_rows(tmp_path / "missing.json") == []
