"""Region grid snapping and reprojection; summary flattening; atomic writers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from karstflow.grid import RegionGrid, demo_bounds, reproject_to_grid
from karstflow.io import read_raster, write_raster
from karstflow.summary import region_summary, summary_table


def test_bounds_snap_outward_to_resolution():
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (500003.2, 2900000.0, 501996.0, 2901500.1))
    assert grid.bounds == (500000.0, 2900000.0, 502000.0, 2901510.0)
    assert grid.shape == (151, 200)
    assert grid.transform.c == 500000.0 and grid.transform.f == 2901510.0 and grid.transform.e == -10


def test_demo_bounds_hang_from_origin():
    assert demo_bounds((500000, 2904000), 400, 10) == (500000.0, 2900000.0, 504000.0, 2904000.0)


def test_invalid_grid_is_rejected():
    with pytest.raises(ValueError, match="resolution"):
        RegionGrid("EPSG:32650", 0.0, (0, 0, 10, 10))
    with pytest.raises(ValueError, match="xmax > xmin"):
        RegionGrid("EPSG:32650", 10.0, (10, 0, 0, 10))


def test_reprojection_to_grid_roundtrip(tmp_path):
    utm = RegionGrid.from_bounds("EPSG:32650", 30, (500000, 2900000, 503000, 2903000))
    yy, xx = np.meshgrid(utm.coords()["y"], utm.coords()["x"], indexing="ij")
    plane = utm.data_array(((xx - 500000) * 0.01 + (yy - 2900000) * 0.02).astype("float32"))
    write_raster(plane, tmp_path / "plane.tif")
    back = read_raster(tmp_path / "plane.tif")
    assert utm.matches(back)
    # Into geographic coordinates and back: a linear field survives bilinear resampling.
    from pyproj import Transformer

    to_geo = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    lon0, lat0 = to_geo.transform(499000, 2899000)
    lon1, lat1 = to_geo.transform(504000, 2904000)
    geo = RegionGrid.from_bounds("EPSG:4326", 0.0002, (lon0, lat0, lon1, lat1))
    on_geo = reproject_to_grid(back, geo, source="plane")
    assert geo.matches(on_geo)
    again = reproject_to_grid(on_geo, utm, source="plane-geo")
    inner = again.values[5:-5, 5:-5]
    expected = plane.values[5:-5, 5:-5]
    ok = np.isfinite(inner)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(inner[ok], expected[ok], atol=0.05)


def test_summary_table_flattens_sections_one_row_per_region():
    a = region_summary("b-region", {"crs": "EPSG:1"}, {"terrain": {"slope_mean_deg": 3.5, "classes": [1, 2]}})
    b = region_summary("a-region", {"crs": "EPSG:2"}, {"terrain": {"slope_mean_deg": 7.0, "classes": [3]}})
    table = summary_table([a, b])
    assert list(table["region"]) == ["a-region", "b-region"]
    assert table.loc[0, "terrain.slope_mean_deg"] == 7.0
    assert table.loc[1, "terrain.classes"] == "1;2"
    assert isinstance(table, pd.DataFrame)


def test_failed_write_leaves_nothing(tmp_path):
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 100, 100))
    bad = grid.data_array(np.zeros(grid.shape, dtype="float32"))
    target = tmp_path / "out.tif"
    with pytest.raises(TypeError, match="not-a-dtype"):
        write_raster(bad, target, dtype="not-a-dtype")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
