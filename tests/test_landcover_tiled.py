"""Rules landcover_train, landcover_classify (untiled and per tile) and
landcover_classify_summary: the forest trained once on the region's samples predicts the
same map whether the region runs whole or tile by tile, and the sample table and figures
are read off the map."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.io import write_raster
from karstflow.runtime import Files, Params, call_script, load_script
from karstflow.tiling import mosaic, plan_tiles, run_tile

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
GRID = RegionGrid("EPSG:32650", 10.0, (500000.0, 2900000.0, 500240.0, 2900200.0))  # 24 x 20 px
BANDS = ["B3", "B4", "B8", "B11"]
#: class -> reflectance of B3, B4, B8, B11 in the two periods: forest, cropland (green in
#: the second period only), water
SIGNATURE = {
    1: ([0.04, 0.03, 0.40, 0.15], [0.04, 0.03, 0.42, 0.15]),
    2: ([0.08, 0.10, 0.15, 0.20], [0.05, 0.04, 0.45, 0.18]),
    3: ([0.06, 0.04, 0.02, 0.01], [0.06, 0.04, 0.02, 0.01]),
}
LEGEND = {1: "forest", 2: "cropland", 3: "water"}


def _class_map() -> np.ndarray:
    classes = np.ones(GRID.shape, dtype=np.int64)
    classes[:, 8:16] = 2
    classes[:, 16:] = 3
    return classes


def _setup(tmp_path):
    rng = np.random.default_rng(5)
    classes = _class_map()
    composites = []
    for k, period in enumerate(("h1", "h2")):
        bands = np.empty((len(BANDS), *GRID.shape), dtype=np.float32)
        for code, sig in SIGNATURE.items():
            for b in range(len(BANDS)):
                bands[b][classes == code] = sig[k][b]
        bands += rng.normal(0, 0.005, bands.shape).astype(np.float32)
        bands[:, 2:5, 1:5] = np.nan  # 12 pixels never clear: unclassified
        da = xr.DataArray(bands, dims=("band", "y", "x"), coords={"band": BANDS, **GRID.coords()})
        da = da.rio.write_crs(GRID.crs).rio.write_transform(GRID.transform)
        path = tmp_path / "imagery" / f"composite_{period}.tif"
        path.parent.mkdir(exist_ok=True)
        write_raster(da, path)
        with rasterio.open(path, "r+") as ds:
            for i, name in enumerate(BANDS, start=1):
                ds.set_band_description(i, name)
        composites.append(str(path))
    # six points per class, away from the unclassified pixels
    points, codes = [], []
    for code, cols in ((1, (1, 6)), (2, (9, 14)), (3, (17, 22))):
        for row in (7, 12, 17):
            for col in cols:
                x, y = GRID.bounds[0] + (col + 0.5) * 10, GRID.bounds[3] - (row + 0.5) * 10
                points.append(shapely.Point(x, y))
                codes.append(code)
    reference = tmp_path / "reference.gpkg"
    gpd.GeoDataFrame({"pid": range(101, 101 + len(codes)), "class": codes}, geometry=points, crs=GRID.crs).to_file(
        reference
    )
    grid_path = tmp_path / "grid.json"
    grid_path.write_text(json.dumps(GRID.to_dict()))
    params = {
        "periods": ["h1", "h2"],
        "classes": LEGEND,
        "colours": {1: [0, 100, 0], 2: [255, 200, 0], 3: [0, 0, 255]},
        "reference": {"class_column": "class", "id_column": "pid"},
        "features": {"indices": ["NDVI"], "terrain": False},
        "classifier": {
            "n_estimators": 15,
            "seed": 1,
            "min_samples_leaf": 1,
            "max_features": "sqrt",
            "class_weight": "balanced",
            "max_samples_per_class": None,
        },  # fmt: skip
        "split": {"fraction": 0.5, "seed": 0},
        "validation_file": "",
        "chunk_px": 64,
    }
    return {"composites": composites, "grid": str(grid_path)}, str(reference), params, classes


def test_the_forest_of_the_region_maps_each_tile_as_the_region(tmp_path):
    inputs, reference, params, classes = _setup(tmp_path)
    out = tmp_path / "landcover"
    wildcards = {"region": "r1"}
    train = {"model": str(out / "model.joblib"), "samples": str(out / "reference_samples.csv")}
    call_script(SCRIPTS / "landcover_train.py", {**inputs, "reference": reference}, train, params, wildcards)
    table = pd.read_csv(train["samples"])
    # 18 points, 6 per class; half of each class's points held out
    assert len(table) == 18 and table.groupby("class_code")["is_validation"].sum().tolist() == [3, 3, 3]
    assert set(table.loc[table["is_validation"], "design"]) == {"reference-split"}

    predict = {**inputs, "model": train["model"]}
    region = {"landcover": str(out / "landcover.tif")}
    call_script(SCRIPTS / "landcover_classify.py", predict, region, params, wildcards)
    with rasterio.open(region["landcover"]) as ds:
        whole = ds.read(1)
        assert ds.nodata == 255 and ds.colormap(1)[3][:3] == (0, 0, 255)
    unclassified = np.zeros(GRID.shape, bool)
    unclassified[2:5, 1:5] = True
    assert (whole[unclassified] == 255).all()
    assert (whole[~unclassified] == classes[~unclassified]).mean() > 0.95  # a separable toy

    # 16 px tiles (rule landcover_classify_tile), put together: the same map
    main = load_script(SCRIPTS / "landcover_classify.py").main
    tiles = plan_tiles(GRID, 16)
    parts = []
    for tile in tiles:
        path = str(tmp_path / "tiles" / tile.id / "landcover.tif")
        run_tile(main, Files(predict), Files({"landcover": path}), Params(params),
                 Params({**wildcards, "tile": tile.id}), 1, {"tile_px": 16, "halo_px": 0})  # fmt: skip
        parts.append(path)
    merged = str(tmp_path / "merged.tif")
    mosaic(parts, tiles, GRID, merged)
    with rasterio.open(merged) as ds:
        np.testing.assert_array_equal(ds.read(1), whole)

    summary = {"samples": str(out / "samples.csv"), "summary": str(out / "classification.json")}
    call_script(
        SCRIPTS / "landcover_classify_summary.py",
        {"landcover": merged, "samples": train["samples"], "model": train["model"]},
        summary,
        {"classes": LEGEND},
        wildcards,
    )
    samples = pd.read_csv(summary["samples"])
    assert list(samples.columns) == [
        "sample_id", "group", "class_code", "map_code", "is_validation", "design", "row", "col", "x", "y",
    ]  # fmt: skip
    assert samples["map_code"].tolist() == whole[samples["row"], samples["col"]].tolist()
    assert samples["sample_id"].tolist() == table["sample_id"].tolist()
    figures = json.loads(Path(summary["summary"]).read_text())
    assert figures["unclassified_pixels"] == 12 and figures["n_estimators"] == 15
    assert (figures["training_samples"], figures["validation_samples"]) == (9, 9)
    assert figures["training_samples_per_class"] == {"forest": 3, "cropland": 3, "water": 3}
    assert figures["features"][:5] == ["h1_B3", "h1_B4", "h1_B8", "h1_B11", "h1_NDVI"]
    assert abs(sum(figures["feature_importance"].values()) - 1.0) < 1e-9
