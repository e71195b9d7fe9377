"""Rule imagery_composite on tiles: the script run on each tile of a region (karstflow.tiling
.run_tile) and the tiles put together give the region's composite and clear count pixel for
pixel; rule imagery_period_summary's figures from the region files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from karstflow.grid import RegionGrid
from karstflow.runtime import Files, Params, call_script, load_script
from karstflow.tiling import mosaic, plan_tiles, run_tile

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
#: the scenes' grid, 24 x 20 px; the region reaches 16 px further east, where no scene is
SCENES = RegionGrid("EPSG:32650", 10.0, (500000.0, 2900000.0, 500240.0, 2900200.0))
GRID = RegionGrid("EPSG:32650", 10.0, (500000.0, 2900000.0, 500400.0, 2900200.0))  # 40 x 20 px
DATES = ("2022-03-01", "2022-06-01", "2022-09-01")


@pytest.fixture
def county(tmp_path):
    """Three scenes (B4, B8 as L2A digital numbers of baseline 05.00, SCL) over the western
    24 px of the region; the second cloudy (SCL 9) over the 5 x 5 px of the top-left corner."""
    rng = np.random.default_rng(3)
    rows = []
    dn = {}
    for t, day in enumerate(DATES):
        b4 = rng.integers(1100, 4000, SCENES.shape).astype(np.uint16)
        b8 = rng.integers(1100, 6000, SCENES.shape).astype(np.uint16)
        scl = np.full(SCENES.shape, 4, np.uint16)
        if t == 1:
            scl[:5, :5] = 9
        dn[t] = (b4, b8, scl)
        path = tmp_path / "s2" / f"scene{t}.tif"
        path.parent.mkdir(exist_ok=True)
        profile = dict(driver="GTiff", width=SCENES.width, height=SCENES.height, count=3, dtype="uint16",
                       crs=SCENES.crs, transform=SCENES.transform, nodata=0)  # fmt: skip
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.stack([b4, b8, scl]))
            for i, name in enumerate(("B4", "B8", "SCL"), start=1):
                ds.set_band_description(i, name)
        rows.append({"date": day, "file": path.name, "processing_baseline": "05.00"})
    pd.DataFrame(rows).to_csv(tmp_path / "s2" / "scenes.csv", index=False)
    grid_path = tmp_path / "grid.json"
    grid_path.write_text(json.dumps(GRID.to_dict()))
    params = {
        "region": {"source": "local", "inputs": {"imagery": {"date_table": str(tmp_path / "s2" / "scenes.csv")}}},
        "period": {"start": "2022-01-01", "end": "2022-12-31"},
        "bands": ["B4", "B8"],
        "scl_not_clear": [3, 8, 9, 10],
        "max_scene_cloud_pct": 100,
        "chunk_px": 16,
        "gdal_cache_mb": 64,
        "resampling": "nearest",
    }
    inputs = {"scenes": [str(tmp_path / "s2" / "scenes.csv")], "grid": str(grid_path), "region_grid": str(grid_path)}
    return tmp_path, inputs, params, dn


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.tags(), ds.descriptions


def test_tiles_put_together_are_the_region_composite_and_its_summary(county):
    tmp_path, inputs, params, dn = county
    wildcards = {"region": "r1", "period": "2022"}
    region = {
        "composite": str(tmp_path / "region" / "composite.tif"),
        "clear_count": str(tmp_path / "region" / "cc.tif"),
    }
    call_script(SCRIPTS / "imagery_composite.py", inputs, region, params, wildcards)

    # the median of the clear observations, (DN - 1000) / 10000 (baseline 04.00 offset)
    composite, tags, names = _read(region["composite"])
    refl = {b: np.stack([(dn[t][i].astype(np.float32) - 1000) / 10000 for t in range(3)]) for i, b in enumerate("48")}
    assert names == ("B4", "B8")
    np.testing.assert_allclose(composite[0, 10, 10], np.median(refl["4"][:, 10, 10]), rtol=1e-6)
    np.testing.assert_allclose(composite[1, 2, 2], np.mean(refl["8"][[0, 2], 2, 2]), rtol=1e-6)  # scene 1 cloudy
    count = _read(region["clear_count"])[0][0]
    assert (count[:5, :5] == 2).all() and (count[5:, :24] == 3).all() and (count[:, 24:] == 0).all()
    assert np.isnan(composite[:, :, 24:]).all()

    # 16 px tiles, 2 rows of 3, each run as rule imagery_composite_tile; the eastern two lie
    # beyond every scene
    main = load_script(SCRIPTS / "imagery_composite.py").main
    tiles = plan_tiles(GRID, 16)
    assert len(tiles) == 6
    parts = {"composite": [], "clear_count": []}
    for tile in tiles:
        out = {k: str(tmp_path / "tiles" / tile.id / Path(p).name) for k, p in region.items()}
        spec = {"tile_px": 16, "halo_px": 0}
        run_tile(main, Files(inputs), Files(out), Params(params), Params({**wildcards, "tile": tile.id}), 1, spec)
        for k in parts:
            parts[k].append(out[k])
    merged = {k: str(tmp_path / "merged" / Path(p).name) for k, p in region.items()}
    for k, paths in parts.items():
        mosaic(paths, tiles, GRID, merged[k])  # refuses tiles whose tags differ
    for k in region:
        a, ta, na = _read(region[k])
        b, tb, nb = _read(merged[k])
        np.testing.assert_array_equal(a, b)
        assert (ta, na) == (tb, nb)
    assert tags["dates"] == ",".join(DATES) and tags["processing_baselines"] == "05.00"

    summary_path = tmp_path / "period_2022.json"
    call_script(
        SCRIPTS / "imagery_period_summary.py",
        {"composite": merged["composite"], "clear_count": merged["clear_count"]},
        {"summary": str(summary_path)},
        {},
        wildcards,
    )
    summary = json.loads(summary_path.read_text())
    n = GRID.width * GRID.height
    assert summary["pixels"] == n == 800 and summary["clear_share"] == pytest.approx(480 / 800)
    assert summary["clear_count_mean"] == pytest.approx((3 * 480 - 25) / n) and summary["clear_count_max"] == 3
    assert summary["scenes"] == 3 and summary["dates"] == list(DATES) and summary["bands"] == ["B4", "B8"]
    assert summary["processing_baselines"] == ["05.00"] and summary["source"] == "local"
    assert (summary["start"], summary["end"], summary["bytes_pulled"]) == ("2022-01-01", "2022-12-31", 0)
