"""The tiling benchmark's reading of Snakemake's log (benchmarks/tiling/bench_tiling.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_tiling", ROOT / "benchmarks" / "tiling" / "bench_tiling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the shape of Snakemake 9's main log: a time stamp line, then the job's message, ...
LOG = """\
[Wed Dec  2 03:00:00 2026]
Job 5: carbon NPP end-members of demo-karst
Reason: Missing output files

[Wed Dec  2 03:00:02 2026]
Job 6: slope of demo-karst
Reason: Missing output files

[Wed Dec  2 03:00:30 2026]
Finished jobid: 6 (Rule: terrain_derivatives)
[Wed Dec  2 03:07:00 2026]
Error in rule carbon_npp_endmembers:
    jobid: 5
Trying to restart job 5.

[Wed Dec  2 03:07:40 2026]
Job 5: carbon NPP end-members of demo-karst
Reason: Missing output files

[Wed Dec  2 03:11:00 2026]
Finished jobid: 5 (Rule: carbon_npp_endmembers)
"""


def test_job_spans_time_a_retried_job_from_its_own_start(tmp_path):
    log_dir = tmp_path / ".snakemake" / "log"
    log_dir.mkdir(parents=True)
    (log_dir / "2026-12-02T030000.000000.snakemake.log").write_text(LOG)
    spans = dict(_bench().job_spans(tmp_path))
    # 28 s for the quick job; the retry from 03:07:40 to 03:11:00, not the 11 min since the first start
    assert spans == {"terrain_derivatives": 28.0, "carbon_npp_endmembers": 200.0}


def test_job_spans_take_the_last_invocation_of_a_resumed_run(tmp_path):
    log_dir = tmp_path / ".snakemake" / "log"
    log_dir.mkdir(parents=True)
    first = "[Wed Dec  2 03:00:00 2026]\nJob 1: slope of demo-karst\n"  # stopped before it finished
    second = (
        "[Wed Dec  2 04:00:00 2026]\nJob 3: slope of demo-karst\n"
        "[Wed Dec  2 04:00:09 2026]\nFinished jobid: 3 (Rule: terrain_derivatives)\n"
    )
    (log_dir / "2026-12-02T030000.000000.snakemake.log").write_text(first)
    (log_dir / "2026-12-02T040000.000000.snakemake.log").write_text(second)
    assert _bench().job_spans(tmp_path) == [("terrain_derivatives", 9.0)]
