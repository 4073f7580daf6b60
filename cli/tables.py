"""Result tables for a terminal of any width, or a log: no column dropped, no cell cut to `…`.

A run's table.csv can have 17 columns. At the console's width it is printed in as many blocks
of columns as it needs, each repeating the columns that name the rows (arm, d, sampler, ...).
A column with `_ci_low` / `_ci_high` partners becomes one `mean [low, high]` column; integers
print as integers, other numbers with 4 significant digits; numbers never wrap, text wraps at
spaces, and long column names wrap after their underscores.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

CI_LEGEND = "x [a, b]: mean over seeds [95% confidence interval]"
MAX_KEYS = 2  # leading columns repeated in every block
TEXT_MIN = 12  # a text column may wrap down to this width (or its longest word, if shorter)


def number_text(cell: str) -> str:
    """'194', '100.0' -> '100', '0.310539' -> '0.3105', 'nan', text unchanged."""
    try:
        value = float(cell)
    except ValueError:
        return cell
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@dataclass
class Column:
    name: str
    cells: list[str]
    numeric: bool
    merged_ci: bool = False

    @property
    def min_width(self) -> int:
        """Narrowest it may get: numbers whole, text down to TEXT_MIN, names broken at '_'."""
        name = max(len(p) for p in name_parts(self.name))
        if self.numeric or self.merged_ci:
            return max(name, *(len(c) for c in self.cells), 1)
        words = max((len(w) for c in self.cells for w in c.split()), default=1)
        return max(name, min(words, TEXT_MIN), min(max((len(c) for c in self.cells), default=1), TEXT_MIN))


def name_parts(name: str, sep: str = "_") -> list[str]:
    """'test_error_pct' -> ['test_', 'error_', 'pct']: where a column name may wrap."""
    parts = name.split(sep)
    return [p + sep for p in parts[:-1]] + [parts[-1]]


def wrap_name(name: str, width: int, sep: str = "_") -> str:
    """`name` in lines of at most `width` (where it can), broken after each `sep`."""
    lines, line = [], ""
    for part in name_parts(name, sep):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def columns_of(head: list[str], rows: list[list[str]]) -> list[Column]:
    """The displayed columns: CI partners merged into their mean's column, cells formatted."""
    index = {c: i for i, c in enumerate(head)}
    cell = lambda r, i: r[i] if i < len(r) else ""  # noqa: E731
    out = []
    for i, name in enumerate(head):
        if name.endswith(("_ci_low", "_ci_high")) and name.rsplit("_ci_", 1)[0] in index:
            continue
        raw = [cell(r, i) for r in rows]
        numeric = all(is_number(c) for c in raw if c != "")
        lo, hi = index.get(f"{name}_ci_low"), index.get(f"{name}_ci_high")
        if numeric and lo is not None and hi is not None:
            cells = [_with_ci(cell(r, i), cell(r, lo), cell(r, hi)) for r in rows]
            out.append(Column(name, cells, False, merged_ci=True))
        else:
            out.append(Column(name, [number_text(c) if numeric else c for c in raw], numeric and any(raw)))
    return out


def _with_ci(mean: str, low: str, high: str) -> str:
    if mean == "":
        return ""
    if not (is_number(low) and is_number(high)) or "nan" in (low.lower(), high.lower()):
        return number_text(mean)
    return f"{number_text(mean)} [{number_text(low)}, {number_text(high)}]"


def key_count(cols: list[Column]) -> int:
    """Leading columns that name rows: text, or whole numbers (at most MAX_KEYS)."""
    n = 0
    for c in cols[:MAX_KEYS]:
        if c.merged_ci or (c.numeric and not all(x.lstrip("-").isdigit() for x in c.cells if x)):
            break
        n += 1
    return n if n < len(cols) else max(0, len(cols) - 1)


def blocks(cols: list[Column], width: int) -> list[list[tuple[Column, int]]]:
    """Columns packed into blocks that fit `width`, each block starting with the key columns, each
    column with its width (spare room goes to names that would otherwise wrap)."""
    k = key_count(cols)
    keys, rest = cols[:k], cols[k:]
    budget = width - 1 - sum(c.min_width + 3 for c in keys)
    packed: list[list[Column]] = []
    used = budget + 1
    for c in rest:
        need = c.min_width + 3
        if not packed or used + need > budget:
            packed.append([])
            used = 0
        packed[-1].append(c)
        used += need
    out = []
    for block in packed or [[]]:
        spare = budget - sum(c.min_width + 3 for c in block)
        sized = []
        for c in [*keys, *block]:
            grow = max(0, min(len(c.name) - c.min_width, spare))
            spare -= grow
            sized.append((c, c.min_width + grow))
        out.append(sized)
    return out


def tables(head: list[str], rows: list[list[str]], width: int) -> tuple[list[Table], bool]:
    """Rich tables (blocks of columns) for one CSV table at `width`, and whether a CI legend is needed."""
    cols = columns_of(head, rows)
    out = []
    for block in blocks(cols, width):
        table = Table()
        for c, w in block:
            table.add_column(escape(wrap_name(c.name, w)), justify="right" if c.numeric else "left",
                             no_wrap=c.numeric or c.merged_ci, overflow="fold", min_width=w)
        for r in range(len(rows)):
            table.add_row(*(escape(c.cells[r]) for c, _ in block))
        out.append(table)
    return out, any(c.merged_ci for c in cols)


def render_csv(path: Path, title: str, out: Console) -> None:
    """Print a run's table.csv (nothing if the run has none)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    parts, legend = tables(rows[0], rows[1:], out.width)
    for n, t in enumerate(parts):
        heading = title if n == 0 else f"{title.split(' — ')[0]} (continued, columns {n + 1} of {len(parts)})"
        out.print(f"[bold]{escape(heading)}[/]" if n == 0 else f"[dim]{escape(heading)}[/]", soft_wrap=False)
        out.print(t)
    if legend:
        out.print(f"[dim]{escape(CI_LEGEND)}[/]")
