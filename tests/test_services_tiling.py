"""The services' per-pixel rules on tiles (karstflow.tiling.run_tile, as their `_tile` rules run
them) put together give the untiled maps pixel for pixel; the region figures they read (the
half-saturation k, the soil factors' means) come from the region, not from a tile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import Files, Params, call_script, load_script
from karstflow.tiling import mosaic, plan_tiles, run_tile

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
RES = 30.0
GRID = RegionGrid.from_bounds("EPSG:32648", RES, (600000, 2800000, 600000 + 40 * RES, 2800000 + 36 * RES))
TILE_PX = 16  # 3 x 3 tiles of the 36 x 40 px grid
THREATS = {
    "cultivated": {"weight": 0.7, "max_distance_m": 120.0, "decay": "linear", "landcover_codes": [1]},
    "built_up": {"weight": 1.0, "max_distance_m": 150.0, "decay": "exponential", "landcover_codes": [8]},
}
HABITAT = {
    "1": {"suitability": 0.4, "sensitivity": {"cultivated": 0.35, "built_up": 0.5}},
    "2": {"suitability": 1.0, "sensitivity": {"cultivated": 0.7, "built_up": 0.85}},
    "8": {"suitability": 0.0, "sensitivity": {"cultivated": 0.0, "built_up": 0.0}},
}


def _landcover(year: int) -> np.ndarray:
    lc = np.full(GRID.shape, 2, np.uint8)  # forest
    lc[14:20, 10:13] = 1  # a field across the first tile row's edge (row 16)
    lc[5:7, 30:33] = 8  # a village across the right tile column's edge (column 32)
    lc[15, 25] = 8  # a farmhouse on the last row of the first tile row
    if year == 2023:
        lc[30:33, 15:18] = 8  # a new village in the bottom row
    return lc


@pytest.fixture()
def region(tmp_path):
    (tmp_path / "grid.json").write_text(json.dumps(GRID.to_dict()))
    for year in (2000, 2023):
        write_raster(
            GRID.data_array(_landcover(year), name="landcover"), tmp_path / f"lc_{year}.tif", dtype="uint8", nodata=255
        )
    return tmp_path


def _tiled(
    script: str, inputs: dict, outputs: dict, params: dict, wildcards: dict, halo_m: float, dest: Path, grid=GRID
):
    """Rule <script>_tile on every tile, then <script>_mosaic: the put-together outputs."""
    main = load_script(SCRIPTS / script).main
    tiles = plan_tiles(grid, TILE_PX)
    parts: dict[str, list[str]] = {k: [] for k in outputs}
    for tile in tiles:
        out = {k: str(dest / "tiles" / tile.id / Path(p).name) for k, p in outputs.items()}
        spec = {"tile_px": TILE_PX, "halo_px": 0, "halo_m": halo_m}
        run_tile(main, Files(inputs), Files(out), Params(params), Params({**wildcards, "tile": tile.id}), 1, spec)
        for k in parts:
            parts[k].append(out[k])
    merged = {k: str(dest / Path(p).name) for k, p in outputs.items()}
    for k, paths in parts.items():
        mosaic(paths, tiles, grid, merged[k])  # refuses tiles whose tags differ
    return merged


def _pixels(path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.tags()


def test_degradation_tiles_with_the_largest_threat_distance_as_halo_are_the_region_map(region):
    params = {"threats": THREATS, "habitat": HABITAT, "vectors": []}
    wildcards = {"region": "r1", "year": "2023"}
    inputs = {"landcover": str(region / "lc_2023.tif"), "grid": str(region / "grid.json")}
    whole = {"degradation": str(region / "whole" / "d.tif")}
    call_script(SCRIPTS / "services_habitat_degradation.py", inputs, whole, params, wildcards)
    halo_m = max(t["max_distance_m"] for t in THREATS.values())  # 150 m = 5 px
    tiled = _tiled("services_habitat_degradation.py", inputs, whole, params, wildcards, halo_m, region / "tiled")
    a, b = _pixels(whole["degradation"])[0], _pixels(tiled["degradation"])[0]
    # the exact distance transform reaches the same nearest threat pixel: identical, not close
    np.testing.assert_array_equal(a, b)
    # by hand, forest (21, 11), 2 px below the field: cultivated at 60 m of 120 m -> 0.5
    # (linear); built-up (30, 15) at sqrt(81 + 16) px = 295.5 m > 150 m -> 0.
    # D = 0.7 / 1.7 * 0.5 * 0.7 = 0.144118
    assert a[0, 21, 11] == pytest.approx(0.7 / 1.7 * 0.5 * 0.7, rel=1e-6)
    # forest (18, 25), 3 px below the farmhouse of the tile above: exp(-2.99 * 90 / 150) = 0.166270,
    # D = 1 / 1.7 * 0.166270 * 0.85 = 0.083135
    assert a[0, 18, 25] == pytest.approx(1 / 1.7 * np.exp(-2.99 * 90 / 150) * 0.85, rel=1e-6)
    # without the halo, tile r001c001 (rows 16-31, columns 16-31) misses the farmhouse above it
    out = {"degradation": str(region / "nohalo" / "d.tif")}
    main = load_script(SCRIPTS / "services_habitat_degradation.py").main
    spec = {"tile_px": TILE_PX, "halo_px": 0}
    run_tile(main, Files(inputs), Files(out), Params(params), Params({**wildcards, "tile": "r001c001"}), 1, spec)
    assert _pixels(out["degradation"])[0][0, 18 - 16, 25 - 16] == 0.0


def test_quality_tiles_read_the_region_half_saturation(region):
    dparams = {"threats": THREATS, "habitat": HABITAT, "vectors": []}
    degradation = {}
    for year in (2000, 2023):
        degradation[year] = str(region / f"d_{year}.tif")
        call_script(
            SCRIPTS / "services_habitat_degradation.py",
            {"landcover": str(region / f"lc_{year}.tif"), "grid": str(region / "grid.json")},
            {"degradation": degradation[year]},
            dparams,
            {"region": "r1", "year": str(year)},
        )
    hs_path = region / "hs.json"
    call_script(
        SCRIPTS / "services_habitat_half_saturation.py",
        {"degradation": list(degradation.values()), "grid": str(region / "grid.json")},
        {"half_saturation": str(hs_path)},
        {"half_saturation": "auto"},
        {"region": "r1"},
    )
    highest = max(float(np.nanmax(read_raster(p).values)) for p in degradation.values())
    hs = read_json(hs_path)
    assert hs["half_saturation"] == highest / 2 and hs["method"].startswith("auto")
    # the highest D: forest next to built-up land (which has S = 0 itself), 30 m of 150 m:
    # D = 1 / 1.7 * exp(-2.99 * 30 / 150) * 0.85 = 0.274950
    assert highest == pytest.approx(1.0 / 1.7 * np.exp(-2.99 * 30 / 150) * 0.85, rel=1e-6)

    inputs = {
        "landcover": str(region / "lc_2023.tif"),
        "degradation": degradation[2023],
        "half_saturation": str(hs_path),
        "grid": str(region / "grid.json"),
    }
    params = {"habitat": HABITAT, "scaling_z": 2.5}
    wildcards = {"region": "r1", "year": "2023"}
    whole = {"quality": str(region / "whole" / "q.tif")}
    call_script(SCRIPTS / "services_habitat_quality.py", inputs, whole, params, wildcards)
    tiled = _tiled("services_habitat_quality.py", inputs, whole, params, wildcards, 0.0, region / "tiled")
    (a, tags_a), (b, tags_b) = _pixels(whole["quality"]), _pixels(tiled["quality"])
    np.testing.assert_array_equal(a, b)
    assert tags_a == tags_b and float(tags_a["half_saturation"]) == pytest.approx(highest / 2)
    # Q = H (1 - D^2.5 / (D^2.5 + k^2.5)) with the region's k, at forest pixel (21, 11)
    d = float(read_raster(degradation[2023]).values[21, 11])
    k = highest / 2
    assert a[0, 21, 11] == pytest.approx(1.0 * (1 - d**2.5 / (d**2.5 + k**2.5)), rel=1e-6)
    # a configured k is passed on as it is
    call_script(
        SCRIPTS / "services_habitat_half_saturation.py",
        {"grid": str(region / "grid.json")},
        {"half_saturation": str(hs_path)},
        {"half_saturation": 0.3},
        {"region": "r1"},
    )
    assert read_json(hs_path) == {"half_saturation": 0.3, "method": "configured", "degradation_maps": []}


def test_cover_factor_tiles_read_the_region_ndvi_endmembers(tmp_path):
    """With cover_factor vegetation_cover, C comes from FVC whose NDVI end-members are the
    5th / 95th percentiles of the whole region's NDVI cube (rule services_soil_ndvi_endmembers);
    every tile of services_soil_retention reads them, so the tiles put together are the region map."""
    import pandas as pd
    import xarray as xr

    from karstflow.io import write_netcdf

    # 20 x 40 px: 2 x 3 tiles of 16 px
    GRID = RegionGrid.from_bounds("EPSG:32648", RES, (600000, 2800000, 600000 + 40 * RES, 2800000 + 20 * RES))
    (tmp_path / "grid.json").write_text(json.dumps(GRID.to_dict()))
    h, w = GRID.shape
    coords = GRID.coords()
    # NDVI rising west to east, 0.0 .. 0.78 in 2000 and 0.02 higher in 2001
    ndvi = np.stack([np.broadcast_to(np.arange(w) * 0.02, (h, w)) + 0.02 * i for i in range(2)])
    write_netcdf(
        xr.Dataset({"ndvi": (("year", "y", "x"), ndvi)}, coords={"year": [2000, 2001], **coords}).rio.write_crs(
            GRID.crs
        ),
        tmp_path / "ndvi.nc",
    )
    call_script(
        SCRIPTS / "services_soil_ndvi_endmembers.py",
        {"ndvi": str(tmp_path / "ndvi.nc"), "grid": str(tmp_path / "grid.json")},
        {"endmembers": str(tmp_path / "em.json")},
        {"fvc_percentiles": [5, 95]},
        {"region": "r1"},
    )
    em = read_json(tmp_path / "em.json")
    # numpy's linear percentile at rank 0.05 * (n - 1) of the sorted pixel-years
    pooled = np.sort(ndvi.ravel())
    rank = 0.05 * (pooled.size - 1)
    lo = pooled[int(rank)] + (rank - int(rank)) * (pooled[int(rank) + 1] - pooled[int(rank)])
    assert em["soil_ndvi"] == pytest.approx(lo) and em["percentiles"] == [5.0, 95.0]
    assert 0.0 < em["soil_ndvi"] < 0.06 and 0.74 < em["vegetation_ndvi"] < 0.8

    write_raster(GRID.data_array(np.full(GRID.shape, 2, np.uint8)), tmp_path / "lc.tif", dtype="uint8", nodata=255)
    write_raster(GRID.data_array(np.full(GRID.shape, 2.0, np.float32)), tmp_path / "ls.tif")
    soil = xr.Dataset(
        {
            v: (("y", "x"), np.full(GRID.shape, val))
            for v, val in (("sand_pct", 20.0), ("silt_pct", 35.0), ("clay_pct", 45.0), ("organic_carbon_pct", 2.0))
        },
        coords=coords,
    ).rio.write_crs(GRID.crs)
    write_netcdf(soil, tmp_path / "soil.nc")
    climate = xr.Dataset(
        {"precipitation_mm": (("year", "y", "x"), np.full((2, h, w), 1300.0))},
        coords={"year": [2000, 2001], **coords},
    ).rio.write_crs(GRID.crs)
    write_netcdf(climate, tmp_path / "climate.nc")
    pd.DataFrame(
        {"lucode": [2], "root_depth_mm": [5000], "kc": [1.0], "lulc_veg": [1], "usle_c": [0.1], "usle_p": [1.0]}
    ).to_csv(tmp_path / "bio.csv", index=False)
    inputs = {
        name: str(tmp_path / f)
        for name, f in (
            ("ls", "ls.tif"),
            ("landcover", "lc.tif"),
            ("soil", "soil.nc"),
            ("biophysical", "bio.csv"),
            ("climate", "climate.nc"),
            ("ndvi", "ndvi.nc"),
            ("ndvi_endmembers", "em.json"),
            ("grid", "grid.json"),
        )
    }
    params = {
        "soil_conservation": {
            "r_factor": {"method": "renard_freimund_1994", "a": None, "b": None},
            "k_si_factor": 0.1317,
            "cover_factor": "vegetation_cover",
            "non_soil_classes": [7, 8],
        },
        "climate": "year",
    }
    wildcards = {"region": "r1", "year": "2001"}
    names = ("retention", "soil_loss", "factors_map")
    whole = {k: str(tmp_path / "whole" / f"{k}.tif") for k in names}
    call_script(SCRIPTS / "services_soil_retention.py", inputs, whole, params, wildcards)
    tiled = _tiled("services_soil_retention.py", inputs, whole, params, wildcards, 0.0, tmp_path / "tiled", GRID)
    for k in names:
        (a, ta), (b, tb) = _pixels(whole[k]), _pixels(tiled[k])
        np.testing.assert_array_equal(a, b)
        assert ta == tb
    # C at column 20 in 2001: FVC = (0.42 - soil) / (veg - soil), Cai et al. (2000)
    fvc = (0.42 - em["soil_ndvi"]) / (em["vegetation_ndvi"] - em["soil_ndvi"])
    c = 0.6508 - 0.3436 * np.log10(fvc * 100)
    assert _pixels(whole["factors_map"])[0][2, 10, 20] == pytest.approx(c, rel=1e-5)
