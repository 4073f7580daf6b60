"""Build-once, cache-as-Arrow helper shared by every dataset builder."""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable

KEY_VERSION = 1  # bump to invalidate every cached dataset (a change in how rows are stored)


def default_cache_dir() -> Path:
    """$MLBENCH_CACHE, else ~/.cache/mlbench (datasets are regenerated if it is removed)."""
    return Path(os.environ.get("MLBENCH_CACHE") or Path.home() / ".cache" / "mlbench")


def cache_key(generator: Callable[..., Any], gen_kwargs: dict[str, Any]) -> str:
    """`<module>.<function>-<hash>`: the hash covers the source of the generator's whole module
    (its constants and helpers too, which `datasets`' own fingerprint misses), the module's
    `DATA_VERSION` if it has one, and the parameters. Edit the module: new rows."""
    module = sys.modules[generator.__module__]
    source = inspect.getsource(module)
    text = "\n".join([str(KEY_VERSION), generator.__module__, generator.__qualname__,
                      str(getattr(module, "DATA_VERSION", "")), source,
                      repr(sorted(gen_kwargs.items()))])
    return f"{generator.__module__}.{generator.__qualname__}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def build(generator: Callable[..., Any], cache_dir: Path, **gen_kwargs: Any):
    """`datasets.Dataset.from_generator(generator, gen_kwargs)` cached under
    `cache_dir/datasets/<cache_key>/`.

    `generator` must be a pure module-level function that draws only on its module and its
    kwargs (code it calls in another module is not part of the key: give that module's data a
    `DATA_VERSION` in the generator's module and bump it); it yields one dict per example. Pass
    sequences in `gen_kwargs` as tuples: `datasets` treats list values as shards. Seed it with an
    int (`ctx.seed(name, k)`), not a torch.Generator.
    """
    import datasets

    datasets.disable_progress_bars()
    folder = Path(cache_dir) / "datasets" / cache_key(generator, gen_kwargs)
    return datasets.Dataset.from_generator(generator, gen_kwargs=gen_kwargs, cache_dir=str(folder))
