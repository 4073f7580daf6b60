"""`mlbench show <exp>`: claim, citation, config fields, profiles."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import complete_experiment, console, user_errors
from mlbench.core import config as cfglib
from mlbench.core import registry, runner


@user_errors
def show(experiment: str = typer.Argument(..., help="Experiment name, e.g. attn-scaling.",
                                         autocompletion=complete_experiment),
         as_json: bool = typer.Option(False, "--json", help="Print the experiment's spec as JSON on stdout.")) -> None:
    """Show an experiment's claims, config fields (type, default, help) and profiles."""
    info = registry.info(experiment)
    module = registry.load(experiment)
    if as_json:
        typer.echo(json.dumps(spec_of(info, module), indent=2, default=str))
        return
    console.print(f"[bold cyan]{info.name}[/] (version {runner.version_of(module)})")
    console.print(escape(info.summary))
    console.print(f"[dim]{escape(info.citation)}[/]\n")
    doc = (module.__doc__ or "").strip()
    if doc:
        console.print(doc + "\n", markup=False, soft_wrap=True)
    claims = Table(title="Claims tested", title_justify="left")
    for col in ("id", "claim", "citation"):
        claims.add_column(col)
    for c in runner.claims_of(module, module.Config()):
        claims.add_row(c.id, escape(c.text), escape(c.citation))
    console.print(claims)
    fields = Table(title="Config fields (set with --set key=value)", title_justify="left")
    for col in ("key", "type", "default (quick)", "help"):
        fields.add_column(col)
    for f in cfglib.describe(module.Config):
        fields.add_row(f.name, escape(f.type_name), escape(cfglib.as_set_value(f.default)), escape(f.help))
    console.print(fields)
    profiles = Table(title="Profiles (--profile)", title_justify="left")
    profiles.add_column("profile")
    profiles.add_column("overrides")
    for name, values in info.profiles.items():
        profiles.add_row(name, escape(", ".join(f"{k}={cfglib.as_set_value(v)}" for k, v in values.items()) or "(defaults)"))
    console.print(profiles)


def _test(test: Any) -> dict[str, Any]:
    """A claim's test as data: its kind (Paired, Equivalent, ...) and its parameters."""
    if not dataclasses.is_dataclass(test):
        return {"kind": type(test).__name__}
    fields = {f.name: getattr(test, f.name) for f in dataclasses.fields(test)}
    return {"kind": type(test).__name__, **{k: [_test(t) for t in v] if k == "tests" else v for k, v in fields.items()}}


def spec_of(info: registry.ExperimentInfo, module: Any) -> dict[str, Any]:
    """What `show` prints, as data: name, version, claim, citation, docs, claims, fields, profiles."""
    claims = [{"id": c.id, "text": c.text, "citation": c.citation, "test": _test(c.test),
               "paper": c.paper.as_dict() if c.paper else None} for c in runner.claims_of(module, module.Config())]
    fields = [{"key": f.name, "type": f.type_name, "default": list(f.default) if isinstance(f.default, tuple) else f.default, "help": f.help,
               "bounds": f.bounds} for f in cfglib.describe(module.Config)]
    return {"name": info.name, "version": runner.version_of(module), "claim": info.summary, "citation": info.citation,
            "doc": (module.__doc__ or "").strip(), "claims": claims, "fields": fields, "profiles": info.profiles}
