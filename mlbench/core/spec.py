"""A run's complete description, resolved from user input before anything is written.

dataclass defaults -> profile -> `--config` file -> `--set`; then seeds, device, threads, and
the run id: a content hash of all of it, so the same command finds its earlier run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlbench.core import config as cfglib
from mlbench.core import registry, store
from mlbench.core.errors import ConfigError, DeviceError, MlbenchError, UsageError
from mlbench.core.trackers import check as check_trackers
from mlbench.core.verdict import Claim

DEFAULT_RESULTS = "results"
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class RunSpec:
    experiment: str
    module: ModuleType  # the experiment's face
    profile: str
    cfg: Any
    seeds: int
    device: str  # resolved
    threads: int | None
    results: Path
    run_id: str
    max_seeds: int | None = None  # sequential seeds (`--seeds auto`): start at `seeds`, at most this many
    decides: bool = True  # False for a smoke profile: its verdicts are plumbing checks, not results
    log_with: tuple[str, ...] = ()  # accelerate trackers (--log-with): a view of the run, not part of its id

    @property
    def run_dir(self) -> Path:
        return self.results / self.experiment / self.run_id

    def config_record(self) -> dict[str, Any]:
        seeds: dict[str, Any] = {"seeds": self.seeds}
        if self.max_seeds is not None:
            seeds = {"seeds": "auto", "start_seeds": self.seeds, "max_seeds": self.max_seeds}
        return {"experiment": self.experiment, "experiment_version": version_of(self.module),
                "profile": self.profile, **seeds, "device": self.device, "config": cfglib.to_dict(self.cfg)}


def version_of(module: ModuleType) -> int:
    return int(getattr(module, "VERSION", 1))


def results_root(results: str | os.PathLike | None) -> Path:
    return Path(results or os.environ.get("MLBENCH_RESULTS") or DEFAULT_RESULTS)


def resolve_device(device: str, check: bool = True) -> str:
    """auto -> cuda where a GPU is available, else cpu. `check=False` takes `cuda` on trust (a
    sweep for other machines' GPUs: each worker checks its own when the run starts)."""
    if device not in DEVICES:
        raise UsageError(f"unknown device '{device}': use one of {', '.join(DEVICES)}")
    if device == "cpu" or (device == "cuda" and not check):
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise DeviceError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
    return "cpu"


def run_id_for(record: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:10]
    return f"{record['profile']}-{digest}"


def claims_of(module: ModuleType, cfg: Any) -> list[Claim]:
    return list(module.claims(cfg))


def check_claim_arms(experiment: str, module: ModuleType, cfg: Any) -> None:
    """Every arm a claim reads must be one the run will produce (`arms(cfg)` of the face): a
    typo in a claim fails here, before the run, not after it."""
    produced = set(module.arms(cfg))
    for claim in claims_of(module, cfg):
        missing = [a for a in claim.arm_keys() if a not in produced]
        if missing:
            raise MlbenchError(f"{experiment}: claim '{claim.id}' reads arm(s) {', '.join(sorted(set(missing)))} "
                               f"that this config does not produce (a bug in the experiment)")


def resolve(experiment: str, *, profile: str | None = None, seeds: int | str | None = None,
            sets: list[str] | tuple[str, ...] = (), config_file: str | os.PathLike | None = None,
            device: str = "auto", threads: int | None = None,
            results: str | os.PathLike | None = None, max_seeds: int | None = None,
            log_with: list[str] | tuple[str, ...] = (), check_device: bool = True) -> RunSpec:
    """Turn user input into a complete, validated run description (writes nothing).

    `seeds="auto"`: sequential seeds, from the profile's seed count up to `max_seeds` (default:
    the profile's `max_seeds`, else twice its seeds). `profile=None`: "quick", or the profile of
    a run's config.json given as `config_file` (which also gives its seeds and every field).
    `log_with`: accelerate trackers, each known and installed (core/trackers.py)."""
    info = registry.info(experiment)
    module = registry.load(experiment)
    user: dict[str, Any] = {}
    if config_file is not None:
        user, record = read_config_file(Path(config_file), experiment, module)
        if record is not None:
            profile = _run_profile(record, profile, config_file)
            if seeds is None and record["seeds"] == "auto":
                seeds, max_seeds = "auto", max_seeds if max_seeds is not None else record.get("max_seeds")
    profile = profile or "quick"
    if profile not in info.profiles:
        raise UsageError(f"unknown profile '{profile}' for {experiment}: choose from "
                         f"{', '.join(info.profiles)}")
    sequential = seeds == "auto"
    seeds = _seed_option(seeds)
    if max_seeds is not None and not sequential:
        raise UsageError("--max-seeds goes with --seeds auto")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {threads}")
    overrides = cfglib.parse_sets(list(sets))
    log_with = check_trackers(log_with)
    prof = dict(info.profiles[profile])
    n_seeds = int(prof.pop("seeds", 3))
    profile_max = prof.pop("max_seeds", None)
    decides = bool(prof.pop("decides", profile != "smoke"))
    cfg = cfglib.apply(module.Config, module.Config(), prof, f"profile '{profile}'")
    if config_file is not None:
        n_seeds = _seed_count(user.pop("seeds", n_seeds), str(config_file))
        cfg = cfglib.apply(module.Config, cfg, user, str(config_file))
    cfg = cfglib.apply(module.Config, cfg, overrides, "--set")
    n_seeds = seeds if seeds is not None else n_seeds
    if sequential:
        max_seeds = max_seeds if max_seeds is not None else int(profile_max or 2 * n_seeds)
        if max_seeds <= n_seeds:
            raise UsageError(f"--max-seeds must be larger than the starting seeds ({n_seeds}), got {max_seeds}")
    spec = RunSpec(experiment, module, profile, cfg, n_seeds, resolve_device(device, check_device), threads,
                   results_root(results), run_id="", max_seeds=max_seeds if sequential else None,
                   decides=decides, log_with=log_with)
    check = getattr(module, "check", None)  # optional: can this config run on this device?
    if check is not None:
        check(cfg, spec.device)
    check_claim_arms(experiment, module, cfg)
    spec.run_id = run_id_for(spec.config_record())
    return spec


def read_config_file(path: Path, experiment: str, module: ModuleType) -> tuple[dict[str, Any], dict | None]:
    """(overrides, None) from a TOML file of overrides, or (its config and seeds, the record) from
    a run's config.json: passing one reruns that run (same fields, profile, seeds, run id)."""
    if path.suffix != ".json":
        data = registry.read_toml(path)
        if isinstance(data.get("profiles"), dict):
            raise ConfigError(f"{path} holds an experiment's profiles, not overrides: choose one with --profile "
                              f"({', '.join(data['profiles'])}); --config takes a flat file of key = value lines")
        return data, None
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    record = store.read_json(path)
    seeds = record.get("seeds") if isinstance(record, dict) else None
    if not (isinstance(record, dict) and isinstance(record.get("experiment"), str)
            and isinstance(record.get("profile"), str) and isinstance(record.get("config"), dict)
            and (seeds == "auto" or isinstance(seeds, int))):
        raise ConfigError(f"{path} is not a run's config.json (one with experiment, profile, seeds and config); "
                          f"--config takes that or a TOML file of overrides")
    if record["experiment"] != experiment:
        raise ConfigError(f"{path} is a run of {record['experiment']}, not {experiment}: "
                          f"mlbench run {record['experiment']} --config {path}")
    if record.get("experiment_version") != version_of(module):
        raise ConfigError(f"{path} was made by {experiment} version {record.get('experiment_version')}; this "
                          f"mlbench has version {version_of(module)}, whose fields may differ: pass them with --set")
    start = record.get("start_seeds") if seeds == "auto" else seeds
    return {**record["config"], "seeds": start}, record


def _run_profile(record: dict[str, Any], profile: str | None, path: Any) -> str:
    if profile is not None and profile != record["profile"]:
        raise UsageError(f"--profile {profile} conflicts with {path}, a {record['profile']} run: "
                         f"drop --profile (or change fields with --set)")
    return record["profile"]


def _seed_option(seeds: int | str | None) -> int | None:
    """--seeds N (a positive integer) or "auto" (None here: the profile's count starts it)."""
    if seeds is None or seeds == "auto":
        return None
    try:
        n = int(seeds)
    except (TypeError, ValueError):
        raise UsageError(f"--seeds must be a positive integer or 'auto', got {seeds!r}") from None
    if n < 1 or isinstance(seeds, bool) or (isinstance(seeds, float) and seeds != n):
        raise UsageError(f"--seeds must be a positive integer or 'auto', got {seeds!r}")
    return n


def _seed_count(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{source}: 'seeds' must be a positive integer, got {value!r}")
    return value


def replace_cfg(spec: RunSpec, **changes: Any) -> RunSpec:
    out = dataclasses.replace(spec, cfg=dataclasses.replace(spec.cfg, **changes))
    out.run_id = run_id_for(out.config_record())
    return out
