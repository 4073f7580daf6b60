"""Build-once, cache-as-Arrow helper shared by every dataset builder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def default_cache_dir() -> Path:
    """$MLBENCH_CACHE, else ~/.cache/mlbench (datasets are regenerated if it is removed)."""
    return Path(os.environ.get("MLBENCH_CACHE") or Path.home() / ".cache" / "mlbench")


def build(generator: Callable[..., Any], cache_dir: Path, **gen_kwargs: Any):
    """`datasets.Dataset.from_generator(generator, gen_kwargs)` cached under `cache_dir`.

    `generator` must be a pure module-level function (its source and kwargs make the
    fingerprint); it yields one dict per example. Pass sequences in `gen_kwargs` as tuples:
    `datasets` treats list values as shards. Seed it with an int (`ctx.seed(name, k)`), not a
    torch.Generator.
    """
    import datasets

    datasets.disable_progress_bars()
    return datasets.Dataset.from_generator(generator, gen_kwargs=gen_kwargs,
                                           cache_dir=str(Path(cache_dir) / "datasets"))
