"""Configuration: one channel.

dataclass defaults -> profile from `experiments/<name>.toml` -> user TOML (`--config`)
-> `--set key=value` (repeatable). Every value is coerced to its field's type and checked
before anything runs; unknown keys are errors that list the valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from mlbench.core.errors import ConfigError

_SCALARS = (bool, int, float, str)


def param(default: Any, help: str, *, min: float | None = None, max: float | None = None,
          gt: float | None = None, lt: float | None = None, nonfinite: bool = False, **kwargs: Any) -> Any:
    """A config field with its "why" (shown by `mlbench show`) and its bounds.

    `min`/`max` bound a number (or every item of a list of numbers) inclusively, `gt`/`lt`
    strictly; they are checked with the type, before anything runs. Floats must be finite
    (`nan`, `inf`, `1e400` are rejected) unless `nonfinite=True`.
    """
    return field(default=default, metadata={"help": help, "min": min, "max": max, "gt": gt, "lt": lt,
                                            "nonfinite": nonfinite, **kwargs})


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type_name: str
    default: Any
    help: str
    bounds: str = ""  # e.g. ">= 1", "in [0, 1]"


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        (item, *_rest) = typing.get_args(tp)
        return f"list[{item.__name__}]"
    if typing.get_origin(tp) is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def bounds_text(meta: Any) -> str:
    parts = [f"{op} {meta[k]:g}" for k, op in (("min", ">="), ("gt", ">"), ("max", "<="), ("lt", "<"))
             if meta.get(k) is not None]
    if meta.get("min") is not None and meta.get("max") is not None and len(parts) == 2:
        return f"in [{meta['min']:g}, {meta['max']:g}]"
    return " and ".join(parts)


def describe(cls: type) -> list[FieldInfo]:
    hints = _field_types(cls)
    return [
        FieldInfo(f.name, type_name(hints[f.name]), f.default, f.metadata.get("help", ""), bounds_text(f.metadata))
        for f in dataclasses.fields(cls)
    ]


def check_bounds(key: str, value: Any, meta: Any) -> None:
    """Raise ConfigError if a number (or a list item) is non-finite or outside [min, max]."""
    items = value if isinstance(value, tuple) else (value,)
    lo, hi, gt, lt = (meta.get(k) for k in ("min", "max", "gt", "lt"))
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if isinstance(v, float) and not math.isfinite(v) and not meta.get("nonfinite", False):
            raise ConfigError(f"'{key}' must be a finite number, got {v!r}")
        if ((lo is not None and v < lo) or (hi is not None and v > hi)
                or (gt is not None and v <= gt) or (lt is not None and v >= lt)):
            raise ConfigError(f"'{key}' must be {bounds_text(meta)}, got {v!r}")


def _coerce_scalar(key: str, tp: type, value: Any) -> Any:
    want = tp.__name__
    if isinstance(value, str) and tp is not str:
        text = value.strip()
        if tp is bool:
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ConfigError(f"'{key}' expects a bool (true/false), got '{value}'")
        try:
            return tp(text) if tp is float else int(text, 10)
        except ValueError:
            raise ConfigError(f"'{key}' expects {want}, got '{value}'") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"'{key}' expects {want}, got {value!r}")


def coerce(key: str, tp: Any, value: Any) -> Any:
    """Coerce a TOML value or a `--set` string to the field type `tp`."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"'{key}' must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if isinstance(value, str):
            parts = [p for p in value.replace("[", "").replace("]", "").split(",") if p.strip()]
        elif isinstance(value, (list, tuple)):
            parts = list(value)
        else:
            raise ConfigError(f"'{key}' expects a list of {item.__name__}, got {value!r}")
        if not parts:
            raise ConfigError(f"'{key}' expects a non-empty list of {item.__name__}")
        return tuple(_coerce_scalar(key, item, p) for p in parts)
    if tp in _SCALARS:
        return _coerce_scalar(key, tp, value)
    raise ConfigError(f"'{key}' has an unsupported type {tp!r}")  # a bug in the experiment


def _unknown(cls: type, key: str) -> ConfigError:
    valid = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'.{hint} Valid keys: {', '.join(valid)}")


def as_set_value(value: Any) -> str:
    """A TOML or Python value as `--set` takes it (lists comma-separated, bools true/false)."""
    if isinstance(value, (list, tuple)):
        return ",".join(as_set_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse_sets(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got '{item}'")
        out[key.strip()] = value
    return out


def apply(cls: type, base: Any, overrides: dict[str, Any], source: str) -> Any:
    """Return `base` with `overrides` coerced and applied; `source` names them in errors."""
    hints = _field_types(cls)
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in overrides.items():
        if key not in hints:
            raise _unknown(cls, key)
        try:
            changes[key] = coerce(key, hints[key], value)
            check_bounds(key, changes[key], meta[key])
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    cfg = dataclasses.replace(base, **changes)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        try:
            validate()
        except (ValueError, AssertionError) as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
