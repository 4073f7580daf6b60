import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

import mlbench
from mlbench.core import store
from mlbench.core.errors import RunStoreError

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a" / "f.json"
    store.atomic_write_json(path, {"x": 1})
    store.atomic_write_json(path, {"x": 2})
    assert store.read_json(path) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    store.atomic_write_text(path, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RunStoreError, match="disk full"):
        store.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_corrupt_json_is_a_store_error(tmp_path):
    (tmp_path / "summary.json").write_text('{"verdict": ')
    with pytest.raises(RunStoreError, match="corrupt JSON"):
        store.read_json(tmp_path / "summary.json")


def test_results_root_checks(tmp_path):
    store.ensure_writable_root(tmp_path / "new" / "root")
    assert (tmp_path / "new" / "root").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunStoreError, match="not a directory"):
        store.ensure_writable_root(tmp_path / "file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_root(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(RunStoreError, match="not writable"):
        store.ensure_writable_root(ro)


def test_each_rename_is_followed_by_an_fsync_of_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        st = os.fstat(fd)
        synced.append((stat.S_ISDIR(st.st_mode), st.st_ino))
        real(fd)

    monkeypatch.setattr(store.os, "fsync", spy)
    store.atomic_write_text(tmp_path / "sub" / "f.txt", "x")
    assert synced == [(False, (tmp_path / "sub" / "f.txt").stat().st_ino), (True, (tmp_path / "sub").stat().st_ino)]


def git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def new_manifest():
    return store.new_manifest(experiment="e", experiment_version=1, run_id="r", device={"type": "cpu"},
                              determinism={"threads": 1})


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_manifest_records_this_checkouts_commit_and_dirt():
    man = new_manifest()
    assert man["status"] == "running" and man["versions"]["python"]
    assert man["git"] == {"commit": git("rev-parse", "HEAD"),
                          "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_an_installed_copy_inside_another_repository_records_unknown(tmp_path, monkeypatch):
    other = tmp_path / "their-project"
    site = other / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "mlbench" / "core").mkdir(parents=True)
    git("init", "-q", cwd=other)
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "theirs", cwd=other)
    monkeypatch.setattr(store, "__file__", str(site / "mlbench" / "core" / "store.py"))
    assert store.git_state() == {"commit": "unknown", "dirty": None}


def test_one_version_number():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "mlbench/__init__.py"
    assert new_manifest()["versions"]["mlbench"] == mlbench.__version__


def test_requires_python_admits_no_version_the_code_cannot_run_on():
    from packaging.specifiers import SpecifierSet

    needs_311 = [p for d in ("mlbench", "cli") for p in (ROOT / d).rglob("*.py") if "import tomllib" in p.read_text()]
    assert needs_311  # tomllib is new in Python 3.11
    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert not spec.contains("3.10.14") and spec.contains("3.11.0")
