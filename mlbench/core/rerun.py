"""A run in words a user can type: the command that recreates it, and where each value came from.

`rerun_command` is the `mlbench run <exp> --profile P [--seeds N] [--set k=v ...] --device D`
that resolves to the same run id (the same folder): every field that differs from the profile is a
`--set`, whether it came from `--set`, a `--config` file or a sweep's grid. `config_sources` is
what `mlbench run --dry-run` shows: each field that differs from its default, with its source.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbench.core import config as cfglib
from mlbench.core import registry
from mlbench.core.spec import RunSpec, read_config_file


def profile_values(experiment: str, profile: str) -> tuple[dict[str, Any], int]:
    """The config (as JSON-able values) of `profile` before any user override, and its seed count."""
    module = registry.load(experiment)
    prof = dict(registry.info(experiment).profiles.get(profile, {}))
    seeds = int(prof.pop("seeds", 3))
    for key in ("max_seeds", "decides"):
        prof.pop(key, None)
    cfg = cfglib.apply(module.Config, module.Config(), prof, f"profile '{profile}'")
    return cfglib.to_dict(cfg), seeds


def command_for(experiment: str, profile: str, seeds: int | str, config: dict[str, Any], device: str, *,
                max_seeds: int | None = None, threads: int | None = None) -> str:
    """`mlbench run ...` for a resolved run (config as JSON-able values, e.g. a config.json's)."""
    base, profile_seeds = profile_values(experiment, profile)
    parts = ["mlbench", "run", experiment, "--profile", profile]
    if seeds == "auto" or max_seeds is not None:
        parts += ["--seeds", "auto"] + (["--max-seeds", str(max_seeds)] if max_seeds is not None else [])
    elif seeds != profile_seeds:
        parts += ["--seeds", str(seeds)]
    for key, value in config.items():
        if key in base and base[key] != value:
            parts += ["--set", f"{key}={cfglib.as_set_value(value)}"]
    parts += ["--device", device]
    if threads is not None:
        parts += ["--threads", str(threads)]
    return shlex.join(parts)


def rerun_command(spec: RunSpec) -> str:
    """The command that recreates `spec`'s run (same run id), whatever produced it."""
    return command_for(spec.experiment, spec.profile, spec.seeds, cfglib.to_dict(spec.cfg), spec.device,
                       max_seeds=spec.max_seeds, threads=spec.threads)


def command_from_record(record: dict[str, Any]) -> str:
    """The same from a run's config.json (for runs that predate the stored command)."""
    seeds = record.get("seeds")
    return command_for(record["experiment"], record["profile"], seeds, dict(record.get("config", {})),
                       record.get("device", "cpu"), max_seeds=record.get("max_seeds") if seeds == "auto" else None)


@dataclass(frozen=True)
class Source:
    key: str
    value: Any
    default: Any
    source: str  # "default" | "profile <name>" | "--config" (the file) | "--set"


def config_sources(spec: RunSpec, sets: list[str] | tuple[str, ...] = (),
                   config_file: str | Path | None = None) -> list[Source]:
    """Every config field of `spec` with its default and the last layer that set it."""
    defaults = cfglib.to_dict(spec.module.Config())
    layers: list[tuple[str, set[str]]] = [
        (f"profile {spec.profile}", set(registry.info(spec.experiment).profiles.get(spec.profile, {})))]
    if config_file is not None:
        user, _ = read_config_file(Path(config_file), spec.experiment, spec.module)
        layers.append(("--config", set(user)))
    layers.append(("--set", set(cfglib.parse_sets(list(sets)))))
    out = []
    for key, value in cfglib.to_dict(spec.cfg).items():
        source = "default"
        for name, keys in layers:
            if key in keys:
                source = name
        out.append(Source(key, value, defaults[key], source))
    return out
