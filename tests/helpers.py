"""Test helpers shared by several test modules."""

from mlbench.core.context import NoProgress


class InterruptAt(NoProgress):
    """A progress sink that raises Ctrl-C when the n-th progress task starts."""

    def __init__(self, n):
        self.n = n

    def task(self, description, total):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return super().task(description, total)


# attn-scaling's smoke profile cut down to a few steps: a run in about a second
TINY = ["steps=4", "eval_every=2", "eval_size=32", "stats_dims=16", "stats_queries=16"]


def stopped_then_rerun(name, root, stop_at):
    """`name`'s smoke profile stopped by Ctrl-C as its `stop_at`-th progress task starts (into
    root/r), then run into root/a, root/b and root/r again (which resumes). Returns the three run
    folders (a, b, r) and the resumed run's manifest."""
    import json

    import pytest

    import mlbench

    with pytest.raises(KeyboardInterrupt):
        mlbench.run(name, profile="smoke", results=root / "r", threads=1, progress=InterruptAt(stop_at))
    runs = [mlbench.run(name, profile="smoke", results=root / d, threads=1).run_dir for d in "abr"]
    return runs, json.loads((runs[2] / "manifest.json").read_text())


def assert_same_bytes(runs, names):
    """Each of `names` and every checkpoint of runs[0] are byte-identical in the other runs."""
    for run_dir in runs[1:]:
        for name in names:
            assert (runs[0] / name).read_bytes() == (run_dir / name).read_bytes(), name
        for ck in sorted((runs[0] / "checkpoints").iterdir()):
            assert ck.read_bytes() == (run_dir / "checkpoints" / ck.name).read_bytes(), ck.name


def assert_cli_stays_light(results, argsets):
    """In a fresh interpreter, each CLI call of `argsets` (exit 0 or 2) imports none of the heavy
    libraries: `{results}` in an argument is the (existing) results root."""
    import subprocess
    import sys

    code = ("import sys\nfrom typer.testing import CliRunner\nfrom cli.main import app\n"
            f"for args in {argsets!r}:\n"
            "    args = [a.replace('{results}', sys.argv[1]) for a in args]\n"
            "    assert CliRunner().invoke(app, args).exit_code in (0, 2), args\n"
            "heavy = [m for m in ('torch', 'accelerate', 'datasets', 'scipy', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code, str(results)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
