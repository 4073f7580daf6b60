"""`python -m benchmarks [cli|verdict|loop|ensemble|all] [--repeats N] [--device cpu|cuda] [--json FILE]`."""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

from benchmarks import cli_latency, ensemble, loop_overhead, time_to_verdict
from benchmarks.common import machine

SECTIONS = {
    "cli": ("CLI latency", lambda a: cli_latency.run(a.repeats or 5)),
    "verdict": ("Time to verdict (quick profile, fresh process)",
                lambda a: time_to_verdict.run(a.repeats or 3, a.device, a.profile, a.only, not a.no_catalogue)),
    "loop": ("Training-loop throughput vs a minimal PyTorch loop", lambda a: loop_overhead.run(a.repeats or 3)),
    "ensemble": ("Batched ensemble (torch.func vmap) vs one model at a time",
                 lambda a: ensemble.run(a.device, repeats=a.repeats or 3)),
}


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("what", nargs="*", default=["all"], choices=[*SECTIONS, "all"])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--only", nargs="*", default=None, help="experiments for `verdict`")
    parser.add_argument("--no-catalogue", action="store_true",
                        help="`verdict` without the whole-catalogue row (`mlbench run --all` in one process)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    console = Console()
    console.print(f"[bold]mlbench benchmarks[/] on {machine()} ({time.strftime('%Y-%m-%d %H:%M')})")
    out = {}
    for key in SECTIONS if "all" in args.what else args.what:
        title, fn = SECTIONS[key]
        rows = fn(args)
        out[key] = rows
        table = Table(title=title, title_justify="left")
        for col in rows[0]:
            table.add_column(col)
        for r in rows:
            table.add_row(*(_cell(v) for v in r.values()))
        console.print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "results": out}, fh, indent=2)


if __name__ == "__main__":
    main()
