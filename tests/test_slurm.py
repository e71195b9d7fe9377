"""End-to-end: part of the demo through workflow/profiles/slurm on a real single-node Slurm.

The module starts the local Slurm with scripts/slurm/up.sh (slurmctld, slurmd, slurmdbd with
MariaDB, munge; it installs the Debian packages when missing) and stops it with
scripts/slurm/down.sh. In a copy of the session's local demo run (conftest ``demo_run``),
the rules writing TARGETS run again, as Slurm jobs submitted by Snakemake's Slurm executor
through the unchanged profile; everything upstream of them comes from the copy. The tests
compare the targets with the local run (pixel-identical rasters, equal JSON values, equal
cubes) and read from sacct that every job ran under Slurm for its rule and stayed within
the memory it asked for.

A run that must not start Slurm sets KARSTFLOW_SKIP_SLURM=1 (the only reason to skip: a
failing up.sh fails the module).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from karstflow.resources import slurm_mb

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

REGION = "demo-karst"
# What the Slurm run makes again; the rules writing these run as Slurm jobs. Extend with the
# outputs of further (e.g. tiled) stages; a rule's outputs left out are rewritten anyway.
TARGETS = [
    f"results/{REGION}/terrain/slope.tif",
    f"results/{REGION}/terrain/aspect.tif",
    f"results/{REGION}/terrain/aspect_class.tif",
    f"results/{REGION}/terrain/terrain.json",
    f"results/{REGION}/greening/ndvi_annual.nc",
    f"results/{REGION}/greening/trend_slope.tif",
    f"results/{REGION}/greening/trend_slope_low.tif",
    f"results/{REGION}/greening/trend_slope_high.tif",
    f"results/{REGION}/greening/trend_p.tif",
    f"results/{REGION}/greening/trend_class.tif",
    f"results/{REGION}/greening/greening.json",
]
# Rules of the demo's first steps: none of them may rerun (their outputs come from the copy).
UPSTREAM_RULES = {"demo_karst", "demo_county", "region_grid", "terrain_dem"}
# The account and partition scripts/slurm/up.sh creates (the profile names neither: Slurm's
# defaults for the user apply, as on a cluster where they are set per user).
ACCOUNT, PARTITION = "karstflow", "main"

SLURM_DIR = Path(__file__).resolve().parents[1] / "scripts" / "slurm"
DAEMON_LOGS = Path("/var/log/karstflow-slurm")


def _daemon_log_tails(lines: int = 20) -> str:
    out = []
    for path in sorted(DAEMON_LOGS.glob("*.log")):
        text = path.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"----- {path}\n" + "\n".join(text))
    return "\n".join(out)


@pytest.fixture(scope="module")
def local_slurm():
    """A running single-node Slurm for the module: scripts/slurm/up.sh, then down.sh."""
    if os.environ.get("KARSTFLOW_SKIP_SLURM") == "1":
        pytest.skip("KARSTFLOW_SKIP_SLURM=1: the local Slurm (scripts/slurm/up.sh) is not started")
    try:
        up = subprocess.run(
            ["bash", str(SLURM_DIR / "up.sh")], capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL
        )
        if up.returncode != 0:
            pytest.fail(
                f"scripts/slurm/up.sh failed (exit {up.returncode}):\n{up.stdout[-3000:]}\n{up.stderr[-8000:]}",
                pytrace=False,
            )
        yield
    finally:
        subprocess.run(["bash", str(SLURM_DIR / "down.sh")], capture_output=True, text=True, timeout=300)


def _local_rules(snakefile: Path) -> set[str]:
    """The rules of the Snakefile's ``localrules:`` block (they run on the submitting host)."""
    block = re.search(r"^localrules:\s*\n((?:[ \t]+\w+,?[ \t]*\n)+)", snakefile.read_text(), flags=re.M)
    return set(re.findall(r"\w+", block.group(1))) if block else set()


def _job_stats(output: str) -> dict[str, int]:
    """Rule -> job count of the run's job-stats table."""
    stats = output.split("Job stats:", 1)[1].split("Select jobs", 1)[0]
    rows = re.findall(r"^(\w+)\s+(\d+)\s*$", stats, flags=re.M)
    return {rule: int(n) for rule, n in rows if rule != "total"}


@pytest.fixture(scope="module")
def slurm_run(local_slurm, demo_run, workflow_runner, tmp_path_factory):
    """The targets made again through the slurm profile in a copy of the local demo run:
    (work directory, Snakemake's output, start time)."""
    workdir = tmp_path_factory.mktemp("slurm-run") / "run"
    shutil.copytree(demo_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    for target in TARGETS:
        (workdir / target).unlink()
    start = time.time()
    # The job's own snakemake and scripts are found on PATH (sbatch --export=ALL passes it).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", path)
        proc = workflow_runner.run(
            workdir,
            "--workflow-profile",
            "workflow/profiles/slurm",
            # test only: jobs of a few seconds, so look at their state every second or so
            # (the plugin's defaults suit hour-long jobs: 40 s, then 10 s more per look)
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--seconds-between-status-checks",
            "1",
            # the sbatch calls in the output, for the resources each job asked for
            "--verbose",
            *TARGETS,
            check=False,
        )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        job_logs = "\n".join(
            f"----- {p}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
        )
        pytest.fail(
            f"snakemake through workflow/profiles/slurm failed:\n{output[-8000:]}\n{job_logs}\n{_daemon_log_tails()}",
            pytrace=False,
        )
    return workdir, output, start


@pytest.fixture(scope="module")
def sacct_jobs(slurm_run) -> pd.DataFrame:
    """One row per Slurm job of the run: rule, state, requested and measured resources."""
    _, output, _ = slurm_run
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    assert submitted, f"no job was submitted to Slurm:\n{output[-3000:]}"
    # what each sbatch call asked for, by its job's comment (rule and wildcards)
    asked = {}
    for call in re.findall(r"sbatch call: (sbatch .*)", output):
        comment = re.search(r"--comment (\S+)", call).group(1).strip("'")
        mem = re.search(r"--mem (\d+)", call)
        cpus = re.search(r"--cpus-per-task[= ](\d+)", call)
        asked[comment] = (int(mem.group(1)) if mem else None, int(cpus.group(1)) if cpus else None)
    fields = "JobIDRaw,JobName%60,Comment%200,State,Account,Partition,ReqMem,ReqCPUS,MaxRSS"
    sacct = subprocess.run(
        ["sacct", "-P", "-n", "-j", ",".join(submitted.values()), f"--format={fields}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sacct.returncode == 0, sacct.stderr
    rows = [line.split("|") for line in sacct.stdout.splitlines() if line]
    names = [f.split("%")[0] for f in fields.split(",")]
    table = pd.DataFrame(rows, columns=names)
    jobs = table[~table["JobIDRaw"].str.contains(r"\.")].copy()
    steps = table[table["JobIDRaw"].str.contains(r"\.")].copy()
    steps["job"] = steps["JobIDRaw"].str.split(".").str[0]
    steps["maxrss_mb"] = steps["MaxRSS"].map(slurm_mb)
    jobs["rule"] = jobs["Comment"].str.extract(r"^rule_(\w+?)(?:_wildcards_.*)?$", expand=False)
    jobs["reqmem_mb"] = jobs["ReqMem"].map(slurm_mb)
    jobs["maxrss_mb"] = jobs["JobIDRaw"].map(steps.groupby("job")["maxrss_mb"].max())
    jobs["asked_mem_mb"] = jobs["Comment"].map(lambda c: asked.get(c, (None, None))[0])
    jobs["asked_cpus"] = jobs["Comment"].map(lambda c: asked.get(c, (None, None))[1])
    assert len(jobs) == len(submitted), f"sacct knows {len(jobs)} of the {len(submitted)} jobs:\n{sacct.stdout}"
    return jobs.set_index("JobIDRaw")


def _same_raster(a: Path, b: Path) -> None:
    import rasterio

    with rasterio.open(a) as fa, rasterio.open(b) as fb:
        assert (fa.crs, fa.transform, fa.shape, fa.dtypes) == (fb.crs, fb.transform, fb.shape, fb.dtypes), a
        assert fa.descriptions == fb.descriptions, a
        assert np.array_equal(np.array(fa.nodata, dtype=float), np.array(fb.nodata, dtype=float), equal_nan=True), a
        da, db = fa.read(), fb.read()
    assert np.array_equal(da, db, equal_nan=da.dtype.kind == "f"), f"{a} differs from the local run's {b}"


def test_the_targets_equal_the_local_run(slurm_run, demo_run):
    import xarray as xr

    workdir, _, start = slurm_run
    for target in TARGETS:
        made, local = workdir / target, demo_run / target
        assert made.exists() and made.stat().st_mtime >= start, f"{target} was not made by the Slurm run"
        if made.suffix == ".tif":
            _same_raster(made, local)
        elif made.suffix == ".json":
            assert json.loads(made.read_text()) == json.loads(local.read_text()), target
        elif made.suffix == ".nc":
            with xr.open_dataset(made) as a, xr.open_dataset(local) as b:
                xr.testing.assert_identical(a, b)
        else:
            assert made.read_bytes() == local.read_bytes(), target


def test_every_job_ran_under_slurm_as_its_rule(slurm_run, sacct_jobs, project_root):
    _, output, _ = slurm_run
    planned = _job_stats(output)
    assert not UPSTREAM_RULES & set(planned), f"rules upstream of the targets ran again: {planned}"
    local = _local_rules(project_root / "Snakefile")
    expected = {rule: n for rule, n in planned.items() if rule not in local}
    assert expected, planned
    # sacct names each job by the rule in its comment (the plugin's rule_<rule>_wildcards_<values>)
    assert sacct_jobs["rule"].value_counts().to_dict() == expected
    assert (sacct_jobs["State"] == "COMPLETED").all(), sacct_jobs[["rule", "State"]]
    # all jobs carry the run's id as their name: the executor follows them by it with sacct
    assert sacct_jobs["JobName"].nunique() == 1
    assert (sacct_jobs["Account"] == ACCOUNT).all() and (sacct_jobs["Partition"] == PARTITION).all()


def test_no_job_used_more_memory_than_it_asked_for(slurm_run, sacct_jobs):
    workdir, _, start = slurm_run
    # Slurm got what each rule asked for: its mem_mb and its threads
    assert (sacct_jobs["reqmem_mb"] == sacct_jobs["asked_mem_mb"]).all(), sacct_jobs
    assert (sacct_jobs["ReqCPUS"].astype(int) == sacct_jobs["asked_cpus"]).all(), sacct_jobs
    # sampled every second (slurm.conf JobAcctGatherFrequency): every job has a measured peak
    assert (sacct_jobs["maxrss_mb"] > 50).all(), sacct_jobs[["rule", "MaxRSS"]]
    assert (sacct_jobs["maxrss_mb"] <= sacct_jobs["reqmem_mb"]).all(), sacct_jobs[["rule", "maxrss_mb", "reqmem_mb"]]
    # and the rule's own benchmark (max_rss of the script's process tree) agrees
    limit = sacct_jobs.groupby("rule")["reqmem_mb"].min()
    benchmarks = [p for p in (workdir / "logs" / "benchmarks").rglob("*.tsv") if p.stat().st_mtime >= start]
    seen = set()
    for path in benchmarks:
        rule = next((r for r in limit.index if r == path.stem or r in path.parts), None)
        if rule is None:
            continue
        seen.add(rule)
        max_rss = pd.read_csv(path, sep="\t")["max_rss"].max()
        assert max_rss <= limit[rule], f"{path}: max_rss {max_rss} MB > mem_mb {limit[rule]}"
    assert seen == set(limit.index), f"benchmarks of {set(limit.index) - seen} were not written"
