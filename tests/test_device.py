"""Device placement through accelerate: the device a run gets, and what its manifest records."""

import json

import mlbench
from mlbench.core import device


def test_a_lone_cpu_process_is_placed_where_accelerate_would_place_it():
    from accelerate import PartialState

    here = device.place("cpu")
    assert (here.rank, here.world, here.device) == (0, 1, str(PartialState(cpu=True).device))
    assert here.manifest() == {"type": "cpu", "name": "cpu", "device": "cpu"}


def test_manifest_records_the_device_the_run_was_given(results):
    res = mlbench.run("hippo-memory", profile="smoke", seeds=1, results=results, threads=1, device="cpu")
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["device"] == device.place("cpu").manifest()
    assert manifest["processes"] == 1 and "ranks" not in manifest["device"]


def test_accelerators_with_different_mixed_precision_follow_each_other():
    """accelerate refuses a second AcceleratorState with another mixed precision in one process;
    `device.accelerator` resets that state (not the device) between settings."""
    first = device.accelerator("cpu", "bf16")
    assert first.mixed_precision == "bf16" and first.native_amp and str(first.device) == "cpu"
    second = device.accelerator("cpu", "no")
    assert second.mixed_precision == "no" and not second.native_amp
    assert device.accelerator("cpu", "no").mixed_precision == "no"  # same setting: no reset needed
