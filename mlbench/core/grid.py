"""Arms × seeds as one stacked batch of models: the bookkeeping every experiment shares.

An experiment compares *arms* (scaled vs unscaled attention, fp32 vs fp16, ...) over *seeds*.
Training them one at a time wastes a small CPU; instead the M = arms × seeds models are stacked
along a leading dimension and trained as one batched model (parameters `(M, ...)`, `bmm`,
one optimiser: elementwise optimisers on stacked tensors are M independent optimisers).

    grid = Grid(("scaled", "unscaled"), ctx.seeds, coords={"d": 64})
    w = grid.repeat(per_seed_init)          # (S, ...) -> (M, ...): seed k shares its init across arms
    scale = grid.per_arm({"scaled": 0.125, "unscaled": 1.0})   # (M,)
    ...
    grid.watch(losses, step)                # NaN/inf loss: that member diverged at that step
    grid.measurements(acc=acc, steps=steps) # {"scaled@d64": {"acc": [per seed], ...}, ...}

Members are ordered arm-major, seed innermost: member m is arm m // S, seed m % S. Nothing else
in an experiment needs that arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from mlbench.core.verdict import Censored


def arm_key(name: str, **coords: Any) -> str:
    """The measurement key of an arm at some coordinates: `arm_key("unscaled", d=64)` is
    "unscaled@d64", `arm_key("legs", method="zoh")` is "legs@method=zoh" (text values get an
    "="). The run and its claims build keys with this one function."""
    if not coords:
        return name
    return name + "@" + ",".join(f"{k}={v}" if isinstance(v, str) else f"{k}{v}" for k, v in coords.items())


@dataclass(frozen=True)
class Keep:
    """A per-model metric that stays as it is for diverged members (e.g. the step they diverged at)."""
    values: Any


def _host(values: Any) -> list:
    """A tensor (one device -> host transfer), or a sequence, as a plain list."""
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)


@dataclass
class Grid:
    """M = len(arms) × len(seeds) stacked models, arm-major with the seed innermost.

    `arms` are the arm names; `labels` (default: the names) is what logs and checkpoint names
    call each arm; `coords` (e.g. {"d": 64}) are shared by every member, added to the
    measurement keys (`arm_key`) and to each logged record.
    """
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    coords: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] | None = None
    diverged_at: list[int | None] = field(init=False)

    def __post_init__(self) -> None:
        self.arms, self.seeds = tuple(self.arms), tuple(self.seeds)
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms must be distinct, got {self.arms}")
        self.labels = tuple(self.labels) if self.labels is not None else self.arms
        self.diverged_at = [None] * self.size

    # -- indexing -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.arms) * len(self.seeds)

    def __len__(self) -> int:
        return self.size

    def index(self, arm: str, seed: int) -> int:
        return self.arms.index(arm) * len(self.seeds) + self.seeds.index(seed)

    def arm_of(self, m: int) -> str:
        return self.arms[m // len(self.seeds)]

    def seed_of(self, m: int) -> int:
        return self.seeds[m % len(self.seeds)]

    def members(self) -> Iterator[tuple[int, str, int]]:
        """(m, arm, seed) for every member, in stacking order."""
        for a, arm in enumerate(self.arms):
            for s, seed in enumerate(self.seeds):
                yield a * len(self.seeds) + s, arm, seed

    def key(self, arm: str) -> str:
        """The measurement key of `arm` (with the grid's coordinates)."""
        return arm_key(arm, **self.coords)

    def fields(self, m: int) -> dict[str, Any]:
        """What a logged record of member m starts with: its arm label, then the coordinates."""
        return {"arm": self.labels[m // len(self.seeds)], **self.coords}

    # -- building stacked tensors --------------------------------------------------------
    def repeat(self, per_seed: Any) -> Any:
        """(S, ...) -> (M, ...): every arm gets each seed's tensor (same init, same data)."""
        return per_seed.repeat(len(self.arms), *([1] * (per_seed.dim() - 1)))

    def build(self, per_arm: Callable[[str], Any]) -> Any:
        """(M, ...) from `per_arm(arm)`, each (S, ...): arms that differ in their tensors."""
        import torch

        return torch.cat([per_arm(arm) for arm in self.arms])

    def per_arm(self, values: Mapping[str, Any] | Sequence[Any], **tensor_kw: Any) -> Any:
        """A value per arm (mapping by name, or a sequence in arm order) -> tensor (M,)."""
        import torch

        per = [values[a] for a in self.arms] if isinstance(values, Mapping) else list(values)
        return torch.tensor([v for v in per for _ in self.seeds], **tensor_kw)

    def by_arm(self, t: Any) -> dict[str, Any]:
        """(M, ...) -> {arm: (S, ...)}: each arm's seeds (a view)."""
        parts = t.view(len(self.arms), len(self.seeds), *t.shape[1:])
        return {arm: parts[a] for a, arm in enumerate(self.arms)}

    # -- divergence ---------------------------------------------------------------------
    def watch(self, losses: Any, step: int) -> list[int]:
        """`losses` (M,): members whose loss is NaN/inf for the first time are marked diverged at
        `step`; returns them. One host transfer."""
        new = [m for m, v in enumerate(_host(losses)) if self.diverged_at[m] is None and not math.isfinite(v)]
        for m in new:
            self.diverged_at[m] = step
        return new

    def diverged(self, m: int) -> bool:
        return self.diverged_at[m] is not None

    @property
    def all_diverged(self) -> bool:
        return all(s is not None for s in self.diverged_at)

    def divergence_steps(self) -> Keep:
        """Per member: the step it diverged at, NaN if it did not (a metric for `measurements`)."""
        return Keep([math.nan if s is None else float(s) for s in self.diverged_at])

    # -- results ------------------------------------------------------------------------
    def measurements(self, **per_model: Any) -> dict[str, dict[str, list[float]]]:
        """{arm key: {metric: [value per seed]}} from per-member values ((M,) tensors or lists).

        A diverged member's values become NaN (the verdict rejects such an arm), except those
        wrapped in `Keep`. A `Censored` metric (value = the budget where the event did not happen)
        also writes `<metric>.censored` (1.0 where censored) for the verdict to read.
        """
        cols: dict[str, tuple[list, bool]] = {}
        for name, values in per_model.items():
            if isinstance(values, Censored):
                cols[name] = (_host(values.values), True)
                cols[Censored.key(name)] = ([float(bool(c)) for c in _host(values.censored)], False)
            elif isinstance(values, Keep):
                cols[name] = (_host(values.values), False)
            else:
                cols[name] = (_host(values), True)
        for name, (col, _) in cols.items():
            if len(col) != self.size:
                raise ValueError(f"metric {name!r} has {len(col)} values for {self.size} members")
        out: dict[str, dict[str, list[float]]] = {}
        for a, arm in enumerate(self.arms):
            rows = range(a * len(self.seeds), (a + 1) * len(self.seeds))
            out[self.key(arm)] = {name: [math.nan if mask and self.diverged(m) else float(col[m]) for m in rows]
                                  for name, (col, mask) in cols.items()}
        return out
