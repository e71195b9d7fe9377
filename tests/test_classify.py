"""Features, reference samples, the seeded split, the random forest and the map's accuracy.

The real Sentinel-2 patch (../shared/data/eolearn-testpatch) is classified into its
reference land-use classes from its NDVI time series; its confusion matrix and Kappa are
printed (run pytest with -s to see them).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from sklearn.metrics import cohen_kappa_score

from karstflow.accuracy import assess, confusion_matrix
from karstflow.classify import (
    SampleError,
    assess_landcover,
    confusion_table,
    mapped_area_ha,
    predict_map,
    reference_samples,
    split_samples,
    train_random_forest,
)
from karstflow.features import build_features, named_bands, normalized_difference, seasonal_ndvi, spectral_indices
from karstflow.grid import RegionGrid

LEGEND = {1: "cultivated", 2: "forest", 3: "grassland"}
GRID = RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 500100, 2900060))  # 10 x 6 px


def composite(values: dict[str, float]) -> xr.DataArray:
    data = np.stack([np.full(GRID.shape, v, dtype=np.float32) for v in values.values()])
    da = GRID.data_array(data).rename({"dim_0": "band"})
    da.attrs["long_name"] = tuple(values)
    return da


# ------------------------------------------------------------------------------ features


def test_indices_match_hand_calculation():
    c = composite({"B2": 0.05, "B3": 0.08, "B4": 0.06, "B8": 0.30, "B11": 0.20, "B12": 0.12})
    idx = spectral_indices(c)
    assert float(idx["NDVI"][0, 0]) == pytest.approx((0.30 - 0.06) / (0.30 + 0.06), rel=1e-6)
    assert float(idx["NDWI"][0, 0]) == pytest.approx((0.08 - 0.30) / (0.08 + 0.30), rel=1e-6)
    assert float(idx["NDBI"][0, 0]) == pytest.approx((0.20 - 0.30) / (0.20 + 0.30), rel=1e-6)


def test_normalized_difference_is_nan_where_undefined():
    a = xr.DataArray(np.array([0.0, np.nan, 0.2]))
    b = xr.DataArray(np.array([0.0, 0.1, 0.2]))
    out = normalized_difference(a, b).values
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 0


def test_seasonal_statistics_skip_missing_periods():
    ndvi = xr.DataArray(np.array([[0.2, np.nan], [0.8, 0.5], [0.5, np.nan]]), dims=("period", "x"))
    stats = seasonal_ndvi(ndvi)
    assert stats["max"].values.tolist() == [0.8, 0.5]
    assert stats["amplitude"].values.tolist() == pytest.approx([0.6, 0.0])
    assert stats["mean"].values.tolist() == pytest.approx([0.5, 0.5])


def test_features_are_named_and_seasonal_only_with_several_periods():
    a = composite({"B3": 0.1, "B4": 0.1, "B8": 0.3, "B11": 0.2})
    b = composite({"B3": 0.1, "B4": 0.1, "B8": 0.5, "B11": 0.2})
    one = build_features({"p1": a})
    assert list(one["feature"].values) == ["p1_B3", "p1_B4", "p1_B8", "p1_B11", "p1_NDVI", "p1_NDWI", "p1_NDBI"]
    elev = GRID.data_array(np.full(GRID.shape, 120.0, dtype=np.float32))
    two = build_features({"p1": a, "p2": b}, elevation=elev)
    names = list(two["feature"].values)
    assert names[-5:] == ["NDVI_max", "NDVI_min", "NDVI_mean", "NDVI_amplitude", "elevation_m"]
    amp = float(two.sel(feature="NDVI_amplitude")[0, 0])
    assert amp == pytest.approx((0.5 - 0.1) / 0.6 - (0.3 - 0.1) / 0.4, rel=1e-6)
    assert two.dtype == np.float32 and two.rio.crs is not None


def test_missing_band_or_description_is_reported():
    c = composite({"B3": 0.1, "B4": 0.1})
    with pytest.raises(ValueError, match=r"index NDVI needs bands B8 and B4.*missing \['B8'\]"):
        spectral_indices(c, source="composite_x.tif")
    bare = c.copy()
    bare.attrs = {}
    with pytest.raises(ValueError, match="composite_x.tif: expected band descriptions"):
        named_bands(bare, "composite_x.tif")


# ----------------------------------------------------------------------- samples, split


def feature_cube() -> xr.DataArray:
    """Two features: column index and row index, so a sample's values reveal its pixel."""
    rows, cols = np.mgrid[0 : GRID.height, 0 : GRID.width].astype(np.float32)
    da = GRID.data_array(np.stack([cols, rows])).rename({"dim_0": "feature"}).assign_coords(feature=["col_f", "row_f"])
    return da


def test_points_take_the_pixel_they_fall_in():
    pts = gpd.GeoDataFrame(
        {"point_id": [7, 8], "class_code": [1, 3]},
        geometry=[shapely.Point(500035, 2900045), shapely.Point(500099, 2900001)],
        crs=GRID.crs,
    )
    s = reference_samples(feature_cube(), pts, "class_code", LEGEND, id_column="point_id")
    assert s[["sample_id", "row", "col", "col_f", "row_f"]].values.tolist() == [[7, 1, 3, 3, 1], [8, 5, 9, 9, 5]]


def test_polygons_give_every_pixel_centre_inside_one_group():
    poly = gpd.GeoDataFrame({"class_code": [2]}, geometry=[shapely.box(500000, 2900040, 500030, 2900060)], crs=GRID.crs)
    s = reference_samples(feature_cube(), poly, "class_code", LEGEND)
    assert (
        len(s) == 6
        and set(s["group"]) == {0}
        and set(zip(s["row"], s["col"], strict=True)) == {(r, c) for r in (0, 1) for c in (0, 1, 2)}
    )


def test_samples_outside_the_grid_or_legend_are_rejected_with_ids():
    pts = gpd.GeoDataFrame(
        {"point_id": [1, 2, 3], "class_code": [1, 2, 2]},
        geometry=[shapely.Point(500005, 2900005), shapely.Point(600000, 2900005), shapely.Point(500015, 2900005)],
        crs=GRID.crs,
    )
    with pytest.raises(SampleError, match=r"ref.gpkg: 1 sample\(s\) lie outside the region grid \(ids 2\)"):
        reference_samples(feature_cube(), pts, "class_code", LEGEND, source="ref.gpkg", id_column="point_id")
    pts["class_code"] = [1, 12, 2]
    with pytest.raises(SampleError, match=r"ref.gpkg: class code\(s\) \[12\].*outside the legend.*ids 2"):
        reference_samples(feature_cube(), pts, "class_code", LEGEND, source="ref.gpkg", id_column="point_id")
    pts["class_code"] = [1, "forest", 2]
    with pytest.raises(SampleError, match="must hold integer class codes"):
        reference_samples(feature_cube(), pts, "class_code", LEGEND, source="ref.gpkg", id_column="point_id")


def test_split_is_stratified_seeded_and_keeps_groups_whole():
    groups = np.repeat(np.arange(20), 3)  # 20 polygons of 3 pixels
    classes = np.repeat([1] * 10 + [2] * 9 + [3], 3)
    v1 = split_samples(groups, classes, 0.3, seed=5)
    v2 = split_samples(groups, classes, 0.3, seed=5)
    assert np.array_equal(v1, v2)
    for g in range(20):
        assert len(set(v1[groups == g])) == 1  # a polygon is never split
    held = {c: len(set(groups[(classes == c) & v1])) for c in (1, 2, 3)}
    assert held == {1: 3, 2: 3, 3: 0}  # round(0.3 * 10), round(0.3 * 9) = 3; a single group trains
    assert not np.array_equal(v1, split_samples(groups, classes, 0.3, seed=6))


# ---------------------------------------------------------------- forest and prediction


def test_forest_predicts_separable_classes_in_chunks_and_marks_empty_pixels():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.1, (50, 2)), rng.normal(3, 0.1, (50, 2))]).astype(np.float32)
    y = np.repeat([1, 3], 50)
    model = train_random_forest(X, y, n_estimators=20, seed=1)
    data = np.zeros((2, *GRID.shape), np.float32)
    data[:, :, 5:] = 3.0
    data[:, 0, 0] = np.nan  # no clear observation at all
    data[0, 1, 1] = np.nan  # one feature missing: still classified
    feats = GRID.data_array(data).rename({"dim_0": "feature"})
    a = predict_map(model, feats, chunk_px=2).values
    b = predict_map(model, feats, chunk_px=64).values
    assert np.array_equal(a, b)
    assert a[0, 0] == 255 and a[1, 1] in (1, 3)
    assert (a[2:, :5] == 1).all() and (a[:, 5:] == 3).all()


def test_training_cap_and_seed_make_identical_forests():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = np.repeat([1, 2, 3], 100)
    m1 = train_random_forest(X, y, n_estimators=10, seed=3, max_samples_per_class=40)
    m2 = train_random_forest(X, y, n_estimators=10, seed=3, max_samples_per_class=40)
    assert np.array_equal(m1.predict(X), m2.predict(X))
    with pytest.raises(ValueError, match="at least two classes"):
        train_random_forest(X, np.ones(300), n_estimators=5, seed=0)


# ---------------------------------------------------------------------------- accuracy


def test_missing_class_is_reported_and_figures_use_the_classes_present():
    legend = {1: "a", 2: "b", 3: "c", 4: "d"}
    mapped = [1, 1, 1, 2, 2, 2, 2, 1, 255]
    reference = [1, 1, 2, 2, 2, 2, 1, 1, 2]
    area = pd.Series({1: 40.0, 2: 60.0, 3: 0.0, 4: 5.0})
    result, report = assess_landcover(mapped, reference, legend, mapped_area=area)
    assert report["classes_missing_from_validation"] == ["c", "d"]
    assert report["validation_samples_on_nodata"] == 1
    assert report["area_strata_without_samples_ha"] == {"d": 5.0}
    expected = assess([[3, 1], [1, 3]], [1, 2], mapped_area=[40.0, 60.0])
    assert result.labels == (1, 2)
    assert result.kappa == pytest.approx(expected.kappa) == pytest.approx(cohen_kappa_score(reference[:8], mapped[:8]))
    assert result.area_estimate.tolist() == pytest.approx(expected.area_estimate.tolist())
    table = confusion_table(result, legend)
    assert table.loc["a", "b"] == 1 and table.index.name == "map \\ reference"


def test_mapped_area_counts_pixels():
    lc = GRID.data_array(np.array([[1] * 10] * 3 + [[2] * 10] * 2 + [[255] * 10], dtype=np.uint8))
    assert mapped_area_ha(lc, [1, 2, 3], 100.0).tolist() == [0.3, 0.2, 0.0]


# ------------------------------------------------------------------------ real S2 patch

PATCH_LEGEND = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial surface"}


def classify_patch(patch, split: str):
    """The library's chain on the real patch: seasonal NDVI composites, polygon references,
    a seeded split, the forest, the map, the assessment."""
    from karstflow.composite import median_composite
    from karstflow.io import read_raster, read_vector
    from karstflow.terrain import slope_aspect

    ndvi = read_raster(patch / "ndvi.tif")
    stamps = pd.to_datetime(list(ndvi.attrs["long_name"]))
    ndvi = ndvi.rename(band="time").assign_coords(time=stamps)
    clear = read_raster(patch / "cloud_mask.tif", masked=False).rename(band="time").assign_coords(time=stamps) == 0
    # one composite per season of each year (Dec-Feb winter, ...): 11 periods over 2015-07..2017-12
    season = [
        f"{t.year + (t.month == 12)}-{['winter', 'spring', 'summer', 'autumn'][(t.month % 12) // 3]}" for t in stamps
    ]
    composites = {}
    for name in dict.fromkeys(season):
        sel = np.array([s == name for s in season])
        comp, _ = median_composite(ndvi.isel(time=sel), clear.isel(time=sel))
        composites[name] = (
            comp.expand_dims(band=["NDVI"]).rio.write_crs(ndvi.rio.crs).rio.write_transform(ndvi.rio.transform())
        )
    dem = read_raster(patch / "dem.tif")
    slope, _ = slope_aspect(dem)
    features = build_features(composites, indices=(), elevation=dem, slope=slope)
    reference = read_vector(patch / "lulc.gpkg")
    reference = reference[reference["LULC_ID"] > 0]
    samples = reference_samples(features, reference, "LULC_ID", PATCH_LEGEND, source="lulc.gpkg")
    groups = samples["group"] if split == "polygon" else np.arange(len(samples))
    val = split_samples(groups, samples["class_code"], 0.3, seed=42)
    names = [str(f) for f in features["feature"].values]
    model = train_random_forest(
        samples.loc[~val, names].to_numpy(),
        samples.loc[~val, "class_code"].to_numpy(),
        n_estimators=100,
        seed=42,
        n_jobs=2,
    )
    landcover = predict_map(model, features)
    mapped = landcover.values[samples.loc[val, "row"], samples.loc[val, "col"]]
    reference_codes = samples.loc[val, "class_code"].to_numpy()
    area = mapped_area_ha(landcover, list(PATCH_LEGEND), 99.9)
    result, report = assess_landcover(mapped, reference_codes, PATCH_LEGEND, mapped_area=area)
    return result, report, mapped, reference_codes, features


@pytest.mark.parametrize("split", ["polygon", "pixel"])
def test_real_patch_classified_from_its_ndvi_series(eolearn_patch, split):
    result, report, mapped, reference, features = classify_patch(eolearn_patch, split)
    print(f"\nreal patch, {split}-level split: {report['validation_samples']} validation pixels")
    print(confusion_table(result, PATCH_LEGEND).to_string())
    print(
        f"overall accuracy {result.overall_accuracy:.3f}, Kappa {result.kappa:.3f} "
        f"(95% CI {result.kappa_ci[0]:.3f}-{result.kappa_ci[1]:.3f}), quantity {result.quantity_disagreement:.3f}, "
        f"allocation {result.allocation_disagreement:.3f}, missing {report['classes_missing_from_validation']}"
    )
    assert "NDVI_amplitude" in features["feature"].values and features.sizes["feature"] == 11 + 4 + 2
    # the figures restate the validation pairs (independent Kappa from scikit-learn)
    assert result.kappa == pytest.approx(cohen_kappa_score(reference, mapped))
    assert np.array_equal(result.matrix, confusion_matrix(mapped, reference, list(result.labels)))
    # better than chance with 95 % confidence, and than always answering "forest"
    majority = float(np.mean(reference == 2))
    assert result.kappa_ci[0] > 0
    if split == "pixel":
        # neighbouring pixels of one parcel train and validate: close to the study's level
        assert result.kappa > 0.75 and result.overall_accuracy > majority
