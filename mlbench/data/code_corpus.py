"""Character corpora of Python-like code for small language models, cached as HF datasets.

- `procedural` (default): a seeded generator of toy Python — functions with nested if/for
  blocks and 4-space indentation, balanced parentheses, identifiers drawn Zipf-like from small
  word lists and reused inside a function, integers, `.append`, `print`, `return`. Every draw
  is `random.Random(seed).random()`, the one method whose sequence Python guarantees across
  versions (`randrange`, `choice`, `shuffle` are not); no `hash()`, no set order. So the text is
  the same on every machine and interpreter.
- `stdlib` (opt-in): CPython's own top-level `Lib/*.py` files in sorted order (natural code,
  but it changes with the Python version: record `sys.version` and the text's SHA-256).

`load(...)` returns the text, its SHA-256 and where it came from; `encode` maps it to ids.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from pathlib import Path

from mlbench.data import cache

CORPORA = ("procedural", "stdlib")
OOV = "\x7f"  # stdlib: every character outside printable ASCII and newline

VERBS = ("get", "make", "count", "find", "add", "load", "check", "build", "merge", "split", "parse", "scale")
NOUNS = ("items", "total", "value", "count", "data", "index", "result", "names", "size", "row", "key",
         "node", "left", "right", "score", "step", "buf", "text")
LOOP_VARS = ("i", "j", "k", "x", "item", "n")
NUMBERS = ("0", "1", "2", "3", "4", "5", "8", "10", "16", "100")


class Draw:
    """Every random decision from `random.Random(seed).random()` alone (version-stable)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self._cum: dict[int, list[float]] = {}

    def u(self) -> float:
        return self.rng.random()

    def integer(self, lo: int, hi: int) -> int:
        """Uniform on lo..hi inclusive."""
        return min(hi, lo + int(self.u() * (hi - lo + 1)))

    def pick(self, items):
        return items[min(len(items) - 1, int(self.u() * len(items)))]

    def zipf(self, items, s: float = 1.1):
        """items[r] with probability ∝ 1 / (r + 1)^s: a few names are common, most are rare."""
        cum = self._cum.get(len(items))
        if cum is None:
            weights = [1.0 / (r + 1) ** s for r in range(len(items))]
            total, run, cum = sum(weights), 0.0, []
            for w in weights:
                run += w / total
                cum.append(run)
            self._cum[len(items)] = cum
        return items[min(len(items) - 1, bisect.bisect_left(cum, self.u()))]


def _expr(d: Draw, names: list[str], funcs: list[str], depth: int = 0) -> str:
    """An expression over the function's names: atoms, arithmetic, len(), calls, parentheses."""
    r = d.u()
    if depth >= 2 or r < 0.35:
        return d.pick(names) if names and d.u() < 0.7 else d.zipf(NUMBERS)
    if r < 0.6:
        return f"{_expr(d, names, funcs, depth + 1)} {d.pick('+-*')} {_expr(d, names, funcs, depth + 1)}"
    if r < 0.72:
        return f"({_expr(d, names, funcs, depth + 1)})"
    if r < 0.82 and names:
        return f"len({d.pick(names)})"
    if funcs:
        args = ", ".join(_expr(d, names, funcs, depth + 1) for _ in range(d.integer(1, 2)))
        return f"{d.pick(funcs)}({args})"
    return d.zipf(NUMBERS)


def _cond(d: Draw, names: list[str], funcs: list[str]) -> str:
    left = d.pick(names) if names else "0"
    r = d.u()
    if r < 0.5:
        return f"{left} {d.pick(('<', '>', '==', '!=', '<=', '>='))} {_expr(d, names, funcs, 1)}"
    if r < 0.75:
        return f"{left} % {d.zipf(NUMBERS[2:])} == 0"
    return f"not {left}"


def _block(d: Draw, names: list[str], funcs: list[str], indent: int, depth: int) -> list[str]:
    """1-4 statements at `indent` spaces; nested if/for blocks down to depth 3."""
    pad, lines = " " * indent, []
    for _ in range(d.integer(1, 4)):
        r = d.u()
        if r < 0.18 and depth < 3:
            lines.append(f"{pad}if {_cond(d, names, funcs)}:")
            lines += _block(d, names, funcs, indent + 4, depth + 1)
            if d.u() < 0.4:
                lines.append(f"{pad}else:")
                lines += _block(d, names, funcs, indent + 4, depth + 1)
        elif r < 0.34 and depth < 3:
            var = d.pick(LOOP_VARS)
            src = f"range({d.zipf(NUMBERS[1:])})" if d.u() < 0.5 or not names else d.pick(names)
            lines.append(f"{pad}for {var} in {src}:")
            lines += _block(d, names + [var], funcs, indent + 4, depth + 1)
        elif r < 0.62:
            target = d.zipf(NOUNS) if d.u() < 0.4 else (d.pick(names) if names else d.zipf(NOUNS))
            lines.append(f"{pad}{target} = {_expr(d, names, funcs)}")
            if target not in names:
                names.append(target)
        elif r < 0.8 and names:
            lines.append(f"{pad}{d.pick(names)}.append({_expr(d, names, funcs)})")
        else:
            lines.append(f"{pad}print({_expr(d, names, funcs)})")
    return lines


def _function(d: Draw, funcs: list[str]) -> str:
    name = f"{d.zipf(VERBS)}_{d.zipf(NOUNS)}"
    params: list[str] = []
    for _ in range(d.integer(0, 3)):
        p = d.zipf(NOUNS)
        if p not in params:
            params.append(p)
    names = list(params)
    body = _block(d, names, funcs, 4, 0)
    body.append(f"    return {_expr(d, names, funcs)}")
    if name not in funcs:
        funcs.append(name)
    return "\n".join([f"def {name}({', '.join(params)}):", *body]) + "\n\n"


def _procedural_rows(seed: int, n_chars: int):
    """One row per generated function until `n_chars` characters (pure: the seed alone)."""
    d, funcs, size, i = Draw(seed), [], 0, 0
    while size < n_chars:
        text = _function(d, funcs[-40:])  # calls reach back to the last 40 functions
        yield {"index": i, "text": text}
        size, i = size + len(text), i + 1


def _stdlib_rows(lib_dir: str, n_chars: int, python_version: str):
    """One row per top-level `Lib/*.py` file, sorted by name, until `n_chars` characters.
    (`python_version` is only in the fingerprint: another interpreter's Lib is another corpus.)"""
    size = 0
    for path in sorted(Path(lib_dir).glob("*.py")):
        if size >= n_chars:
            break
        text = path.read_text(encoding="utf-8", errors="replace")
        text = "".join(c if c == "\n" or " " <= c <= "~" else OOV for c in text)
        yield {"index": size, "text": text}
        size += len(text)


def load(corpus: str, cache_dir: Path, seed: int, n_chars: int) -> dict:
    """{"text", "sha256", "source"}: exactly `n_chars` characters of `corpus` (cached by fingerprint)."""
    if corpus == "procedural":
        ds = cache.build(_procedural_rows, cache_dir, seed=seed, n_chars=n_chars)
        source = f"procedural toy Python, random.Random({seed})"
    elif corpus == "stdlib":
        import sys
        import sysconfig

        lib = sysconfig.get_paths()["stdlib"]
        ds = cache.build(_stdlib_rows, cache_dir, lib_dir=lib, n_chars=n_chars, python_version=sys.version)
        source = f"CPython {sys.version.split()[0]} {lib}/*.py"
    else:
        raise ValueError(f"unknown corpus {corpus!r}: choose from {', '.join(CORPORA)}")
    text = "".join(ds["text"])[:n_chars]
    return {"text": text, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "source": source}


def encode(text: str):
    """(ids int64 (N,), alphabet): ids index the sorted alphabet of the text's characters."""
    import torch

    alphabet = "".join(sorted(set(text)))
    table = torch.zeros(128, dtype=torch.int64)
    table[torch.tensor([ord(c) for c in alphabet])] = torch.arange(len(alphabet))
    raw = torch.frombuffer(bytearray(text.encode("ascii")), dtype=torch.uint8)
    return table[raw.long()], alphabet
