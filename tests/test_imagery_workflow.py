"""The imagery rules end to end: a local region on the real eo-learn patch, a STAC region
against the loopback STAC API, and an Earth Engine region without credentials."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import yaml

from karstflow.grid import RegionGrid
from karstflow.io import read_raster
from test_sources_stac import GRID as STAC_GRID
from test_sources_stac import stac_api  # noqa: F401  (module fixture: the loopback STAC API)
from test_workflow import copy_workflow, planned_rules, snakemake

pytestmark = pytest.mark.e2e


def _workdir(project_root, tmp_path, regions, imagery=None):
    workdir = copy_workflow(project_root, tmp_path)
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["regions"] = regions
    if imagery:
        config["imagery"] = imagery
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


def test_local_region_on_the_real_patch(project_root, tmp_path, eolearn_patch):
    with rasterio.open(eolearn_patch / "ndvi.tif") as f:
        bounds, crs = list(f.bounds), f.crs.to_string()
    region = {
        "source": "local",
        "aoi": {"bounds": bounds},
        "crs": crs,
        "resolution_m": 10,
        "years": {"first": 2016, "last": 2017},
        "periods": {
            "2016": {"start": "2016-01-01", "end": "2016-12-31"},
            "2017-summer": {"start": "2017-06-01", "end": "2017-08-31"},
        },
        "inputs": {
            "dem": str(eolearn_patch / "dem.tif"),
            "imagery": {
                "stacks": {"NDVI": str(eolearn_patch / "ndvi.tif")},
                "cloud_mask": str(eolearn_patch / "cloud_mask.tif"),
            },
        },
    }
    workdir = _workdir(project_root, tmp_path, {"eolearn": region})
    snakemake(workdir, "results/eolearn/imagery/imagery.json")
    base = workdir / "results" / "eolearn"
    grid = RegionGrid.from_dict(json.loads((base / "grid.json").read_text()))
    with rasterio.open(base / "imagery" / "composite_2016.tif") as f:
        assert f.descriptions == ("NDVI",)
    assert grid.matches(read_raster(base / "imagery" / "clear_count_2017-summer.tif"))
    summary = json.loads((base / "imagery" / "imagery.json").read_text())
    with open(eolearn_patch / "timestamps.json") as f:
        stamps = json.load(f)
    assert summary["periods"]["2016"]["scenes"] == sum(t.startswith("2016") for t in stamps)
    assert summary["periods"]["2017-summer"]["scenes"] == sum(
        t[:7] in ("2017-06", "2017-07", "2017-08") for t in stamps
    )


def test_stac_region_fetches_once_and_composites(project_root, tmp_path, stac_api):  # noqa: F811
    region = {
        "source": "stac",
        "aoi": {"bounds": list(STAC_GRID.bounds)},
        "crs": STAC_GRID.crs,
        "resolution_m": 10,
        "years": {"first": 2022, "last": 2022},
        "periods": {"2022": {"start": "2022-01-01", "end": "2022-12-31"}},
        "stac": {"url": stac_api["url"], "collection": "sentinel-2-l2a", "dem_collection": "cop-dem-glo-30"},
        # a remote region can pull the karst layers too; this one is an imagery region only
        "stages": ["terrain", "imagery"],
    }
    imagery = {"cache_tile_px": 64, "max_scene_cloud_pct": 80, "chunk_px": 64, "fetch": {"max_concurrent": 2}}
    workdir = _workdir(project_root, tmp_path, {"stac-test": region}, imagery)
    snakemake(workdir, "results/stac-test/summary.json")
    base = workdir / "results" / "stac-test"
    for name in ("imagery/composite_2022.tif", "imagery/clear_count_2022.tif", "terrain/dem.tif", "terrain/slope.tif"):
        assert STAC_GRID.matches(read_raster(base / name)), name
    manifest = json.loads((workdir / "resources" / "fetched" / "stac-test" / "manifest_2022.json").read_text())
    assert manifest["scenes"] == 5 and manifest["tiles_fetched"] > 0 and manifest["tiles_from_cache"] == 0
    assert all(e["sha256"] for e in manifest["entries"])
    summary = json.loads((base / "summary.json").read_text())
    assert (
        summary["imagery"]["periods"]["2022"]["scenes"] == 5
        and summary["terrain"]["valid_pixels"] == STAC_GRID.width * STAC_GRID.height
    )
    # masking parameters rerun the composite only; a forced refetch reads the cache
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["imagery"]["scl_not_clear"] = [0, 3, 8, 9, 10]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    plan = planned_rules(workdir, "results/stac-test/summary.json")
    assert plan == {"imagery_composite": 1, "imagery_period_summary": 1, "imagery_summary": 1, "region_summary": 1}
    table = workdir / "resources" / "fetched" / "stac-test" / "s2_2022.csv"
    table.unlink()
    snakemake(workdir, str(table.relative_to(workdir)))
    again = json.loads((workdir / "resources" / "fetched" / "stac-test" / "manifest_2022.json").read_text())
    assert again["tiles_fetched"] == 0 and again["tiles_from_cache"] == manifest["tiles_fetched"]


def test_earthengine_region_plans_without_credentials_and_fails_naming_the_variable(
    project_root, tmp_path, monkeypatch
):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    region = {
        "source": "earthengine",
        "aoi": {"bounds": [500000, 2900000, 501000, 2901000]},
        "crs": "EPSG:32650",
        "resolution_m": 10,
        "years": {"first": 2022, "last": 2022},
        "periods": {"2022": {"start": "2022-01-01", "end": "2022-12-31"}},
        "earthengine": {"project": "my-project"},
    }
    workdir = _workdir(project_root, tmp_path, {"ee-test": region})
    plan = planned_rules(workdir, "results/ee-test/imagery/composite_2022.tif")
    assert plan == {"region_grid": 1, "imagery_fetch": 1, "imagery_composite": 1}
    proc = snakemake(workdir, "results/ee-test/imagery/composite_2022.tif", check=False)
    assert proc.returncode != 0
    log = (workdir / "logs" / "ee-test" / "imagery_fetch_2022.log").read_text()
    assert "region ee-test, period 2022" in log and "set the environment variable GOOGLE_APPLICATION_CREDENTIALS" in log
    assert not (workdir / "resources" / "fetched" / "ee-test" / "s2_2022.csv").exists()
    assert np.all([not p.name.endswith(".tif") for p in (workdir / "results").rglob("*")])


def test_a_stac_region_without_network_fails_its_fetch_rule_naming_what_and_where(project_root, tmp_path, refused_url):
    """dem_fetch of a region whose STAC API refuses connections: non-zero exit, the message
    (region, collection, host, cause) in the rule's log and Snakemake's output, nothing new
    under results/, and the configured retry budget (imagery.fetch.retry_budget_s) applied."""
    region = {
        "source": "stac",
        "aoi": {"bounds": [500000, 2900000, 501000, 2901000]},
        "crs": "EPSG:32650",
        "resolution_m": 10,
        "years": {"first": 2022, "last": 2022},
        "stac": {"url": refused_url, "dem_collection": "cop-dem-glo-30"},
    }
    workdir = _workdir(project_root, tmp_path, {"offline": region}, {"fetch": {"retry_budget_s": 3}})
    snakemake(workdir, "results/offline/grid.json")
    before = sorted(p for p in (workdir / "results").rglob("*"))
    proc = snakemake(workdir, "resources/fetched/offline/dem.tif", check=False)
    assert proc.returncode != 0
    host = refused_url.split("//", 1)[1]
    expected = (
        f"region offline, period static: DEM: STAC search of collection cop-dem-glo-30 at {refused_url}: "
        f"connection refused at {host}; gave up after "
    )
    log = (workdir / "logs" / "offline" / "dem_fetch.log").read_text()
    assert expected in log and "retry budget of 3 s" in log
    assert expected in proc.stdout + proc.stderr
    assert sorted(p for p in (workdir / "results").rglob("*")) == before
    assert not (workdir / "resources" / "fetched" / "offline" / "dem.tif").exists()
