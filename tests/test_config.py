from dataclasses import dataclass
from typing import Literal

import pytest

from mlbench.core import config as cfglib
from mlbench.core.config import param
from mlbench.core.errors import ConfigError


@dataclass(frozen=True)
class Cfg:
    steps: int = param(10, "steps")
    lr: float = param(1e-3, "learning rate")
    fast: bool = param(False, "flag")
    name: str = param("a", "a name")
    dims: tuple[int, ...] = param((1, 2), "dims")
    opt: Literal["adam", "sgd"] = param("adam", "optimizer")

    def validate(self):
        if self.steps < 1:
            raise ValueError("steps must be positive")


def test_set_strings_are_coerced_to_field_types():
    cfg = cfglib.apply(Cfg, Cfg(), cfglib.parse_sets(
        ["steps=20", "lr=0.5", "fast=true", "name=x=y", "dims=4,8,16", "opt=sgd"]), "--set")
    assert cfg == Cfg(steps=20, lr=0.5, fast=True, name="x=y", dims=(4, 8, 16), opt="sgd")


def test_toml_values_are_checked_not_just_cast():
    cfg = cfglib.apply(Cfg, Cfg(), {"lr": 1, "dims": [3]}, "profile")
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.dims == (3,)
    with pytest.raises(ConfigError, match="'steps' expects int"):
        cfglib.apply(Cfg, Cfg(), {"steps": 1.5}, "profile")
    with pytest.raises(ConfigError, match="'fast' expects bool"):
        cfglib.apply(Cfg, Cfg(), {"fast": 1}, "profile")


@pytest.mark.parametrize("item, message", [
    ("stesp=3", "unknown config key 'stesp'. Did you mean 'steps'?"),
    ("steps=ten", "'steps' expects int, got 'ten'"),
    ("lr=fast", "'lr' expects float"),
    ("fast=maybe", "'fast' expects a bool"),
    ("dims=", "non-empty list"),
    ("dims=1,x", "'dims' expects int"),
    ("opt=rmsprop", "must be one of 'adam', 'sgd'"),
    ("steps=0", "steps must be positive"),
    ("novalue", "--set expects key=value"),
])
def test_bad_overrides_name_the_problem(item, message):
    with pytest.raises(ConfigError) as info:
        cfglib.apply(Cfg, Cfg(), cfglib.parse_sets([item]), "--set")
    assert message in str(info.value)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="Valid keys: steps, lr, fast, name, dims, opt"):
        cfglib.apply(Cfg, Cfg(), {"zzz": 1}, "--set")


def test_describe_reports_types_defaults_and_help():
    rows = {f.name: f for f in cfglib.describe(Cfg)}
    assert rows["dims"].type_name == "list[int]" and rows["dims"].default == (1, 2)
    assert rows["opt"].type_name == "'adam' | 'sgd'"
    assert rows["lr"].help == "learning rate"
