"""Reruns are byte-identical (issue 15, points 4 and 5).

Two clean runs, and a run killed with SIGKILL then resumed with the one documented command
(``scripts/resume.py``, ``make resume``), write the same bytes under ``results/``. The
session's demo run (conftest ``demo_run``) is the reference, so these tests add one
partial clean run and one short killed-and-resumed run, not two whole runs.
"""

from __future__ import annotations

import base64
import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The second clean run: the county's capacity plan (its JSON held the solve time), with the
# GeoPackages of the abandonment, reserve and swap (gpkg_contents.last_change held the time
# of writing), the karst NPP cube (NetCDF), and the county's maps (PNG) and summary. What
# they build on comes with them: about half the demo's work.
TARGETS = (
    "results/demo-county/capacity/capacity.json",
    "results/demo-county/maps",
    "results/demo-county/summary.json",
    "results/demo-karst/carbon/npp_annual.nc",
)


def test_a_geopackage_written_twice_is_byte_identical(tmp_path):
    import sqlite3

    import geopandas as gpd
    from shapely.geometry import Point

    from karstflow.io import GPKG_TIMESTAMP, write_vector

    frame = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[Point(0, 0), Point(1, 1)], crs="EPSG:32650")
    first, second = tmp_path / "a" / "parcels.gpkg", tmp_path / "b" / "parcels.gpkg"
    write_vector(frame, first)
    time.sleep(1.1)  # GDAL's timestamps have millisecond resolution; a second apart for sure
    write_vector(frame, second)
    assert filecmp.cmp(first, second, shallow=False)
    with sqlite3.connect(first) as db:
        assert db.execute("SELECT last_change FROM gpkg_contents").fetchall() == [(GPKG_TIMESTAMP,)]


def differing_files(reference: Path, run: Path, *, complete: bool = False) -> list[str]:
    """The files under ``run``/results that are missing from ``reference`` or differ from
    it byte for byte, as 'path (n bytes vs m bytes)'; with ``complete``, also the files of
    ``reference`` that ``run`` lacks."""
    problems = []
    files = sorted(p for p in (run / "results").rglob("*") if p.is_file())
    assert files, f"no files under {run / 'results'}"
    if complete:
        for ref in sorted(p for p in (reference / "results").rglob("*") if p.is_file()):
            if not (run / ref.relative_to(reference)).exists():
                problems.append(f"{ref.relative_to(reference)} (missing)")
    for path in files:
        rel = path.relative_to(run)
        ref = reference / rel
        if not ref.exists():
            problems.append(f"{rel} (not in the reference run)")
        elif not filecmp.cmp(ref, path, shallow=False):
            problems.append(f"{rel} ({ref.stat().st_size} bytes vs {path.stat().st_size} bytes)")
    return problems


@pytest.fixture(scope="module")
def second_run(workflow_runner, tmp_path_factory) -> Path:
    workdir = workflow_runner.copy(tmp_path_factory.mktemp("second-run"))
    workflow_runner.run(workdir, *TARGETS)
    return workdir


@pytest.mark.e2e
def test_two_clean_runs_are_byte_identical(demo_run, second_run):
    made = [p for p in (second_run / "results").rglob("*") if p.is_file()]
    # the run holds what this test is about
    suffixes = {p.suffix for p in made}
    assert {".gpkg", ".nc", ".png", ".json", ".csv", ".tif"} <= suffixes, suffixes
    problems = differing_files(demo_run, second_run)
    assert not problems, "differ between two clean runs:\n" + "\n".join(problems)


def _snakemake(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--cores", "2", *args]


@pytest.mark.e2e
def test_run_killed_with_sigkill_resumes_with_one_command_byte_identical(
    demo_run, workflow_runner, project_root, tmp_path
):
    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    # rerun the NPP cube and the capacity plan and what follows them, killed mid-way
    proc = subprocess.Popen(
        _snakemake("--forcerun", "carbon_npp", "capacity_plan"),
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    incomplete = workdir / ".snakemake" / "incomplete"
    deadline = time.monotonic() + 600
    try:
        # a job has started (its outputs are marked incomplete) and has had time to write
        while not (incomplete.is_dir() and any(incomplete.iterdir())):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no job started within 600 s"
            time.sleep(0.2)
        time.sleep(2)
    finally:
        # the whole process group: Snakemake and the job scripts it started, as a power loss
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert any((workdir / ".snakemake" / "locks").iterdir()), "kill -9 left no lock (nothing to resume?)"
    marked = [base64.b64decode(p.name).decode() for p in incomplete.iterdir()]
    assert marked, "kill -9 left no incomplete job"
    stuck = workflow_runner.run(workdir, check=False)
    assert stuck.returncode != 0 and "cannot be locked" in stuck.stdout + stuck.stderr

    resumed = subprocess.run(
        [sys.executable, str(project_root / "scripts" / "resume.py"), "--cores", "2"],
        cwd=workdir, capture_output=True, text=True, timeout=1800,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert workflow_runner.plan(workdir) == {}, "the resumed run left work undone"
    # the killed job's outputs (it deleted them when it started) are made again
    assert all((workdir / path).exists() for path in marked), marked
    problems = differing_files(demo_run, workdir, complete=True)
    assert not problems, "differ between a clean run and one killed with -9 and resumed:\n" + "\n".join(problems)


def test_resume_refuses_while_snakemake_runs_in_the_directory(project_root, tmp_path):
    (tmp_path / "Snakefile").write_text("")
    # a process in the directory whose command line names snakemake, as a job script does
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", ".snakemake/scripts/tmp.snakemake_job.py"],
        cwd=tmp_path,
    )
    try:
        proc = subprocess.run(
            [sys.executable, str(project_root / "scripts" / "resume.py")],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
    finally:
        other.kill()
        other.wait()
    assert proc.returncode == 1
    assert f"pid {other.pid}" in proc.stderr and "still running" in proc.stderr, proc.stderr
