"""Tests of karstflow.terrain: slope/aspect (Horn, as gdaldem) and the aspect classes."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rioxarray
import xarray as xr
from scipy import ndimage

from karstflow import terrain
from karstflow.terrain import (
    ASPECT_CLASSES,
    FLAT,
    SEMI_SHADY,
    SEMI_SUNNY,
    SHADY,
    SUNNY,
    aspect_class,
    slope_aspect,
    validate_dem,
)

X0, Y0 = 500_000.0, 3_000_000.0


def make_dem(
    z: np.ndarray,
    *,
    res_x: float = 10.0,
    res_y: float = -10.0,
    x0: float = X0,
    y0: float = Y0,
    crs: str | None = "EPSG:32633",
    name: str | None = "dem",
) -> xr.DataArray:
    """A (y, x) DataArray whose pixel (0, 0) has its outer corner at (x0, y0)."""
    ny, nx = z.shape
    x = x0 + (np.arange(nx) + 0.5) * res_x
    y = y0 + (np.arange(ny) + 0.5) * res_y
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}, name=name)
    return dem.rio.write_crs(crs) if crs else dem


def grid_en(dem: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Easting and northing (relative to X0, Y0) of every pixel centre."""
    e, n = np.meshgrid(dem.x.values - X0, dem.y.values - Y0)
    return e, n


def plane(a: float, b: float, shape=(12, 15), **kw) -> xr.DataArray:
    """z = a * E + b * N (+ 700 m), so dz/dE = a and dz/dN = b."""
    dem = make_dem(np.zeros(shape), **kw)
    e, n = grid_en(dem)
    return dem.copy(data=700.0 + a * e + b * n)


def circ_diff(a1, a2) -> np.ndarray:
    """Absolute angular difference in degrees, in [0, 180]."""
    return np.abs((np.asarray(a1, float) - np.asarray(a2, float) + 180.0) % 360.0 - 180.0)


# ---------------------------------------------------------------------------------------
# analytic surfaces
# ---------------------------------------------------------------------------------------

# (dz/dE, dz/dN) -> expected aspect: the direction the surface goes down to
PLANES = {
    "north-facing": (0.0, -0.2, 0.0),
    "east-facing": (-0.3, 0.0, 90.0),
    "south-facing": (0.0, 0.25, 180.0),
    "west-facing": (0.15, 0.0, 270.0),
    "NE-facing": (-0.1, -0.1, 45.0),
    "SW-facing steep": (0.8, 0.8, 225.0),
    "generic": (0.37, -0.21, float(np.degrees(np.arctan2(-0.37, 0.21)) % 360)),
}
GRIDS = {
    "10m": dict(res_x=10.0, res_y=-10.0),
    "10x30m": dict(res_x=10.0, res_y=-30.0),
    "20x5m": dict(res_x=20.0, res_y=-5.0),
    "south-up": dict(res_x=10.0, res_y=10.0),
}


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("case", PLANES)
def test_tilted_plane_everywhere_including_edges(case, grid):
    a, b, expected_aspect = PLANES[case]
    slope, aspect = slope_aspect(plane(a, b, **GRIDS[grid]))
    expected_slope = np.degrees(np.arctan(np.hypot(a, b)))
    # linear extrapolation at the raster edge is exact for a plane, corners included
    np.testing.assert_allclose(slope.values, expected_slope, atol=1e-4)
    assert circ_diff(aspect.values, expected_aspect).max() < 1e-4
    assert ((aspect.values >= 0) & (aspect.values < 360)).all()


def test_flat_plane_is_zero_slope_and_aspect_minus_one():
    slope, aspect = slope_aspect(make_dem(np.full((6, 7), 123.0, dtype="float32")))
    assert (slope.values == 0).all()
    assert (aspect.values == -1).all()


def test_paraboloid_gives_radial_aspect_and_exact_interior_slope():
    # Horn's differences are exact for quadratics, so the interior must match analytically;
    # non-square pixels make a swapped x/y pixel size visible.
    k = 0.001
    dem = make_dem(np.zeros((41, 31)), res_x=10.0, res_y=-20.0)
    e, n = grid_en(dem)
    ec, nc = e[20, 15], n[20, 15]
    dem = dem.copy(data=900.0 - k * ((e - ec) ** 2 + (n - nc) ** 2))
    slope, aspect = slope_aspect(dem)
    r = np.hypot(e - ec, n - nc)
    inner = (slice(1, -1), slice(1, -1))
    exp_slope = np.degrees(np.arctan(2 * k * r))
    np.testing.assert_allclose(slope.values[inner], exp_slope[inner], atol=1e-4)
    exp_aspect = np.degrees(np.arctan2(e - ec, n - nc)) % 360  # outward = downhill
    off_top = r[inner] > 0
    assert circ_diff(aspect.values[inner][off_top], exp_aspect[inner][off_top]).max() < 1e-3
    assert aspect.values[20, 15] == -1 and slope.values[20, 15] == 0
    # aspect spans all directions, with due north straight above the summit
    assert circ_diff(aspect.values[5, 15], 0.0) < 1e-4
    assert circ_diff(aspect.values[20, 25], 90.0) < 1e-4
    assert circ_diff(aspect.values[35, 15], 180.0) < 1e-4
    assert circ_diff(aspect.values[20, 5], 270.0) < 1e-4


def test_outputs_keep_grid_crs_and_attrs():
    dem = plane(0.1, 0.2, res_x=10, res_y=-30)
    slope, aspect = slope_aspect(dem)
    for out, name in ((slope, "slope"), (aspect, "aspect")):
        assert out.dtype == np.float32
        assert out.name == name
        assert out.dims == ("y", "x")
        assert out.attrs["units"] == "degree" and out.attrs["long_name"]
        assert out.rio.crs == dem.rio.crs
        assert out.rio.transform() == dem.rio.transform()
        np.testing.assert_array_equal(out.x, dem.x)
        np.testing.assert_array_equal(out.y, dem.y)
        assert np.isnan(out.rio.nodata)


def test_linear_units_of_projected_crs_are_converted_to_metres():
    # EPSG:2249 is in US survey feet: 10 ft pixels are 3.048 m
    ft = 0.30480060960121924
    dem = plane(0.0, 0.0, res_x=10.0, res_y=-10.0, crs="EPSG:2249")
    dem = dem.copy(data=np.tile(np.arange(15) * 10.0 * ft * 0.5, (12, 1)))  # 0.5 m/m east
    slope, aspect = slope_aspect(dem)
    np.testing.assert_allclose(slope.values, np.degrees(np.arctan(0.5)), atol=1e-4)
    assert circ_diff(aspect.values, 270.0).max() < 1e-4


# ---------------------------------------------------------------------------------------
# independent implementations on the real DEM
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_dem(request) -> xr.DataArray:
    patch: Path = request.getfixturevalue("eolearn_patch")
    with rioxarray.open_rasterio(patch / "dem.tif", masked=True) as src:
        dem = src.squeeze("band", drop=True).load()
    dem.name = "dem"
    return dem


def horn_reference(z: np.ndarray, res_x: float, res_y: float) -> tuple[np.ndarray, np.ndarray]:
    """gdaldem's Horn slope/aspect written out with explicit 3x3 kernels.

    Edges: the raster is padded by odd reflection (2*edge - inner), i.e. linear
    extrapolation. Aspect uses gdaldem's atan2(dy, -dx) -> azimuth recipe, with the
    differences divided by the pixel size (gdaldem leaves them raw).
    """
    zp = np.pad(z.astype(np.float64), 1, mode="reflect", reflect_type="odd")
    k_right_minus_left = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float) / 8
    k_bottom_minus_top = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float) / 8
    dx = ndimage.correlate(zp, k_right_minus_left)[1:-1, 1:-1] / abs(res_x)
    dy = ndimage.correlate(zp, k_bottom_minus_top)[1:-1, 1:-1] / abs(res_y)
    slope = np.degrees(np.arctan(np.sqrt(dx * dx + dy * dy)))
    asp = np.degrees(np.arctan2(dy, -dx))
    asp = np.where(asp > 90.0, 450.0 - asp, 90.0 - asp)
    asp = np.where((dx == 0) & (dy == 0), -1.0, asp % 360.0)
    return slope, asp


def test_real_dem_matches_xrspatial(real_dem):
    xrspatial = pytest.importorskip("xrspatial")
    slope, aspect = slope_aspect(real_dem)
    xs = xrspatial.slope(real_dem).values
    xa = xrspatial.aspect(real_dem).values
    inner = (slice(1, -1), slice(1, -1))
    # xrspatial leaves the outermost ring NaN; we compute it
    assert np.isnan(xs[0]).all() and np.isfinite(slope.values).all()
    slope_diff = np.abs(slope.values[inner] - xs[inner]).max()
    assert slope_diff < 1e-3, slope_diff
    # xrspatial's aspect has gdaldem's convention (downslope, clockwise from north, -1
    # flat) but ignores the pixel size; this patch is 9.995 x 9.997 m so nearly square.
    steep = slope.values[inner] > 0.5
    aspect_diff = circ_diff(aspect.values[inner][steep], xa[inner][steep]).max()
    assert aspect_diff < 0.05, aspect_diff
    assert steep.mean() > 0.5  # most of the patch is sloped, so the check has teeth


def test_real_dem_square_pixels_aspect_matches_xrspatial_closely(real_dem):
    xrspatial = pytest.importorskip("xrspatial")
    dem = make_dem(real_dem.values, res_x=10.0, res_y=-10.0)  # same heights, square 10 m
    slope, aspect = slope_aspect(dem)
    xa = xrspatial.aspect(dem).values
    inner = (slice(1, -1), slice(1, -1))
    steep = slope.values[inner] > 0.5
    assert circ_diff(aspect.values[inner][steep], xa[inner][steep]).max() < 1e-3


def test_real_dem_matches_explicit_horn_kernel_everywhere(real_dem):
    res_x, res_y = real_dem.rio.resolution()
    ref_slope, ref_aspect = horn_reference(real_dem.values, res_x, res_y)
    slope, aspect = slope_aspect(real_dem)
    np.testing.assert_allclose(slope.values, ref_slope, atol=1e-4)
    sloped = ref_slope > 0.5
    assert circ_diff(aspect.values[sloped], ref_aspect[sloped]).max() < 1e-3
    np.testing.assert_array_equal(aspect.values == -1, ref_aspect == -1)


def test_real_dem_dask_chunks_identical_and_lazy(real_dem):
    dem = real_dem.copy()
    dem.values[40:44, 38:43] = np.nan  # a hole across a chunk boundary
    dem.values[0, 80:83] = np.nan  # and one at the edge
    slope, aspect = slope_aspect(dem)
    lazy_slope, lazy_aspect = slope_aspect(dem.chunk({"y": 37, "x": 41}))
    assert isinstance(lazy_slope.data, da.Array) and isinstance(lazy_aspect.data, da.Array)
    assert lazy_slope.chunks == ((37, 37, 27), (41, 41, 18))
    np.testing.assert_array_equal(lazy_slope.values, slope.values)
    np.testing.assert_array_equal(lazy_aspect.values, aspect.values)
    assert lazy_slope.dtype == np.float32


# ---------------------------------------------------------------------------------------
# geographic CRS
# ---------------------------------------------------------------------------------------


def test_metres_per_degree_is_wgs84_ellipsoidal():
    pyproj = pytest.importorskip("pyproj")
    geod = pyproj.Geod(ellps="WGS84")
    lat = np.array([0.0, 23.5, 45.0, 60.0])
    m_lat, m_lon = terrain._metres_per_degree(lat)
    h = 1e-4
    for i, phi in enumerate(lat):
        _, _, d_lat = geod.inv(100.0, phi - h / 2, 100.0, phi + h / 2)
        _, _, d_lon = geod.inv(100.0 - h / 2, phi, 100.0 + h / 2, phi)
        np.testing.assert_allclose(m_lat[i], d_lat / h, rtol=1e-6)
        np.testing.assert_allclose(m_lon[i], d_lon / h, rtol=1e-6)
    assert abs(m_lat[2] - 111_131.78) < 0.5 and abs(m_lon[2] - 78_846.8) < 0.5


def test_geographic_plane_at_45_degrees():
    pyproj = pytest.importorskip("pyproj")
    a, b = 0.12, -0.3  # dz/dE, dz/dN in m/m
    res = 1.0 / 3600.0  # 1 arc-second, like ASTER GDEM
    lon0, lat0 = 110.0, 45.02
    dem = make_dem(np.zeros((60, 60)), res_x=res, res_y=-res, x0=lon0, y0=lat0, crs="EPSG:4326")
    lon, lat = np.meshgrid(dem.x.values, dem.y.values)
    # ground metres from a transverse Mercator centred on the patch (true north = grid north)
    tm = pyproj.Transformer.from_crs(
        "EPSG:4326",
        f"+proj=tmerc +lat_0={lat.mean()} +lon_0={lon.mean()} +ellps=WGS84 +units=m",
        always_xy=True,
    )
    e, n = tm.transform(lon, lat)
    dem = dem.copy(data=500.0 + a * e + b * n)
    slope, aspect = slope_aspect(dem)
    exp_slope = np.degrees(np.arctan(np.hypot(a, b)))
    exp_aspect = np.degrees(np.arctan2(-a, -b)) % 360
    assert np.abs(slope.values - exp_slope).max() < 1e-3
    assert circ_diff(aspect.values, exp_aspect).max() < 0.02
    assert slope.rio.crs == dem.rio.crs

    # the same numbers read as metres would be nearly vertical, and a missing cos(lat)
    # on the longitude step would give a clearly different slope and aspect
    as_metres, _ = slope_aspect(dem.rio.write_crs("EPSG:32649"))
    assert as_metres.values.min() > 89.0
    dz_de_no_cos = a * np.cos(np.radians(45.0))
    wrong_slope = np.degrees(np.arctan(np.hypot(dz_de_no_cos, b)))
    wrong_aspect = np.degrees(np.arctan2(-dz_de_no_cos, -b)) % 360
    assert abs(wrong_slope - exp_slope) > 0.5 and circ_diff(wrong_aspect, exp_aspect) > 5


# ---------------------------------------------------------------------------------------
# nodata
# ---------------------------------------------------------------------------------------


def test_nan_holes_stay_local():
    a = -0.2  # east-facing, b = 0
    dem = plane(a, 0.0, shape=(20, 20))
    dem.values[10, 10] = np.nan
    dem.values[0:2, 0:3] = np.nan  # at the corner
    slope, aspect = slope_aspect(dem)
    hole = np.isnan(dem.values)
    np.testing.assert_array_equal(np.isnan(slope.values), hole)
    np.testing.assert_array_equal(np.isnan(aspect.values), hole)
    # away from holes the plane is exact
    near = ndimage.binary_dilation(hole, np.ones((3, 3), bool))
    exp = np.degrees(np.arctan(abs(a)))
    np.testing.assert_allclose(slope.values[~near], exp, atol=1e-4)
    # gdaldem -compute_edges puts the centre value in for the missing east neighbour:
    # the east-west difference becomes 6/8 of the true one
    np.testing.assert_allclose(slope.values[10, 9], np.degrees(np.arctan(0.75 * abs(a))), atol=1e-4)
    assert circ_diff(aspect.values[10, 9], 90.0) < 1e-4
    assert np.isfinite(slope.values[near & ~hole]).all()


def test_unmasked_fill_value_is_honoured():
    z = np.round(plane(0.3, -0.1, shape=(10, 12)).values).astype("int16")
    z[4, 5] = -9999
    raw = make_dem(z).rio.write_nodata(-9999, encoded=False)
    masked = make_dem(np.where(z == -9999, np.nan, z.astype("float64")))
    s_raw, a_raw = slope_aspect(raw)
    s_ref, a_ref = slope_aspect(masked)
    assert np.isnan(s_raw.values[4, 5]) and np.isfinite(s_raw.values[4, 4])
    np.testing.assert_array_equal(s_raw.values, s_ref.values)
    np.testing.assert_array_equal(a_raw.values, a_ref.values)


def test_all_nodata_dem_raises_naming_the_source():
    with pytest.raises(ValueError, match=r"my_dem: DEM has no valid pixels \(all 12 are nodata\)"):
        slope_aspect(make_dem(np.full((3, 4), np.nan), name="my_dem"))
    with pytest.raises(ValueError, match="^DEM: DEM has no valid"):
        slope_aspect(make_dem(np.full((3, 4), np.nan), name=None))
    filled = make_dem(np.full((2, 3), -9999, dtype="int16")).rio.write_nodata(-9999)
    with pytest.raises(ValueError, match=r"resources/r1/dem\.tif: .*all 6 are nodata"):
        validate_dem(filled, "resources/r1/dem.tif")
    validate_dem(make_dem(np.array([[np.nan, 1.0]])), "ok")  # one valid pixel is enough


def test_bad_input_fails_early():
    with pytest.raises(ValueError, match="no CRS"):
        slope_aspect(make_dem(np.ones((3, 3)), crs=None))
    with pytest.raises(ValueError, match="2-D"):
        slope_aspect(make_dem(np.ones((3, 3))).expand_dims(band=[1]))


# ---------------------------------------------------------------------------------------
# aspect classes
# ---------------------------------------------------------------------------------------


def test_aspect_class_boundaries():
    cases = [  # (aspect, slope, expected)
        (0.0, 10.0, SHADY),
        (44.9, 10.0, SHADY),
        (45.0, 10.0, SEMI_SHADY),
        (134.9, 10.0, SEMI_SHADY),
        (135.0, 10.0, SUNNY),
        (224.9, 10.0, SUNNY),
        (225.0, 10.0, SEMI_SUNNY),
        (314.9, 10.0, SEMI_SUNNY),
        (315.0, 10.0, SHADY),
        (360.0, 10.0, SHADY),
        (-1.0, 10.0, FLAT),
        (180.0, 1.99, FLAT),  # slope below flat_max
        (180.0, 2.0, SUNNY),  # flat is strictly below flat_max
        (np.nan, 10.0, 255),
        (180.0, np.nan, 255),
        (-1.0, np.nan, 255),
    ]
    a = make_dem(np.array([[c[0] for c in cases]], dtype="float32"), name="aspect")
    s = make_dem(np.array([[c[1] for c in cases]], dtype="float32"), name="slope")
    out = aspect_class(a, s, flat_max_deg=2.0)
    assert out.dtype == np.uint8
    assert out.values[0].tolist() == [c[2] for c in cases]
    assert out.rio.nodata == 255 and out.attrs["_FillValue"] == 255
    assert out.rio.crs == a.rio.crs


def test_aspect_class_legend_and_codes():
    assert ASPECT_CLASSES == {0: "flat", 1: "shady", 2: "semi-shady", 3: "semi-sunny", 4: "sunny"}
    assert (FLAT, SHADY, SEMI_SHADY, SEMI_SUNNY, SUNNY) == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="flat_max_deg"):
        aspect_class(make_dem(np.zeros((1, 1))), make_dem(np.zeros((1, 1))), -1.0)


def test_aspect_class_is_lazy_on_dask_and_matches_numpy():
    dem = make_dem(np.zeros((30, 30)))
    e, n = grid_en(dem)
    dem = dem.copy(data=-((e - 150) ** 2 + (n + 150) ** 2) / 500.0)
    dem.values[3, 3] = np.nan
    slope, aspect = slope_aspect(dem)
    eager = aspect_class(aspect, slope, 2.0)
    ls, la = slope_aspect(dem.chunk(11))
    lazy = aspect_class(la, ls, 2.0)
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert set(np.unique(eager.values)) == {0, 1, 2, 3, 4, 255}


def test_terrain_summary_figures_by_hand():
    from karstflow.terrain import terrain_summary

    dem = np.array([[10.0, 20.0], [np.nan, 40.0]])
    slope = np.array([[1.0, 30.0], [np.nan, 5.0]])
    classes = np.array([[0, 4], [255, 2]], dtype="uint8")
    s = terrain_summary(dem, slope, classes, flat_max_deg=2.0)
    assert s["valid_pixels"] == 3
    assert s["elevation_min_m"] == 10 and s["elevation_max_m"] == 40
    assert s["elevation_mean_m"] == pytest.approx(70 / 3)
    assert s["slope_mean_deg"] == pytest.approx(12.0) and s["slope_median_deg"] == 5.0
    assert s["slope_ge_25deg_share"] == pytest.approx(1 / 3)
    assert s["aspect_class_share"] == pytest.approx(
        {"flat": 1 / 3, "shady": 0.0, "semi-shady": 1 / 3, "semi-sunny": 0.0, "sunny": 1 / 3}
    )
