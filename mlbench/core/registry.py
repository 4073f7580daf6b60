"""The experiment registry: names map lazily to experiment packages.

Each entry is one line. An experiment package `mlbench/exps/<name>/` has a torch-free face
(`__init__.py`: docstring, VERSION, SUMMARY, CITATION, Config, arms, claims) that `list`, `show`
and `report` import, and a `run` module (torch at the top) that only the runner imports.
Profiles live in `experiments/<name>.toml`.
"""

from __future__ import annotations

import difflib
import importlib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from mlbench.core.errors import ConfigError, UsageError

# name -> package. Adding an experiment = one line here, one package, one TOML file.
EXPERIMENTS: dict[str, str] = {
    "attn-scaling": "mlbench.exps.attn_scaling",
    "ddpm-vs-sde": "mlbench.exps.ddpm_vs_sde",
    "adam-vs-adamw": "mlbench.exps.adam_vs_adamw",
    "fp16-mixed": "mlbench.exps.fp16_mixed",
    "hippo-memory": "mlbench.exps.hippo_memory",
    "linear-attention-rnn": "mlbench.exps.linear_attention_rnn",
    "autoregressive-digits": "mlbench.exps.autoregressive_digits",
    "swiglu-ffn": "mlbench.exps.swiglu_ffn",
    "robbins-monro": "mlbench.exps.robbins_monro",
    "flash-attention-tiling": "mlbench.exps.flash_attention_tiling",
    "infonce-log-n-bound": "mlbench.exps.infonce_log_n_bound",
    "preln-vs-postln": "mlbench.exps.preln_vs_postln",
    "diou-box-regression": "mlbench.exps.diou_box_regression",
    "rectified-flow": "mlbench.exps.rectified_flow",
    "checkerboard-artifacts": "mlbench.exps.checkerboard_artifacts",
    "temporal-shift": "mlbench.exps.temporal_shift",
    "flops-vs-latency": "mlbench.exps.flops_vs_latency",
}


@dataclass(frozen=True)
class ExperimentInfo:
    name: str
    module: str
    summary: str  # one-line claim, from the face
    citation: str
    profiles: dict[str, dict[str, Any]]  # from experiments/<name>.toml


def experiments_dir() -> Path:
    """Where the experiment TOML files live: packaged copy first, then the source tree."""
    pkg = Path(__file__).resolve().parents[1]
    for candidate in (pkg / "_experiments", pkg.parent / "experiments"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"experiment definitions not found (looked in {pkg / '_experiments'})")


def shipped(ref: str | Path, suffix: str = ".toml") -> Path:
    """`ref` where it names a file; else the packaged experiments/ file of that name
    (`attn-scaling.sweep` -> experiments/attn-scaling.sweep.toml), so that a shipped sweep works
    from any directory; else `ref` unchanged (its reader then says it is missing)."""
    path = Path(ref)
    if path.is_file():
        return path
    name = path.name if path.name.endswith(suffix) else path.name + suffix
    try:
        candidate = experiments_dir() / name
    except ConfigError:
        return path
    return candidate if candidate.is_file() else path


def shipped_sweeps() -> list[str]:
    """Names of the sweep files that ship with mlbench (`attn-scaling.sweep`, ...)."""
    return sorted(p.name.removesuffix(".toml") for p in experiments_dir().glob("*.sweep.toml"))


def names() -> list[str]:
    return sorted(EXPERIMENTS)


def check_name(name: str) -> str:
    if name in EXPERIMENTS:
        return name
    close = difflib.get_close_matches(name, names(), n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UsageError(f"unknown experiment '{name}'.{hint} Known: {', '.join(names())}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"malformed TOML in {path}: nested too deeply") from None


@cache
def info(name: str) -> ExperimentInfo:
    face = load(name)
    data = read_toml(experiments_dir() / f"{name}.toml")
    return ExperimentInfo(
        name=name,
        module=EXPERIMENTS[name],
        summary=str(face.SUMMARY),
        citation=str(face.CITATION),
        profiles={k: dict(v) for k, v in data.get("profiles", {}).items()},
    )


def load(name: str) -> ModuleType:
    """The experiment's face: its package `__init__` (torch-free)."""
    return importlib.import_module(EXPERIMENTS[check_name(name)])


def run_function(name: str) -> Callable[..., Any]:
    """The experiment's `run(cfg, ctx)` (importing it imports torch)."""
    return importlib.import_module(EXPERIMENTS[check_name(name)] + ".run").run


def version(name: str) -> int:
    return int(getattr(load(name), "VERSION", 1))
