"""Shared fixtures. Tests never touch the network: HF libraries run offline."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture
def results(tmp_path):
    """A fresh results root."""
    return tmp_path / "results"
