"""The demo generators: determinism, file contract, grids, and that what PLANTED.json
states can be recovered from the files written."""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr

from karstflow.demo import (
    COUNTY_FILES,
    KARST_FILES,
    LANDCOVER_CLASSES,
    LANDCOVER_COLOURS,
    county_files,
    generate,
    karst_files,
    write_bundle,
)
from karstflow.demo.county import DRIVER_COLUMNS, boa_add_offset, design_matrix, processing_baseline, scene_dates
from karstflow.grid import RegionGrid
from karstflow.io import read_raster

COUNTY_GRID = RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 504000, 2904000))
KARST_GRID = RegionGrid.from_bounds("EPSG:32648", 30, (600000, 2797590, 602400, 2799990))  # 80 x 80
SEED = 42


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    t0 = time.perf_counter()
    bundle = generate("county", COUNTY_GRID, SEED)
    seconds = time.perf_counter() - t0
    out = tmp_path_factory.mktemp("county")
    written = write_bundle(bundle, out)
    return {"bundle": bundle, "dir": out, "written": written, "seconds": seconds}


@pytest.fixture(scope="module")
def karst(tmp_path_factory):
    t0 = time.perf_counter()
    bundle = generate("karst", KARST_GRID, 7)
    seconds = time.perf_counter() - t0
    out = tmp_path_factory.mktemp("karst")
    written = write_bundle(bundle, out)
    return {"bundle": bundle, "dir": out, "written": written, "seconds": seconds}


def planted(d: dict) -> dict:
    return json.loads((d["dir"] / "PLANTED.json").read_text())


# --------------------------------------------------------------------------------------
# contract: files, grids, determinism
# --------------------------------------------------------------------------------------


def test_fast_at_tiny_size(county, karst):
    assert county["seconds"] < 30
    assert karst["seconds"] < 15


def test_every_declared_file_is_written(county, karst):
    for name in COUNTY_FILES:
        assert (county["dir"] / name).is_file(), name
    for name in KARST_FILES:
        assert (karst["dir"] / name).is_file(), name
    rel = {p.relative_to(county["dir"]).as_posix() for p in county["written"]}
    assert rel == set(county_files())
    assert {p.relative_to(karst["dir"]).as_posix() for p in karst["written"]} == set(karst_files())
    assert county["written"][-1].name == "PLANTED.json" and karst["written"][-1].name == "PLANTED.json"
    assert karst_files(range(2005, 2011))[2:4] == ("landcover_2005.tif", "landcover_2010.tif")


def test_rasters_lie_on_the_grid(county, karst):
    for d, grid in ((county, COUNTY_GRID), (karst, KARST_GRID)):
        for rel in d["bundle"].rasters:
            da = read_raster(d["dir"] / rel)
            assert grid.matches(da), rel
        for rel in d["bundle"].cubes:
            with xr.open_dataset(d["dir"] / rel) as ds:
                np.testing.assert_allclose(ds["x"].values, grid.coords()["x"])
                np.testing.assert_allclose(ds["y"].values, grid.coords()["y"])
                assert ds.rio.crs is not None and ds.rio.crs.to_epsg() == 32648
    for rel in county["bundle"].vectors:
        assert gpd.read_file(county["dir"] / rel).crs.to_epsg() == 32650, rel


def test_same_seed_same_bytes_other_seed_differs(county, karst, tmp_path):
    again = generate("county", COUNTY_GRID, SEED)
    write_bundle(again, tmp_path / "county")
    for rel in ("dem.tif", "landcover.tif", "precipitation.tif", county_files()[-2]):
        assert filecmp.cmp(county["dir"] / rel, tmp_path / "county" / rel, shallow=False), rel
    assert (tmp_path / "county" / "PLANTED.json").read_text() == (county["dir"] / "PLANTED.json").read_text()
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "county" / "parcels_truth.csv"), pd.read_csv(county["dir"] / "parcels_truth.csv")
    )

    k2 = generate("karst", KARST_GRID, 7)
    np.testing.assert_array_equal(
        k2.cubes["ndvi_annual.nc"]["ndvi"].values, karst["bundle"].cubes["ndvi_annual.nc"]["ndvi"].values
    )
    np.testing.assert_array_equal(
        k2.cubes["climate.nc"]["eto_mm"].values, karst["bundle"].cubes["climate.nc"]["eto_mm"].values
    )
    assert json.dumps(k2.planted, sort_keys=True, default=str) == json.dumps(
        karst["bundle"].planted, sort_keys=True, default=str
    )

    other = generate("county", COUNTY_GRID, SEED + 1)
    assert not np.array_equal(other.rasters["dem.tif"][0].values, county["bundle"].rasters["dem.tif"][0].values)
    assert other.planted["abandonment"]["driver_values"] != county["bundle"].planted["abandonment"]["driver_values"]
    k3 = generate("karst", KARST_GRID, 8)
    assert not np.array_equal(k3.rasters["dem.tif"][0].values, karst["bundle"].rasters["dem.tif"][0].values)


def test_unknown_kind_and_too_small_county():
    with pytest.raises(ValueError, match="county' or 'karst"):
        generate("island", COUNTY_GRID, 1)
    with pytest.raises(ValueError, match="at least 1000 m a side"):
        generate("county", RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 500500, 2900500)), 1)


# --------------------------------------------------------------------------------------
# county
# --------------------------------------------------------------------------------------


def test_county_dem_and_landcover(county):
    dem = read_raster(county["dir"] / "dem.tif").values
    assert dem.dtype == np.float32 and np.isfinite(dem).all()
    assert 20.0 <= dem.min() and dem.max() <= 400.0 and dem.max() - dem.min() > 300
    with rasterio.open(county["dir"] / "landcover.tif") as src:
        lc = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        cmap = src.colormap(1)
    assert set(np.unique(lc)) == set(LANDCOVER_CLASSES)  # only legend codes, all nine
    assert cmap[2][:3] == LANDCOVER_COLOURS[2]
    counts = planted(county)["landcover_pixel_counts"]
    assert {int(k): v for k, v in counts.items()} == {k: int((lc == k).sum()) for k in LANDCOVER_CLASSES}


def test_county_parcels(county):
    d = county["dir"]
    parcels = gpd.read_file(d / "parcels.gpkg")
    p = planted(county)["abandonment"]
    assert 300 <= len(parcels) <= 500 and list(parcels["parcel_id"]) == list(range(1, len(parcels) + 1))
    assert parcels["reclaim_year"].between(2010, 2019).all()
    area = parcels.area / 1e4
    assert area.between(0.05, 1.5).all()
    # non-overlapping
    tree = shapely.STRtree(parcels.geometry.values)
    a, b = tree.query(parcels.geometry.values, predicate="overlaps")
    assert len(a) == 0
    # the planted rate is the rate in the file, by count and by area
    assert p["rate_by_count"] == pytest.approx(parcels["abandoned_true"].mean(), abs=1e-12)
    assert p["rate_by_area"] == pytest.approx((area * parcels["abandoned_true"]).sum() / area.sum(), rel=1e-9)
    assert 0.25 <= p["rate_by_count"] <= 0.35
    # abandoned parcels show forest/shrub/grass, used ones cultivated; none on water/built-up
    lc = read_raster(d / "landcover.tif", masked=False).values
    from rasterio.features import rasterize

    ids = rasterize(
        zip(parcels.geometry, parcels["parcel_id"], strict=True), out_shape=lc.shape, transform=COUNTY_GRID.transform
    )
    inside = ids > 0
    cls = lc[inside]
    abandoned = parcels.set_index("parcel_id")["abandoned_true"].to_numpy()[ids[inside] - 1]
    assert set(np.unique(cls[abandoned == 1])) <= {3, 4, 5, 6}
    assert set(np.unique(cls[abandoned == 0])) == {1}
    farmland = gpd.read_file(d / "farmland.gpkg")
    assert not gpd.sjoin(parcels, farmland, predicate="intersects").shape[0]


def test_planted_logit_is_recovered(county):
    """Refit the planted design on parcels_truth.csv: every coefficient within 3 SE."""
    import statsmodels.api as sm

    p = planted(county)["abandonment"]
    df = pd.read_csv(county["dir"] / "parcels_truth.csv")
    assert list(df.columns) == ["parcel_id", *DRIVER_COLUMNS, "abandoned_true"]
    x = design_matrix(df, p["interactions"])
    assert list(x.columns) == p["design_columns"]
    fit = sm.Logit(df["abandoned_true"], x).fit(disp=0, maxiter=200)
    truth = pd.Series(p["coefficient_vector"])[x.columns]
    dev = (fit.params - truth) / fit.bse
    assert (dev.abs() < 3).all(), dev.round(2).to_dict()
    # the planted probabilities average to the target rate; grades are not collinear
    assert p["mean_planted_probability"] == pytest.approx(0.30, abs=1e-4)
    assert max(p["vif"].values()) < 5
    assert min(p["aspect_class_counts"].values()) >= 30
    # the interactions bite: clearly higher abandonment inside each subgroup
    for term in p["interactions"]:
        assert term["n_parcels"] >= 30
        assert term["abandonment_rate_inside"] > term["abandonment_rate_outside"] + 0.15
    # driver values are stored in PLANTED.json as written in the CSV
    np.testing.assert_array_equal(
        np.array(p["driver_values"]["x4_settlement_distance_m"]), df["x4_settlement_distance_m"].to_numpy()
    )


def test_drivers_recomputed_from_the_files(county):
    """A careful analyst gets the planted driver values back from the written files."""
    from rasterio.features import rasterize

    from karstflow.network import build_road_graph, travel_distance_m
    from karstflow.terrain import aspect_class, slope_aspect

    d = county["dir"]
    truth = pd.read_csv(d / "parcels_truth.csv").set_index("parcel_id")
    parcels = gpd.read_file(d / "parcels.gpkg").set_index("parcel_id")
    dem = read_raster(d / "dem.tif")
    slope, aspect = slope_aspect(dem)
    acls = aspect_class(aspect, slope, planted(county)["options"]["flat_max_deg"]).values
    ids = rasterize(
        zip(parcels.geometry, parcels.index, strict=True), out_shape=dem.shape, transform=COUNTY_GRID.transform
    )
    n = len(parcels)
    cnt = np.bincount(ids.ravel(), minlength=n + 1)[1:]
    x1 = np.bincount(ids.ravel(), weights=dem.values.ravel().astype(float), minlength=n + 1)[1:] / cnt
    x2 = np.bincount(ids.ravel(), weights=slope.values.ravel().astype(float), minlength=n + 1)[1:] / cnt
    x3 = np.bincount(ids.ravel() * 5 + acls.ravel().clip(0, 4), minlength=(n + 1) * 5).reshape(n + 1, 5)[1:].argmax(1)
    np.testing.assert_allclose(x1, truth["x1_elevation_m"], rtol=1e-12)
    np.testing.assert_allclose(x2, truth["x2_slope_deg"], rtol=1e-9)
    np.testing.assert_array_equal(x3, truth["x3_aspect_class"])
    g = build_road_graph(gpd.read_file(d / "roads.gpkg"))
    x4 = travel_distance_m(parcels.geometry, gpd.read_file(d / "settlements.gpkg").geometry, g)
    x5 = travel_distance_m(parcels.geometry, gpd.read_file(d / "farmland.gpkg").geometry, g)
    np.testing.assert_allclose(x4["distance_m"], truth["x4_settlement_distance_m"], rtol=1e-12)
    np.testing.assert_allclose(x5["distance_m"], truth["x5_farmland_distance_m"], rtol=1e-12)
    villages = gpd.read_file(d / "villages.gpkg")
    ov = gpd.overlay(
        parcels.reset_index()[["parcel_id", "geometry"]], villages, how="intersection", keep_geom_type=True
    )
    ov["a"] = ov.area
    best = (
        ov.sort_values(["parcel_id", "a"], ascending=[True, False]).drop_duplicates("parcel_id").set_index("parcel_id")
    )
    np.testing.assert_allclose(
        (best["population"] / best["area_km2"]).loc[truth.index], truth["x6_population_density_per_km2"], rtol=1e-12
    )
    assert (parcels["village_id"] == best["village_id"].loc[parcels.index]).all()
    grades = gpd.read_file(d / "quality_grades.gpkg")
    og = gpd.overlay(parcels.reset_index()[["parcel_id", "geometry"]], grades, how="intersection", keep_geom_type=True)
    og["a"] = og.area
    for col, name in (
        ("natural_grade", "x7_natural_grade"),
        ("utilization_grade", "x8_utilization_grade"),
        ("economic_grade", "x9_economic_grade"),
    ):
        w = (og[col] * og["a"]).groupby(og["parcel_id"]).sum() / og["a"].groupby(og["parcel_id"]).sum()
        np.testing.assert_allclose(w.loc[truth.index], truth[name], rtol=1e-6)
    np.testing.assert_allclose(parcels.area / 1e4, truth["x10_area_ha"], rtol=1e-12)


def test_county_support_layers(county):
    d = county["dir"]
    region = COUNTY_GRID.width * COUNTY_GRID.height * 100.0
    for name in ("villages.gpkg", "quality_grades.gpkg", "townships.gpkg", "soil.gpkg"):
        gdf = gpd.read_file(d / name)
        assert gdf.area.sum() == pytest.approx(region, rel=1e-6), name  # they tile the region
    villages = gpd.read_file(d / "villages.gpkg")
    assert {"village_id", "township", "population", "area_km2"} <= set(villages.columns)
    np.testing.assert_allclose(villages["area_km2"], villages.area / 1e6, rtol=1e-6)
    grades = gpd.read_file(d / "quality_grades.gpkg")
    for col in ("natural_grade", "utilization_grade", "economic_grade"):
        assert grades[col].between(1, 15).all() and grades[col].dtype.kind == "i"
    settlements = gpd.read_file(d / "settlements.gpkg")
    assert settlements["village_id"].isin(villages["village_id"]).all()

    import networkx as nx

    from karstflow.network import build_road_graph

    roads = gpd.read_file(d / "roads.gpkg")
    assert len(roads) > 40 and set(roads["road_class"]) >= {"village", "track"}
    g = build_road_graph(roads)
    assert nx.is_connected(g)
    node_xy = {(round(a["x"], 2), round(a["y"], 2)) for n, a in g.nodes(data=True) if g.degree(n) == 1}
    sett_xy = {(round(p.x, 2), round(p.y, 2)) for p in settlements.geometry}
    assert len(node_xy - sett_xy) >= 2  # dead ends that are not settlements

    forest = gpd.read_file(d / "forest.gpkg")
    assert set(forest["forest_type"]) == {"forested land", "other forest land", "sparse forest land"}
    assert forest["carbon_mg_ha"].gt(0).all() and forest["township"].notna().all()
    assert planted(county)["forest_polygons_per_type"] == forest["forest_type"].value_counts().to_dict()
    redline = gpd.read_file(d / "redline.gpkg")
    assert set(redline["kind"]) == {
        "nature_reserve",
        "park",
        "drinking_water_source",
        "fragile_zone",
        "geohazard_zone",
        "flood_storage",
    }
    soil = gpd.read_file(d / "soil.gpkg")
    assert set(soil["texture"]) <= {"loam", "clay", "sand", "gravelly"} and "gravelly" in set(soil["texture"])
    assert (
        set(soil["salinization"]) <= {"none", "light", "moderate", "severe"}
        and (soil["salinization"] == "severe").any()
    )
    assert soil["polluted"].any() and (~soil["drainage"].astype(bool)).any() and (soil["ph"] < 4.0).any()
    assert len(gpd.read_file(d / "irrigation.gpkg")) >= 1
    at = read_raster(d / "accumulated_temperature.tif").values
    assert 0.9 < (at >= 1800).mean() < 1.0
    prec = read_raster(d / "precipitation.tif").values
    assert 0.9 < (prec >= 400).mean() < 1.0


def test_reference_points(county):
    d = county["dir"]
    refs = gpd.read_file(d / "reference_points.gpkg")
    assert 200 <= len(refs) <= 600 and set(refs["class_code"]) == set(LANDCOVER_CLASSES)
    assert (refs["class_name"] == refs["class_code"].map(LANDCOVER_CLASSES)).all()
    with rasterio.open(d / "landcover.tif") as src:
        sampled = np.array([v[0] for v in src.sample(zip(refs.geometry.x, refs.geometry.y, strict=True))])
    np.testing.assert_array_equal(sampled, refs["class_code"].to_numpy())


def test_s2_scenes_and_baseline_offsets(county):
    d = county["dir"]
    scenes = pd.read_csv(d / "s2" / "scenes.csv", dtype={"processing_baseline": str})
    assert list(scenes.columns) == ["date", "file", "processing_baseline", "boa_add_offset", "cloud_cover_pct"]
    dates = [dt.date.fromisoformat(s) for s in scenes["date"]]
    assert dates == scene_dates()
    assert set(scenes["processing_baseline"]) == {"03.01", "04.00", "05.09"}
    for date, base, off in zip(dates, scenes["processing_baseline"], scenes["boa_add_offset"], strict=True):
        assert base == processing_baseline(date) and off == boa_add_offset(base)
        assert (off == -1000) == (date >= dt.date(2022, 1, 25))
    assert scenes["cloud_cover_pct"].min() < 2 and scenes["cloud_cover_pct"].max() > 50
    info = planted(county)["s2"]
    assert info["offset_dates"] == [
        s for s, o in zip(scenes["date"], scenes["boa_add_offset"], strict=True) if o == -1000
    ]
    assert info["baseline_04_dates"] == list(scenes["date"][scenes["processing_baseline"] == "04.00"])
    assert len(info["baseline_04_dates"]) >= 5
    np.testing.assert_allclose(scenes["cloud_cover_pct"], [round(100 * x["cloud_fraction"], 2) for x in info["dates"]])

    lc = read_raster(d / "landcover.tif", masked=False).values
    for row in scenes.itertuples():
        with rasterio.open(d / "s2" / row.file) as src:
            assert src.count == 7 and src.dtypes[0] == "uint16" and src.nodata == 0
            assert src.descriptions == ("B2", "B3", "B4", "B8", "B11", "B12", "SCL")
            a = src.read()
        scl = a[6]
        assert set(np.unique(scl)) <= {0, 3, 4, 5, 6, 8, 9, 10}
        valid = scl > 0
        clear_forest = valid & np.isin(scl, (4,)) & (lc == 2)
        red = (a[2][clear_forest].astype(float) + row.boa_add_offset) / 10000.0  # back to reflectance
        nir = (a[3][clear_forest].astype(float) + row.boa_add_offset) / 10000.0
        assert 0.01 < np.median(red) < 0.05 and 0.2 < np.median(nir) < 0.4, row.date
        if row.boa_add_offset == -1000:
            assert a[:6, valid].min() > 1000  # every valid DN carries the +1000 offset
        else:
            assert (a[3][valid & (scl == 6)] < 1000).mean() > 0.9  # dark water stays below 1000
        assert ((a[:6] == 0).all(axis=0) == ~valid).all()  # DN 0 is nodata in every band
    assert info["nodata_wedge_date"] is not None


def test_scene_dates_straddle_the_baseline_change():
    ds = scene_dates((2021, 2022, 2023), 4)
    assert len(ds) == 12 and ds[4] < dt.date(2022, 1, 25) < ds[5]
    assert {boa_add_offset(processing_baseline(x)) for x in ds} == {0, -1000}


# --------------------------------------------------------------------------------------
# karst
# --------------------------------------------------------------------------------------


def _ols_slope(cube: np.ndarray, t: np.ndarray) -> np.ndarray:
    ok = np.isfinite(cube)
    v = np.where(ok, cube, 0.0)
    tt = t[:, None, None] * ok
    n = ok.sum(0)
    st, sy = tt.sum(0), v.sum(0)
    return (n * (tt * v).sum(0) - st * sy) / (n * (tt * tt).sum(0) - st**2)


def test_karst_ndvi_trends_are_recovered(karst):
    p = planted(karst)["ndvi"]
    with xr.open_dataset(karst["dir"] / "ndvi_annual.nc") as ds:
        ndvi = ds["ndvi"].values
        years = ds["year"].values
    assert list(years) == list(range(2000, 2024)) and ndvi.dtype == np.float32
    assert np.nanmin(ndvi) >= -0.1 and np.nanmax(ndvi) <= 0.95
    assert np.isnan(ndvi).mean() == pytest.approx(p["missing"]["missing_fraction"])
    assert 0 < p["missing"]["missing_fraction"] < 0.02
    zones = read_raster(karst["dir"] / "trend_zones_truth.tif", masked=False).values
    slope = _ols_slope(ndvi.astype(float), years.astype(float))
    for name, planted_slope in p["slopes_per_year"].items():
        z = zones == p["zones"][name]["code"]
        assert z.sum() == p["zones"][name]["pixels"] > 0
        assert abs(np.mean(slope[z]) - planted_slope) < 0.002, name
    green = zones == 1
    assert np.quantile(np.abs(slope[green] - 0.008), 0.99) < 0.002


def test_karst_rocky_desertification_shrinks_by_the_planted_share(karst):
    rd = planted(karst)["rocky_desertification"]
    carb = read_raster(karst["dir"] / "carbonate.tif", masked=False).values
    with xr.open_dataset(karst["dir"] / "bedrock_exposure.nc") as ds:
        e = ds["bedrock_exposure"].values
    assert e.min() >= 0 and e.max() <= 1 and (e[:, carb == 0] == 0).all()
    first = int(((e[0] >= rd["exposure_threshold"]) & (carb == 1)).sum())
    last = int(((e[-1] >= rd["exposure_threshold"]) & (carb == 1)).sum())
    assert (first, last) == (rd["first_year"]["pixels"], rd["last_year"]["pixels"])
    assert (first - last) / first == pytest.approx(rd["relative_reduction"])
    assert rd["relative_reduction"] == pytest.approx(rd["planted_reduction"], abs=0.01)
    series = list(rd["area_km2_by_year"].values())
    assert all(a >= b for a, b in zip(series[:-1], series[1:], strict=True))  # shrinks every year or stays


def test_karst_landcover_climate_soil_tables(karst):
    d = karst["dir"]
    lc0 = read_raster(d / "landcover_2000.tif", masked=False).values
    lc1 = read_raster(d / "landcover_2023.tif", masked=False).values
    assert set(np.unique(lc0)) <= set(LANDCOVER_CLASSES) and set(np.unique(lc1)) <= set(LANDCOVER_CLASSES)
    assert (lc1 == 9).sum() < (lc0 == 9).sum()
    assert np.isin(lc1, (2, 3, 4, 5)).sum() > np.isin(lc0, (2, 3, 4, 5)).sum()
    carb = read_raster(d / "carbonate.tif", masked=False).values
    assert set(np.unique(carb)) == {0, 1}
    with xr.open_dataset(d / "climate.nc") as c:
        for var, lo, hi in (
            ("temperature_c", 14, 20.5),
            ("precipitation_mm", 950, 1550),
            ("solar_mj_m2", 3500, 4500),
            ("eto_mm", 800, 1100),
        ):
            q = np.quantile(c[var].values, [0.02, 0.98])
            assert lo <= q[0] and q[1] <= hi, (var, q)
    with xr.open_dataset(d / "soil.nc") as s:
        total = s["sand_pct"] + s["silt_pct"] + s["clay_pct"]
        np.testing.assert_allclose(total.values, 100, atol=1e-3)
        depth = s["soil_depth_mm"].values
        assert np.median(depth[carb == 1]) < np.median(depth[carb == 0])
        assert float(s["pawc"].min()) > 0 and float(s["pawc"].max()) < 1
    pools = pd.read_csv(d / "carbon_pools.csv")
    assert list(pools["lucode"]) == list(LANDCOVER_CLASSES) and list(pools.columns) == [
        "lucode",
        "lulc_name",
        "c_above",
        "c_below",
        "c_soil",
        "c_dead",
    ]
    bio = pd.read_csv(d / "biophysical.csv")
    assert list(bio.columns) == ["lucode", "lulc_name", "root_depth_mm", "kc", "lulc_veg", "usle_c", "usle_p"]
    assert len(gpd.read_file(d / "townships.gpkg")) >= 2


def test_years_option(tmp_path):
    b = generate("karst", KARST_GRID, 3, years=range(2005, 2011))
    assert set(b.rasters) >= {"landcover_2005.tif", "landcover_2010.tif"}
    assert list(b.cubes["ndvi_annual.nc"]["year"].values) == list(range(2005, 2011))
    c = generate(
        "county",
        RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 501500, 2901500)),
        5,
        years=(2021, 2022),
        dates_per_year=3,
    )
    assert sum(k.startswith("s2/S2_") for k in c.rasters) == 6
    assert set(
        write_bundle(c, tmp_path) and [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    ) == set(county_files((2021, 2022), 3))
