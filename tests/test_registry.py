"""Every registered experiment, without a test file of its own: a torch-free face whose claims
read only arms the run produces, and a negative control that does not come out reproduced."""

import subprocess
import sys

import pytest

from mlbench.core import registry
from mlbench.core.verdict import REPRODUCED

FACE_CHECK = """
import sys
from mlbench.core import registry
face = registry.load({name!r})
cfg = face.Config()
assert face.SUMMARY and face.CITATION and face.__doc__ and isinstance(face.VERSION, int)
produced = set(face.arms(cfg))
for claim in face.claims(cfg):
    assert set(claim.arm_keys()) <= produced, (claim.id, set(claim.arm_keys()) - produced)
assert "torch" not in sys.modules, "importing the face imported torch"
"""


@pytest.mark.parametrize("name", registry.names())
def test_face_is_torch_free_and_claims_read_produced_arms(name):
    proc = subprocess.run([sys.executable, "-c", FACE_CHECK.format(name=name)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.names())
def test_negative_control_is_not_reproduced(name, run_once):
    """The quick profile with `negative_control=true`: the claims the control removes (the
    headline, or the face's NEGATIVE_CONTROL_CLAIMS) must not come out reproduced."""
    face = registry.load(name)
    summary = run_once(name, sets=("negative_control=true",)).summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    for claim in getattr(face, "NEGATIVE_CONTROL_CLAIMS", (summary["headline"]["claim"],)):
        assert verdicts[claim] != REPRODUCED, (claim, verdicts)
