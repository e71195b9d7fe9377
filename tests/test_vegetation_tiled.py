"""Rules vegetation_calibration, vegetation_stack (untiled and per tile),
vegetation_composite_summary and vegetation_summary: the sensor calibration is fitted once
on the region, and the stack made from it tile by tile is the region's stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.runtime import Files, Params, call_script, load_script
from karstflow.tiling import mosaic, plan_tiles, run_tile

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
GRID = RegionGrid("EPSG:32648", 30.0, (600000.0, 2800000.0, 600720.0, 2800600.0))  # 24 x 20 px
RECORD = {
    "reference_sensor": "landsat",
    "sensor_of_year": {"2014": "modis", "2015": "landsat"},
    "overlap_years": [{"from": "modis", "to": "landsat", "year": 2015}],
}


def _composite(path: Path, ndvi: np.ndarray, clear: np.ndarray, sensor: str, year: int) -> str:
    bands = np.stack([ndvi, 0.6 * ndvi, np.tanh(ndvi**2), clear.astype(np.float32)]).astype(np.float32)
    profile = dict(driver="GTiff", width=GRID.width, height=GRID.height, count=4, dtype="float32",
                   crs=GRID.crs, transform=GRID.transform, nodata=float("nan"))  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands)
        for i, name in enumerate(("ndvi", "evi", "kndvi", "clear_count"), start=1):
            ds.set_band_description(i, name)
        ds.update_tags(sensor=sensor, year=year, season=f"{year}-05-01/{year}-09-30", method="median",
                       scenes=4, dates=f"{year}-05-02,{year}-06-10,{year}-08-01,{year}-09-20")  # fmt: skip
    return str(path)


@pytest.fixture
def record(tmp_path):
    rng = np.random.default_rng(11)
    modis = {y: rng.uniform(0.2, 0.8, GRID.shape).astype(np.float32) for y in (2014, 2015)}
    landsat = (0.05 + 0.9 * modis[2015].astype(np.float64)).astype(np.float32)  # landsat = 0.05 + 0.9 modis
    clear = np.full(GRID.shape, 4)
    clear[:2, :] = 0  # two rows never clear: no value
    for y in modis:
        modis[y][:2, :] = np.nan
    landsat[:2, :] = np.nan
    files = {
        "modis_2014": _composite(tmp_path / "modis_2014.tif", modis[2014], clear, "modis", 2014),
        "modis_2015": _composite(tmp_path / "modis_2015.tif", modis[2015], clear, "modis", 2015),
        "landsat_2015": _composite(tmp_path / "landsat_2015.tif", landsat, clear, "landsat", 2015),
    }
    grid_path = tmp_path / "grid.json"
    grid_path.write_text(json.dumps(GRID.to_dict()))
    return tmp_path, files, str(grid_path), modis


def test_the_stack_of_each_tile_is_the_region_stack_on_the_region_calibration(record):
    tmp_path, files, grid, modis = record
    wildcards = {"region": "k1"}
    calibration = str(tmp_path / "calibration.json")
    call_script(
        SCRIPTS / "vegetation_calibration.py",
        {"modis_2015": files["modis_2015"], "landsat_2015": files["landsat_2015"], "grid": grid},
        {"calibration": calibration},
        {
            "record": RECORD,
            "calibration": "ols",
            "coefficients": [],
            "min_pixels": 100,
            "window_m": 0,
            "max_std": None,
        },  # fmt: skip
        wildcards,
    )
    (cal,) = json.loads(Path(calibration).read_text())["calibrations"]
    assert (cal["source_sensor"], cal["target_sensor"], cal["year"]) == ("modis", "landsat", 2015)
    assert cal["gain"] == pytest.approx(0.9, abs=1e-6) and cal["offset"] == pytest.approx(0.05, abs=1e-6)
    assert cal["n_pixels"] == 18 * 24 and cal["r2"] == pytest.approx(1.0, abs=1e-9)

    inputs = {"modis_2014": files["modis_2014"], "landsat_2015": files["landsat_2015"],
              "calibration": calibration, "grid": grid}  # fmt: skip
    params = {"record": RECORD, "chunk_px": 8, "gdal_cache_mb": 64}
    region = str(tmp_path / "annual_stack.nc")
    call_script(SCRIPTS / "vegetation_stack.py", inputs, {"stack": region}, params, wildcards)
    with xr.open_dataset(region) as cube:
        ndvi = cube["ndvi"].values
        assert cube["sensor"].values.tolist() == ["modis", "landsat"]
    want = np.float32(cal["offset"]) + np.float32(cal["gain"]) * modis[2014]  # 2014 on the Landsat scale
    np.testing.assert_array_equal(ndvi[0], want)

    # 16 px tiles (rule vegetation_stack_tile): each tile's stack is the region's over the
    # tile, with the same attributes (no figure of its own)
    main = load_script(SCRIPTS / "vegetation_stack.py").main
    tiles = plan_tiles(GRID, 16)
    assert len(tiles) == 4
    parts = []
    with xr.open_dataset(region) as whole:
        for tile in tiles:
            path = str(tmp_path / "tiles" / tile.id / "annual_stack.nc")
            run_tile(main, Files(inputs), Files({"stack": path}), Params(params),
                     Params({**wildcards, "tile": tile.id}), 1, {"tile_px": 16, "halo_px": 0})  # fmt: skip
            with xr.open_dataset(path) as part:
                assert part.attrs == whole.attrs
                for name in whole.data_vars:
                    want = whole[name].isel(tile.window.slices).values
                    np.testing.assert_array_equal(part[name].values, want, err_msg=f"{tile.id} {name}")
            parts.append(path)
    merged = str(tmp_path / "merged.nc")
    mosaic(parts, tiles, GRID, merged)  # the tiles put together (rule vegetation_stack_mosaic)
    with xr.open_dataset(region) as a, xr.open_dataset(merged) as b:
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        assert a.attrs == b.attrs

    summaries = {}
    for key in ("modis_2014", "landsat_2015"):
        sensor, year = key.split("_")
        summaries[key] = str(tmp_path / f"{key}.json")
        call_script(
            SCRIPTS / "vegetation_composite_summary.py",
            {"composite": files[key]},
            {"summary": summaries[key]},
            {"source": "local"},
            {**wildcards, "sensor": sensor, "year": year},
        )
    first = json.loads(Path(summaries["modis_2014"]).read_text())
    assert first["clear_share"] == pytest.approx(18 / 20) and first["clear_count_mean"] == pytest.approx(4 * 18 / 20)
    assert (first["scenes"], first["first_date"], first["last_date"]) == (4, "2014-05-02", "2014-09-20")
    assert first["season"] == ["2014-05-01", "2014-09-30"] and first["bytes_pulled"] == 0
    out = str(tmp_path / "vegetation.json")
    call_script(
        SCRIPTS / "vegetation_summary.py",
        {**summaries, "calibration": calibration},
        {"summary": out},
        {"record": RECORD},
        wildcards,
    )
    body = json.loads(Path(out).read_text())
    assert body["sensor_of_year"] == {"2014": "modis", "2015": "landsat"} and body["calibrations"] == [cal]
    assert [y["year"] for y in body["years"]] == [2014, 2015] and body["bytes_pulled_total"] == 0


def test_the_composites_of_the_tiles_put_together_are_the_region_composite(tmp_path):
    """Rule vegetation_composite on 16 px tiles (vegetation_composite_tile), then the mosaic:
    the region's MOD13Q1 median composite, pixel for pixel, with the same tags."""
    import pandas as pd

    rng = np.random.default_rng(2)
    rows = []
    ndvi_dn = []
    for t, day in enumerate(("2014-05-09", "2014-06-26", "2014-08-13")):
        ndvi = rng.integers(2000, 8000, GRID.shape).astype(np.int16)
        reliability = np.zeros(GRID.shape, np.int16)
        if t == 0:
            reliability[:, :3] = 2  # snow: not clear
        ndvi_dn.append(np.where(reliability == 0, ndvi, -1))
        path = tmp_path / f"mod{t}.tif"
        profile = dict(driver="GTiff", width=GRID.width, height=GRID.height, count=3, dtype="int16",
                       crs=GRID.crs, transform=GRID.transform, nodata=-3000)  # fmt: skip
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.stack([ndvi, (0.6 * ndvi).astype(np.int16), reliability]))
            for i, name in enumerate(("ndvi", "evi", "pixel_reliability"), start=1):
                ds.set_band_description(i, name)
        rows.append({"date": day, "file": path.name, "sensor": "modis"})
    table = tmp_path / "scenes.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(GRID.to_dict()))
    inputs = {"scenes": str(table), "grid": str(grid)}
    veg = {"composite": "median", "landsat_qa_not_clear": ["fill", "cloud"], "scl_not_clear": [3, 8, 9],
           "modis_reliability_clear": [0, 1], "resampling": "nearest", "chunk_px": 16}  # fmt: skip
    params = {"source": "local", "season_months": [5, 6, 7, 8, 9], "vegetation": veg, "gdal_cache_mb": 64}
    wildcards = {"region": "k1", "sensor": "modis", "year": "2014"}
    region = str(tmp_path / "modis_2014.tif")
    call_script(SCRIPTS / "vegetation_composite.py", inputs, {"composite": region}, params, wildcards)
    with rasterio.open(region) as ds:
        whole, tags = ds.read(), ds.tags()
    dn = np.stack(ndvi_dn).astype(np.float64)
    want = np.median(np.where(dn >= 0, dn, np.nan)[:, :, 3:], axis=0) * 1e-4  # three clear dates
    np.testing.assert_allclose(whole[0][:, 3:], want, rtol=1e-5)
    assert (whole[3][:, :3] == 2).all() and (whole[3][:, 3:] == 3).all()  # clear count
    assert tags["scenes"] == "3" and tags["dates"] == "2014-05-09,2014-06-26,2014-08-13"

    main = load_script(SCRIPTS / "vegetation_composite.py").main
    tiles = plan_tiles(GRID, 16)
    parts = []
    for tile in tiles:
        path = str(tmp_path / "tiles" / tile.id / "modis_2014.tif")
        run_tile(main, Files(inputs), Files({"composite": path}), Params(params),
                 Params({**wildcards, "tile": tile.id}), 1, {"tile_px": 16, "halo_px": 0})  # fmt: skip
        parts.append(path)
    merged = str(tmp_path / "merged.tif")
    mosaic(parts, tiles, GRID, merged)
    with rasterio.open(merged) as ds:
        np.testing.assert_array_equal(ds.read(), whole)
        assert ds.tags() == tags
