"""`mlbench run <exp> --dry-run`: what a run would be, with nothing run or written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console
from mlbench.core import config as cfglib
from mlbench.core import rerun, runs
from mlbench.core.spec import RunSpec


def plan_of(spec: RunSpec, sets: list[str], config_file: Path | None) -> dict[str, Any]:
    state = runs.resume_state(spec.run_dir)
    threads = spec.threads or getattr(spec.module, "THREADS", None)
    return {
        "experiment": spec.experiment, "run_id": spec.run_id, "run_dir": str(spec.run_dir),
        "exists": state is not None, "status": state[0] if state else None, "units_done": state[1] if state else 0,
        "profile": spec.profile, "seeds": spec.seeds, "max_seeds": spec.max_seeds, "device": spec.device,
        "threads": threads, "config_file": str(config_file) if config_file is not None else None,
        "command": rerun.rerun_command(spec),
        "config": {s.key: {"value": s.value, "default": s.default, "source": s.source}
                   for s in rerun.config_sources(spec, sets, config_file)},
    }


def status_text(plan: dict[str, Any]) -> str:
    if not plan["exists"]:
        return "not run yet: a run would create it"
    if plan["status"] == "complete":
        return "complete: a run would show the stored result (--force reruns it)"
    if plan["status"] == "running":
        return "being written by another process now"
    return f"{plan['status']}, {plan['units_done']} units done: a run would resume it"


def show_plan(spec: RunSpec, sets: list[str], config_file: Path | None, as_json: bool) -> None:
    plan = plan_of(spec, sets, config_file)
    if as_json:
        typer.echo(json.dumps(plan, indent=2))
        return
    seeds = f"auto, {spec.seeds} to {spec.max_seeds}" if spec.max_seeds else str(spec.seeds)
    threads = plan["threads"] if plan["threads"] is not None else "torch's default (one per core)"
    console.print(f"[bold cyan]{spec.experiment}[/] — dry run: nothing is run or written")
    for label, value in (("run id", f"{spec.run_id} ({status_text(plan)})"), ("run folder", str(spec.run_dir)),
                         ("profile", spec.profile), ("seeds", seeds), ("device", spec.device), ("threads", threads),
                         *([("--config", str(config_file))] if config_file is not None else [])):
        console.print(f"  {label:<11}{escape(str(value))}", soft_wrap=True)
    changed = {k: v for k, v in plan["config"].items() if v["value"] != v["default"] or v["source"] != "default"}
    total = len(plan["config"])
    if changed:
        table = Table(title=f"config: {len(changed)} of {total} fields differ from the defaults or were set",
                      title_justify="left")
        for col in ("key", "value", "default", "from"):
            table.add_column(col, overflow="fold")
        for key, v in changed.items():
            table.add_row(key, escape(cfglib.as_set_value(v["value"])), escape(cfglib.as_set_value(v["default"])),
                          escape(v["source"]))
        console.print(table)
    else:
        console.print(f"config: all {total} fields at their defaults")
    console.print(f"[dim]every field and its default: mlbench show {spec.experiment}[/]")
    console.print(f"command: {escape(plan['command'])}", soft_wrap=True)
