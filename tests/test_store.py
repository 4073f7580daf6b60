import os

import pytest

from mlbench.core import store
from mlbench.core.errors import RunStoreError


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


def test_manifest_records_versions_and_git():
    man = store.new_manifest(experiment="e", experiment_version=1, run_id="r", device={"type": "cpu"},
                             determinism={"threads": 1})
    assert man["status"] == "running" and man["versions"]["python"]
    assert set(man["git"]) == {"commit", "dirty"}
