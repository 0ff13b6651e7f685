"""cache: a result is computed once per name, profile and settings, reused while the cache is on, and looked up
without writing."""

from helpers import cache


def test_cached_computes_once_and_lookup_reads_without_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "cache_root", lambda: tmp_path)
    monkeypatch.setenv("WORKBOOK_CACHE", "on")
    calls = []
    assert cache.lookup("run", {"lr": 1}) is None and not list(tmp_path.rglob("*.json"))
    assert cache.cached("run", {"lr": 1}, lambda: calls.append(1) or [1, 2]) == [1, 2]
    assert cache.cached("run", {"lr": 1}, lambda: calls.append(1) or [3]) == [1, 2] and calls == [1]
    assert cache.lookup("run", {"lr": 1}) == [1, 2] and cache.lookup("run", {"lr": 2}) is None
    monkeypatch.setenv("WORKBOOK_CACHE", "off")  # always recompute; a lookup finds nothing
    assert cache.lookup("run", {"lr": 1}) is None
    assert cache.cached("run", {"lr": 1}, lambda: calls.append(1) or [3]) == [3] and calls == [1, 1]
    assert cache.cached("other", {"lr": 1}, lambda: [4]) == [4]  # computed with the cache off, and still stored
    monkeypatch.setenv("WORKBOOK_CACHE", "on")  # so a later run with it on (the browser test) reuses it
    assert cache.lookup("other", {"lr": 1}) == [4]
