"""Parcel checks, the abandonment decision from exact class fractions, and the rates."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely

from karstflow.abandonment import ParcelError, abandonment_summary, class_column, parcel_abandonment, prepare_parcels
from karstflow.grid import RegionGrid

GRID = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 100, 100))  # 10 x 10 px
LEGEND = {1: "cultivated", 2: "forested land", 6: "grassland", 7: "water"}


def landcover():
    """Columns 0-4 cultivated, 5-9 forested land; row 9 (y 0-10) of columns 0-1 nodata."""
    lc = np.ones(GRID.shape, np.uint8)
    lc[:, 5:] = 2
    lc[9, :2] = 255
    return GRID.data_array(lc).rio.write_nodata(255)


def parcels(geoms, **columns):
    return gpd.GeoDataFrame({"parcel_id": np.arange(1, len(geoms) + 1), **columns}, geometry=geoms, crs=GRID.crs)


def judge(gdf, **kw):
    settings = dict(abandonment_codes=[2, 6], threshold=0.5, min_classified_fraction=0.5)
    settings.update(kw)
    return parcel_abandonment(gdf, landcover(), LEGEND, **settings)


def test_exact_fractions_decide_not_the_centroid():
    gdf = parcels(
        [
            shapely.box(30, 50, 70, 70),  # half cultivated, half forest: 0.5 does not exceed 0.5
            shapely.box(44, 50, 74, 70),  # 6/30 cultivated, 24/30 forest -> abandoned
            # an L of cultivated land (200 + 160 m2) and a forest strip (560 m2): its centroid
            # (39.2, 46.2) lies on a cultivated pixel, but 560 / 920 = 61 % of it is forest
            shapely.union_all([shapely.box(0, 50, 10, 70), shapely.box(10, 66, 50, 70), shapely.box(50, 0, 58, 70)]),
        ]
    )
    out = judge(gdf)
    assert out[class_column("forested land")].tolist() == pytest.approx([0.5, 0.8, 560 / 920])
    assert out["abandonment_class_fraction"].tolist() == pytest.approx([0.5, 0.8, 560 / 920])
    assert out["abandoned"].tolist() == [0, 1, 1]
    assert out["dominant_class"].tolist() == [1, 2, 2]
    c = shapely.centroid(gdf.geometry.iloc[2])
    assert (round(c.x, 1), round(c.y, 1)) == (39.2, 46.2)  # column 3: cultivated land


def test_parcels_mostly_on_nodata_are_not_evaluated():
    gdf = parcels([shapely.box(0, 0, 20, 12), shapely.box(0, 0, 20, 40)])
    out = judge(gdf)
    assert out["classified_fraction"].tolist() == pytest.approx([40 / 240, 600 / 800])
    assert out["abandoned"].isna().tolist() == [True, False]
    s = abandonment_summary(out)
    assert s["not_evaluated_parcels"] == 1 and s["evaluated_parcels"] == 1


def test_rates_by_count_area_and_year_by_hand():
    gdf = parcels(
        [
            shapely.box(0, 20, 40, 40),
            shapely.box(60, 20, 90, 40),
            shapely.box(60, 50, 100, 100),
            shapely.box(0, 50, 20, 60),
        ],
        reclaim_year=[2012, 2012, 2015, 2015],
    )
    out = judge(gdf)
    assert out["abandoned"].tolist() == [0, 1, 1, 0]
    s = abandonment_summary(out, year_column="reclaim_year")
    # areas 0.08, 0.06, 0.20, 0.02 ha; abandoned the second and third
    assert s["parcels"] == 4 and s["parcel_area_ha"] == pytest.approx(0.36)
    assert s["abandoned_parcels"] == 2 and s["abandoned_area_ha"] == pytest.approx(0.26)
    assert s["abandonment_rate_by_count"] == 0.5
    assert s["abandonment_rate_by_area"] == pytest.approx(0.26 / 0.36)
    assert s["by_reclaim_year"]["2012"]["abandonment_rate_by_area"] == pytest.approx(0.06 / 0.14)
    assert s["by_reclaim_year"]["2015"]["abandonment_rate_by_count"] == 0.5
    assert "by_reclaim_year" not in abandonment_summary(out.drop(columns="reclaim_year"), year_column="reclaim_year")


def test_abandonment_codes_must_be_in_the_legend():
    with pytest.raises(ValueError, match=r"abandonment.classes: code\(s\) \[4\]"):
        judge(parcels([shapely.box(0, 20, 40, 40)]), abandonment_codes=[2, 4])


# ------------------------------------------------------------------------ bad parcels

BOUNDS = GRID.bounds


def test_invalid_geometries_are_repaired_and_reported():
    bowtie = shapely.Polygon([(10, 10), (50, 50), (50, 10), (10, 50)])
    gdf = parcels([shapely.box(0, 0, 30, 30), bowtie])
    out, report = prepare_parcels(gdf, BOUNDS, GRID.crs, source="parcels.gpkg")
    assert report["repaired_ids"] == [2]
    assert out.geometry.is_valid.all() and out.geometry.iloc[1].area == pytest.approx(800.0)


def test_empty_outside_and_duplicated_parcels_are_rejected_with_ids():
    gdf = parcels([shapely.box(0, 0, 30, 30), shapely.Polygon(), shapely.box(0, 0, 5, 5), None])
    with pytest.raises(ParcelError, match=r"parcels.gpkg: 2 parcel\(s\) have an empty geometry: ids 2, 4"):
        prepare_parcels(gdf, BOUNDS, GRID.crs, source="parcels.gpkg")
    far = parcels([shapely.box(0, 0, 30, 30), shapely.box(500, 500, 530, 530), shapely.box(90, 90, 130, 130)])
    with pytest.raises(ParcelError, match=r"1 parcel\(s\) lie wholly outside the region.*ids 2"):
        prepare_parcels(far, BOUNDS, GRID.crs, source="parcels.gpkg")
    _, report = prepare_parcels(far.iloc[[0, 2]], BOUNDS, GRID.crs, source="parcels.gpkg")
    assert report["partly_outside_ids"] == [3]
    dup = parcels([shapely.box(0, 0, 30, 30)] * 2)
    dup["parcel_id"] = [7, 7]
    with pytest.raises(ParcelError, match="duplicated: 7"):
        prepare_parcels(dup, BOUNDS, GRID.crs, source="parcels.gpkg")
    line = parcels([shapely.LineString([(0, 0), (10, 10)])])
    with pytest.raises(ParcelError, match="must be polygons; ids 1"):
        prepare_parcels(line, BOUNDS, GRID.crs, source="parcels.gpkg")
    zero = parcels([shapely.Polygon([(10, 10), (20, 20), (30, 30), (10, 10)])])
    with pytest.raises(ParcelError, match=r"no area once repaired: ids 1"):
        prepare_parcels(zero, BOUNDS, GRID.crs, source="parcels.gpkg")


def test_parcels_in_another_crs_are_reprojected():
    gdf = parcels([shapely.box(10, 10, 40, 40)]).to_crs("EPSG:4326")
    out, _ = prepare_parcels(gdf, BOUNDS, GRID.crs)
    assert out.crs == GRID.crs and out.geometry.iloc[0].area == pytest.approx(900.0, rel=1e-6)
