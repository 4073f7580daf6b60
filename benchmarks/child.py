"""Child process for time-to-verdict: run one experiment, print wall time, peak RSS, verdicts."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time

START = time.perf_counter()


def main() -> None:
    experiment, profile, device = sys.argv[1], sys.argv[2], sys.argv[3]
    import mlbench

    with tempfile.TemporaryDirectory() as tmp:
        result = mlbench.run(experiment, profile=profile, device=device, results=tmp)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": time.perf_counter() - START, "peak_rss_mib": rss_mib,
                      "verdicts": {c["id"]: c["verdict"] for c in result.summary["claims"]}}))


if __name__ == "__main__":
    main()
