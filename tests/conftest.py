"""Shared fixtures. Tests never touch the network: HF libraries run offline."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture
def results(tmp_path):
    """A fresh results root."""
    return tmp_path / "results"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """(root, [run A, run B]): two tiny attn-scaling smoke runs that differ only in lr, one results
    root per test module."""
    import mlbench
    from helpers import TINY

    root = tmp_path_factory.mktemp("results")
    runs = [mlbench.run("attn-scaling", profile="smoke", sets=[*TINY, f"lr={lr}"], results=root, threads=1)
            for lr in (0.001, 0.003)]
    return root, runs


@pytest.fixture(scope="session")
def run_once(tmp_path_factory):
    """`run_once(name, profile="quick", sets=(), seeds=None)`: an experiment's run, shared by every
    test of the session that asks for the same one (quick runs are the slow part of the suite)."""
    import mlbench

    root = tmp_path_factory.mktemp("shared-results")
    done = {}

    def run(name, profile="quick", sets=(), seeds=None):
        key = (name, profile, tuple(sets), seeds)
        if key not in done:
            done[key] = mlbench.run(name, profile=profile, sets=list(sets), seeds=seeds, results=root)
        return done[key]

    return run


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`), an experiment's own tests and its registry-wide
    tests run in one worker, so the session's `run_once` computes its quick runs once."""
    for item in items:
        name = item.path.stem
        if name.startswith("test_exp_"):
            group = name.removeprefix("test_exp_")
        elif name == "test_registry" and hasattr(item, "callspec"):
            group = item.callspec.params["name"].replace("-", "_")
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
