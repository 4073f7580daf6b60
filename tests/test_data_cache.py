"""The dataset cache is keyed on the generator's module source and parameters: edit a constant
or a helper of a generator, get new rows (not the old Arrow file)."""

import importlib
import sys

from mlbench.data import cache

SOURCE = '''
SCALE = {scale}


def helper(i):
    return SCALE * i


def rows(n):
    for i in range(n):
        yield {{"x": helper(i)}}
'''


def test_editing_a_generators_module_gives_new_rows(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    module_file = tmp_path / "mlbench_test_gen.py"
    module_file.write_text(SOURCE.format(scale="1.0"))
    gen = importlib.import_module("mlbench_test_gen")
    try:
        assert cache.build(gen.rows, tmp_path / "cache", n=3)["x"][:] == [0.0, 1.0, 2.0]
        assert cache.build(gen.rows, tmp_path / "cache", n=3)["x"][:] == [0.0, 1.0, 2.0]  # cached
        module_file.write_text(SOURCE.format(scale="10.0"))  # a constant the generator reads via a helper
        gen = importlib.reload(gen)
        assert cache.build(gen.rows, tmp_path / "cache", n=3)["x"][:] == [0.0, 10.0, 20.0]
        assert cache.build(gen.rows, tmp_path / "cache", n=4)["x"][:] == [0.0, 10.0, 20.0, 30.0]
    finally:
        sys.modules.pop("mlbench_test_gen", None)


def test_the_key_names_the_generator_and_changes_with_parameters():
    from mlbench.data import toy2d

    key = cache.cache_key(toy2d._toy_rows, {"name": "moons", "n": 10, "seed": 1})
    assert key.startswith("mlbench.data.toy2d._toy_rows-")
    assert key != cache.cache_key(toy2d._toy_rows, {"name": "moons", "n": 10, "seed": 2})
    assert key == cache.cache_key(toy2d._toy_rows, {"seed": 1, "n": 10, "name": "moons"})
