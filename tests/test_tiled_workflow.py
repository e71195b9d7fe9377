"""Tiled and untiled runs of the demo give the same results (issue 14).

The session's untiled demo run is copied; the karst demo (every karst stage: terrain,
greening, CASA, carbon storage, desertification, the service maps) is then tiled in 4 tiles
of 48 px and every tiled rule's mosaic is forced to run again, so each tiled stage and all it
feeds run from tiles. Every result file the tiled run rewrote is compared with the untiled
run's: pixel-identical, or within the tolerance TOLERANCES gives with its reason. (The
county demo's tiled rules, the composites and the land-cover prediction, are compared on
their tiles in test_imagery_tiled.py and test_landcover_tiled.py; a second tiled region
here would add minutes of job start-ups to the suite.) Halos with tiles on every side are
checked in test_tiling.py and test_services_tiling.py (9 tiles).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from run_compare import compare_runs

pytestmark = pytest.mark.e2e

TILE_PX = {"demo-karst": 48}
# result glob -> absolute tolerance, with the reason; anything else must be identical
TOLERANCES: dict[str, float] = {}


def _tiled_rules(workdir: Path, runner) -> list[str]:
    proc = runner.run(workdir, "--list-rules")
    return sorted(r for r in re.findall(r"^(\w+_mosaic)\s*$", proc.stdout, flags=re.M) if r != "tile_mosaic")


@pytest.fixture(scope="module")
def tiled_run(demo_run, workflow_runner, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiled-run") / "run"
    shutil.copytree(demo_run, workdir, symlinks=True)
    path = workdir / "config" / "config.yaml"
    import yaml

    config = yaml.safe_load(path.read_text())
    for region, px in TILE_PX.items():
        config["regions"][region]["tiling"] = {"tile_px": px}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    mosaics = _tiled_rules(workdir, workflow_runner)
    before = {p: p.stat().st_mtime_ns for p in (workdir / "results").rglob("*") if p.is_file()}
    targets = [f"results/{region}/summary.json" for region in TILE_PX]
    workflow_runner.run(workdir, "--forcerun", *mosaics, "--", *targets)
    rewritten = sorted(
        str(p.relative_to(workdir))
        for p, mtime in before.items()
        if p.exists() and p.stat().st_mtime_ns != mtime and p.suffix in (".tif", ".nc", ".json", ".csv")
    )
    return workdir, mosaics, rewritten


def test_every_tiled_stage_ran_from_tiles(tiled_run):
    workdir, mosaics, rewritten = tiled_run
    assert "terrain_derivatives_mosaic" in mosaics
    logs = workdir / "logs"
    for region, px in TILE_PX.items():
        grid = json.loads((workdir / "results" / region / "grid.json").read_text())
        n_tiles = -(-grid["height"] // px) * -(-grid["width"] // px)
        tiles = sorted(p.name for p in (logs / region / "tiles").iterdir())
        assert len(tiles) == n_tiles, (region, tiles)
        for tile in tiles:
            assert (logs / region / "tiles" / tile / "terrain_derivatives.log").stat().st_size > 0
        # the tiles are temporary: only the mosaics stay
        assert not (workdir / "results" / region / "tiles").exists() or not any(
            (workdir / "results" / region / "tiles").rglob("*.tif")
        )
    assert "results/demo-karst/terrain/slope.tif" in rewritten


def test_tiled_results_equal_untiled(tiled_run, demo_run):
    workdir, _, rewritten = tiled_run
    assert rewritten
    problems = compare_runs(demo_run, workdir, rewritten, TOLERANCES)
    assert not problems, "\n".join(problems)
