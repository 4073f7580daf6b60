"""mlbench: reproducible one-command experiments that test claims from ML papers.

Public API (no torch import happens until a run starts):

    import mlbench
    mlbench.run("attn-scaling", profile="smoke", seeds=2)   # -> RunResult
    mlbench.results("results").to_pandas()                 # every complete run, one row each
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

if "torch" not in _sys.modules:  # OpenMP reads this once, when torch loads: sleep, don't spin
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run(experiment: str, **kwargs):
    """Run an experiment as `mlbench run` would; see `mlbench.core.runner.run_experiment`."""
    from mlbench.core.runner import run_experiment

    return run_experiment(experiment, **kwargs)


def sweep(experiment: str, grid: dict, **kwargs):
    """Run a grid of configs as ordinary runs; see `mlbench.core.sweep.sweep`."""
    from mlbench.core.sweep import sweep as _sweep

    return _sweep(experiment, grid, **kwargs)


def results(root=None, experiment=None):
    """Every complete run under `root` as data; see `mlbench.core.results_api.results`."""
    from mlbench.core.results_api import results as _results

    return _results(root, experiment)
