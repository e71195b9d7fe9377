"""Class fractions of polygons: exact area weights against shapely, centre counts against rasterstats."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely

from karstflow.grid import RegionGrid
from karstflow.zonal import class_fractions, coverage_fractions

GRID = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 200, 150))  # 20 x 15 px


def raster(seed: int = 1):
    rng = np.random.default_rng(seed)
    lc = rng.integers(1, 5, GRID.shape).astype(np.uint8)  # codes 1..4, 4 is "other" below
    lc[0, 0] = lc[3, 4] = 255
    return lc, GRID.data_array(lc).rio.write_nodata(255)


POLYGONS = [
    shapely.Polygon([(3, 4), (97, 12), (120, 140), (60, 90), (10, 149)]),  # concave
    shapely.Polygon(
        [(20, 20), (180, 20), (180, 130), (20, 130)], [[(50, 50), (50, 100), (100, 100), (100, 50)]]
    ),  # hole
    shapely.Polygon([(-30, -20), (60, -10), (55, 60), (-5, 170)]),  # partly beyond the raster
    shapely.MultiPolygon([shapely.box(1, 1, 9, 9), shapely.box(101.3, 55.5, 133.3, 77.7)]),
    shapely.Polygon([(40.5, 30.5), (40.5, 72.2), (12.25, 72.2)][::-1]),  # clockwise
]


def shapely_reference(poly, lc):
    """Per class: sum over pixels of intersection area / pixel area (independent of our kernel)."""
    out = {"1": 0.0, "2": 0.0, "3": 0.0, "other": 0.0, "nodata": 0.0}
    for i in range(GRID.height):
        for j in range(GRID.width):
            a = (
                shapely.intersection(poly, shapely.box(j * 10, 150 - (i + 1) * 10, (j + 1) * 10, 150 - i * 10)).area
                / 100
            )
            if a == 0:
                continue
            v = int(lc[i, j])
            out["nodata" if v == 255 else "other" if v == 4 else str(v)] += a
    out["outside"] = poly.area / 100 - sum(out.values())
    return out


@pytest.mark.parametrize("k", range(len(POLYGONS)))
def test_exact_weights_equal_shapely_intersections(k):
    lc, da = raster()
    got = coverage_fractions(gpd.GeoSeries([POLYGONS[k]], crs=GRID.crs), da, [1, 2, 3]).iloc[0]
    ref = shapely_reference(POLYGONS[k], lc)
    for name, col in (
        ("1", "frac_1"),
        ("2", "frac_2"),
        ("3", "frac_3"),
        ("other", "other"),
        ("nodata", "nodata"),
        ("outside", "outside"),
    ):
        assert got[col] == pytest.approx(ref[name], abs=1e-9), name


def test_fractions_are_shares_of_the_classified_area():
    lc, da = raster()
    gdf = gpd.GeoDataFrame({"pid": [10, 11]}, geometry=[POLYGONS[2], POLYGONS[1]], index=[5, 9], crs=GRID.crs)
    fr = class_fractions(gdf, da, [1, 2, 3])
    assert list(fr.index) == [5, 9]
    ref = shapely_reference(POLYGONS[2], lc)
    valid = ref["1"] + ref["2"] + ref["3"] + ref["other"]
    assert fr.loc[5, "frac_2"] == pytest.approx(ref["2"] / valid)
    assert fr.loc[5, "classified_fraction"] == pytest.approx(valid / (POLYGONS[2].area / 100))
    assert fr[["frac_1", "frac_2", "frac_3", "frac_other"]].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_pixel_aligned_polygons_give_the_same_exact_and_centre_fractions():
    _, da = raster(3)
    boxes = gpd.GeoSeries([shapely.box(10, 20, 60, 90), shapely.box(100, 0, 200, 40)], crs=GRID.crs)
    exact = class_fractions(boxes, da, [1, 2, 3])
    centre = class_fractions(boxes, da, [1, 2, 3], method="centre")
    assert np.allclose(exact.to_numpy(), centre.to_numpy())


def test_centre_counts_equal_rasterstats_categorical():
    rasterstats = pytest.importorskip("rasterstats")
    lc, da = raster(2)
    geoms = gpd.GeoSeries([p for p in POLYGONS if p.bounds[0] >= 0 and p.bounds[1] >= 0], crs=GRID.crs)
    ours = coverage_fractions(geoms, da, [1, 2, 3, 4], method="centre")
    stats = rasterstats.zonal_stats(list(geoms), lc, affine=GRID.transform, nodata=255, categorical=True)
    for k, s in enumerate(stats):
        for code in (1, 2, 3, 4):
            assert ours.iloc[k][f"frac_{code}"] == s.get(code, 0)


def test_empty_geometry_gives_nan_and_bad_types_are_named():
    _, da = raster()
    fr = class_fractions(gpd.GeoSeries([shapely.Polygon(), POLYGONS[0]], crs=GRID.crs), da, [1, 2])
    assert np.isnan(fr.iloc[0]["frac_1"]) and np.isnan(fr.iloc[0]["classified_fraction"])
    assert not np.isnan(fr.iloc[1]["frac_1"])
    with pytest.raises(ValueError, match=r"Polygon or MultiPolygon.*index \[1\]"):
        class_fractions(gpd.GeoSeries([POLYGONS[0], shapely.Point(5, 5)], crs=GRID.crs), da, [1])


def test_polygons_in_another_crs_are_reprojected():
    _, da = raster()
    poly = gpd.GeoSeries([shapely.box(20, 20, 130, 110)], crs=GRID.crs)
    same = class_fractions(poly, da, [1, 2, 3])
    moved = class_fractions(poly.to_crs("EPSG:4326"), da, [1, 2, 3])
    assert np.allclose(same.to_numpy(), moved.to_numpy(), atol=1e-5)


def test_exact_fractions_equal_exactextract():
    pytest.importorskip("exactextract")
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource

    lc, da = raster(4)
    geoms = gpd.GeoDataFrame(geometry=[p for p in POLYGONS if p.bounds[0] >= 0 and p.bounds[1] >= 0], crs=GRID.crs)
    ours = class_fractions(geoms, da, [1, 2, 3, 4])
    src = NumPyRasterSource(lc, xmin=0, ymin=0, xmax=200, ymax=150, nodata=255)
    theirs = exact_extract(src, geoms, ["unique", "frac"], output="pandas")
    for k in range(len(geoms)):
        got = dict(zip(theirs["unique"][k], theirs["frac"][k], strict=True))
        for code in (1, 2, 3, 4):
            assert ours.iloc[k][f"frac_{code}"] == pytest.approx(got.get(code, 0.0), abs=1e-6)
