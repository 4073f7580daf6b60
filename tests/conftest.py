"""Shared fixtures. Tests never touch the network: HF libraries run offline."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture
def results(tmp_path):
    """A fresh results root."""
    return tmp_path / "results"


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
