"""paths: results go to the checkout's build/, or to a user cache folder for an installed copy; never into
the installed package."""

from __future__ import annotations

from pathlib import Path

from helpers import cache, paths


def test_a_checkout_writes_under_its_build_folder():
    root = paths.project_root()
    assert root is not None and (root / "helpers").is_dir()
    assert paths.build_dir() == root / "build"
    assert cache.cache_root() == root / "build" / "cache"


def test_an_installed_copy_writes_to_the_user_cache(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"  # what an installed package sees beside itself: no notebooks/
    (site / "helpers").mkdir(parents=True)
    monkeypatch.setattr(paths, "PACKAGE_PARENT", site)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("WORKBOOK_CACHE_DIR", raising=False)
    assert paths.project_root() is None
    assert paths.build_dir() == tmp_path / "xdg" / "fine-tuning-workbook" / "build"
    assert site not in cache.cache_root().parents
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(tmp_path / "mine"))
    assert paths.build_dir() == tmp_path / "mine" / "build"


def test_cached_results_land_in_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PACKAGE_PARENT", tmp_path)  # no notebooks/ here: an installed copy
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("WORKBOOK_PROFILE", "smoke")
    monkeypatch.setenv("WORKBOOK_CACHE", "on")
    calls = []
    assert cache.cached("probe", {"k": 1}, lambda: calls.append(1) or {"v": 2}) == {"v": 2}
    assert cache.cached("probe", {"k": 1}, lambda: calls.append(1) or {"v": 3}) == {"v": 2}
    assert len(calls) == 1
    assert [p.parent for p in (tmp_path / "user" / "build" / "cache" / "smoke").glob("probe-*.json")]


def test_folder_size_is_in_mib(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"\0" * 2**20)
    (tmp_path / "sub" / "b.bin").write_bytes(b"\0" * 2**19)  # files in subfolders count too
    assert paths.folder_size_mib(tmp_path) == 1.5


def test_paths_inside_the_checkout_print_relative(tmp_path):
    root = paths.project_root()
    assert paths.relative_to_root(root / "build" / "shipped" / "x") == Path("build/shipped/x")
    assert paths.relative_to_root(tmp_path / "x") == (tmp_path / "x").resolve()
    assert paths.DATA_DIR == root / "data" and (paths.DATA_DIR / "banking77").is_dir()
