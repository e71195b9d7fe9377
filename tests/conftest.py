"""Shared fixtures: the real test patch in ../shared/data, project paths."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
EOLEARN_PATCH = SHARED_DATA / "eolearn-testpatch"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def eolearn_patch() -> Path:
    """The real Sentinel-2 test patch; tests that need it skip when it is missing."""
    if not (EOLEARN_PATCH / "dem.tif").exists():
        pytest.skip(f"real test data not found at {EOLEARN_PATCH} (../shared/data beside the project)")
    return EOLEARN_PATCH


# --------------------------------------------------------------------------------------
# end-to-end helpers for the stage modules (test_*_stage.py): the same steps as
# tests/test_workflow.py (copy the workflow, run Snakemake, read a dry run's plan)
# --------------------------------------------------------------------------------------


class WorkflowRunner:
    """Copies the workflow into a directory and runs Snakemake there on 2 cores."""

    files = ("Snakefile", "workflow", "config")

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root

    def copy(self, dest: Path, edit_config=None) -> Path:
        """Copy the workflow to ``dest``; ``edit_config(config)`` may change config.yaml."""
        import shutil

        import yaml

        dest.mkdir(parents=True, exist_ok=True)
        for name in self.files:
            src = self.project_root / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dest / name)
        if edit_config is not None:
            path = dest / "config" / "config.yaml"
            config = yaml.safe_load(path.read_text())
            edit_config(config)
            path.write_text(yaml.safe_dump(config, sort_keys=False))
        return dest

    def run(self, workdir: Path, *args: str, check: bool = True):
        import subprocess
        import sys

        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "2", *args],
            cwd=workdir, capture_output=True, text=True, timeout=1800,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        return proc

    def plan(self, workdir: Path, *args: str) -> dict[str, int]:
        """Rule -> job count of a dry run, from Snakemake's job-stats table."""
        import re

        proc = self.run(workdir, "--dry-run", *args)
        out = proc.stdout + proc.stderr
        if "Nothing to be done" in out:
            return {}
        stats = out.split("Job stats:", 1)[1]
        rows = re.findall(r"^(\w+)\s+(\d+)\s*$", stats, flags=re.M)
        return {rule: int(n) for rule, n in rows if rule != "total"}


@pytest.fixture(scope="session")
def workflow_runner(project_root) -> WorkflowRunner:
    return WorkflowRunner(project_root)


@pytest.fixture(scope="session")
def demo_run(workflow_runner, tmp_path_factory) -> Path:
    """The whole workflow on the bundled demo regions (what `make demo` runs: every stage,
    maps included), run once per session (once for all pytest-xdist workers); the end-to-end
    tests of both regions share it and change nothing in it (they work in copies)."""
    import fcntl
    import os

    base = tmp_path_factory.getbasetemp()
    # under pytest-xdist (`make test`: -n 2) the workers share one run: the first to need
    # it runs the demo, the other waits on the lock and reads the same directory
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    workdir, done, failed = root / "demo-run", root / "demo-run.done", root / "demo-run.failed"
    with open(root / "demo-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            raise AssertionError(f"the session's demo run failed in another worker:\n{failed.read_text()}")
        if not done.exists():
            try:
                workflow_runner.run(workflow_runner.copy(workdir))
            except BaseException as err:
                failed.write_text(str(err))
                raise
            done.touch()
    return workdir


@pytest.fixture(scope="session")
def karst_demo_run(demo_run) -> Path:
    """The session's demo run, for the tests of the karst region's stages and the report
    (one run of the karst chain per session, not one per test module)."""
    return demo_run


# --------------------------------------------------------------------------------------
# the county demo at 800 x 800 px (about 1,600 parcels): enough parcels for the planted
# abandonment model and its interactions to be recovered (tests of the model stage)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def county_demo_1600():
    """(parcels_truth table, PLANTED abandonment section) of an 800 x 800 px county demo,
    seed 42, generated in memory (about 10 s; Sentinel-2 scenes are never computed)."""
    from karstflow.demo import generate
    from karstflow.grid import RegionGrid

    grid = RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2896000, 508000, 2904000))
    bundle = generate("county", grid, 42)
    return bundle.tables["parcels_truth.csv"].copy(), bundle.planted["abandonment"]


# --------------------------------------------------------------------------------------
# a loopback address that refuses connections (remote sources without network)
# --------------------------------------------------------------------------------------


@pytest.fixture()
def refused_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: a port the kernel handed out and
    that was closed at once, so connecting gets ECONNREFUSED straight away."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
