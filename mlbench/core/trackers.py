"""`--log-with`: every `ctx.log` record and the final claims, sent to accelerate's trackers.

`Accelerator(log_with=..., project_dir=<run>/trackers)`, `init_trackers`, `log`, then the
trackers' finish (`end_training` on one process). Offline by default: TensorBoard event files and
an MLflow store under the run folder, wandb in offline mode there (the tools' own
settings, e.g. `MLFLOW_TRACKING_URI` or `WANDB_MODE=online`, win); trackio keeps its local store.
MLflow's store is SQLite (`trackers/mlflow.db`, artifacts beside it): MLflow 3 refuses its old
file store.
The trackers are a view: metrics.jsonl stays the record.

A record becomes scalars named `<metric>/<arm>/<k><v>/seed<i>` (`train_loss/unscaled/d64/seed0`):
its text fields and integer fields (coordinates such as `d`) name the curve, `step` is the step,
and each float (or flag) is one scalar. Characters other than letters, digits and `_-.: /` become
`_` (MLflow's rule for names: `infonce@N256,I10` -> `infonce_N256_I10`). Trackers are asked for and checked before anything runs: an unknown or missing
one is one line naming the `pip install` that fixes it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

from mlbench.core.errors import UsageError

TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio", "wandb": "wandb"}  # -> module


def check(log_with: Sequence[str]) -> tuple[str, ...]:
    """The trackers asked for, deduplicated, each known and installed (importing none of them)."""
    out = tuple(dict.fromkeys(log_with))
    for name in out:
        if name not in TRACKERS:
            raise UsageError(f"unknown tracker '{name}' for --log-with: use one of {', '.join(TRACKERS)}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise UsageError(f"--log-with {name} needs the {TRACKERS[name]} package: pip install 'mlbench[{name}]'")
    return out


def scalars(record: dict[str, Any], prefix: str = "") -> tuple[int | None, dict[str, float]]:
    """(step, {tag: value}) of one metrics record (see the module docstring)."""
    step = record.get("step") if isinstance(record.get("step"), int) else None
    names, values = [], {}
    for key, value in record.items():
        if key in ("step", "seed"):
            continue
        if isinstance(value, str):
            names.append(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            names.append(f"{key}{value}")
        elif isinstance(value, (float, bool)):
            values[key] = float(value)
    if isinstance(record.get("seed"), int):
        names.append(f"seed{record['seed']}")
    curve = "/".join(names)
    return step, {_name(f"{prefix}{k}/{curve}" if curve else f"{prefix}{k}"): v for k, v in values.items()}


def _name(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-.: /]", "_", tag)


class Tracking:
    """The trackers of one run (main process only)."""

    def __init__(self, spec: Any, names: tuple[str, ...], world: int) -> None:
        from mlbench.core import config as cfglib
        from mlbench.core.device import accelerator

        self.world = world
        self.dir = spec.run_dir / "trackers"
        self.dir.mkdir(parents=True, exist_ok=True)
        _offline(names, self.dir)
        self.accelerator = accelerator(spec.device, log_with=list(names), project_dir=str(self.dir))
        config = {"experiment": spec.experiment, "run_id": spec.run_id, "profile": spec.profile,
                  "seeds": spec.seeds, "device": spec.device, **cfglib.to_dict(spec.cfg)}
        self.accelerator.init_trackers(spec.experiment, config={k: _hparam(v) for k, v in config.items()},
                                       init_kwargs=_init_kwargs(names, spec.run_id, self.dir))

    def sink(self, prefix: str = ""):
        """A `ctx.sink`: each record's scalars, logged at the record's step."""
        def send(records: list[dict[str, Any]]) -> None:
            for record in records:
                step, values = scalars(record, prefix)
                if values:
                    self.accelerator.log(values, step=step)
        return send

    def claims(self, summary: dict[str, Any]) -> None:
        """Each claim's verdict (text) and effect with its CI (scalars), under `claims/<id>/`."""
        for claim in summary.get("claims", []):
            base, ci = f"claims/{claim['id']}", claim.get("ci") or [None, None]
            values = {f"{base}/effect": claim.get("effect"), f"{base}/ci_low": ci[0], f"{base}/ci_high": ci[1]}
            self.accelerator.log({k: float(v) for k, v in values.items() if _finite(v)})
            self.accelerator.log({f"{base}/verdict": str(claim["verdict"])})

    def end(self) -> None:
        """Close the trackers. One process: `end_training`. Under a launch only the trackers
        finish: `end_training` would also destroy the process group the launcher owns."""
        if self.world == 1:
            self.accelerator.end_training()
        else:
            for tracker in self.accelerator.trackers:
                tracker.finish()


def start(spec: Any, world: int) -> Tracking | None:
    """The run's trackers, or None without --log-with."""
    names = check(getattr(spec, "log_with", ()))
    return Tracking(spec, names, world) if names else None


def _offline(names: tuple[str, ...], where: Path) -> None:
    if "mlflow" in names and not os.environ.get("MLFLOW_TRACKING_URI"):
        import mlflow

        # a local SQLite store (MLflow 3 refuses its old file store unless MLFLOW_ALLOW_FILE_STORE)
        mlflow.set_tracking_uri(f"sqlite:///{(where / 'mlflow.db').resolve()}")


def _init_kwargs(names: tuple[str, ...], run_id: str, where: Path) -> dict[str, dict[str, Any]]:
    kwargs = {"mlflow": {"run_name": run_id}, "trackio": {"name": run_id},
              "wandb": {"name": run_id, "dir": str(where), "mode": os.environ.get("WANDB_MODE", "offline")}}
    return {k: v for k, v in kwargs.items() if k in names}


def _hparam(value: Any) -> Any:
    """Trackers take scalars and text as hyperparameters: lists become text."""
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
