"""Names and bytes of what a run writes: safe file names, derived seeds, safetensors files."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from mlbench.core.errors import RunStoreError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=@+,-]{0,120}$")


def safe_name(name: str, what: str = "name") -> str:
    """Names become file names: no separators, no leading dot, nothing that escapes a folder."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and _ . = @ + , -")
    return name


SEED_RULE = ("seed = int.from_bytes(sha256(f'{experiment}/{stream}/{index}'.encode()).digest()[:8], 'big') >> 1"
             " (mlbench.core.artifacts.derive_seed); a generator of (stream, index) is torch.Generator()"
             ".manual_seed(seed), a dataset draws from seed itself")


def derive_seed(*parts: Any) -> int:
    """A stable 63-bit seed from (experiment, stream, seed index): adding an arm shifts no other."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def seed_record(experiment: str, seeds: int, used: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of seeds: the rule and its inputs (experiment, seed indices, and each
    (stream, index) the run drew from) with the seed each derives, so one seed can be rerun by hand."""
    return {"rule": SEED_RULE, "experiment": experiment, "indices": list(range(seeds)),
            "streams": {s: {str(k): derive_seed(experiment, s, k) for k in sorted(used[s])} for s in sorted(used)}}


def canonical_safetensors(blob: bytes) -> bytes:
    """Re-emit a safetensors header with sorted keys: the library writes metadata from a hash map,
    so its order (and the file's bytes) would otherwise vary between processes."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section stays 8-byte aligned
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def load_tensors(blob: bytes, name: str) -> dict[str, Any]:
    """The tensors of a safetensors file's bytes; a corrupt file is a RunStoreError naming `name`."""
    from safetensors.torch import load

    try:
        return load(blob)
    except Exception as exc:  # safetensors' own error types for corrupt files
        raise RunStoreError(f"corrupt checkpoint {name}: {exc}") from None
