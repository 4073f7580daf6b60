"""`mlbench show <exp>`: claim, citation, config fields, profiles."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, user_errors
from mlbench.core import config as cfglib
from mlbench.core import registry, runner


@user_errors
def show(experiment: str = typer.Argument(..., help="Experiment name, e.g. attn-scaling.")) -> None:
    """Show an experiment's claims, config fields (type, default, help) and profiles."""
    info = registry.info(experiment)
    module = registry.load(experiment)
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
