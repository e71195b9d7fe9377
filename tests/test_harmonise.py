"""Tests of karstflow.harmonise (tiles and globs onto the region grid) and RegionGrid.from_raster."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
from numpy.testing import assert_allclose, assert_array_equal
from pyproj import Transformer
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from karstflow.grid import RegionGrid
from karstflow.harmonise import expand_raster_paths, raster_to_grid
from karstflow.terrain import slope_aspect

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GEO_DEM = SHARED_DATA / "dem-geographic" / "dem.tif"

# the synthetic plane: z = A * lon + B * lat + C in EPSG:4326, 1/1200 deg pixels
A, B, C = 900.0, 2500.0, -177_500.0  # 300 m at (117 E, 29 N)
RES = 1.0 / 1200
LON0, LAT0 = 117.0, 29.0  # upper-left corner of the plane raster
NX, NY = 240, 240


def write_tif(path: Path, data: np.ndarray, transform, crs: str, nodata=None) -> Path:
    profile = dict(
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def cut_tiles(src: Path, out_dir: Path, *, row: int, col: int, overlap: int = 0, names=None) -> list[Path]:
    """Cut ``src`` into 4 quadrant GeoTIFFs along pixel boundaries (sharing ``overlap`` px)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = names or ["nw", "ne", "sw", "se"]
    paths = []
    with rasterio.open(src) as ds:
        h, w = ds.height, ds.width
        boxes = [
            (0, row + overlap, 0, col + overlap),
            (0, row + overlap, col, w),
            (row, h, 0, col + overlap),
            (row, h, col, w),
        ]
        for name, (r0, r1, c0, c1) in zip(names, boxes, strict=True):
            win = Window(c0, r0, c1 - c0, r1 - r0)
            paths.append(
                write_tif(out_dir / f"{name}.tif", ds.read(1, window=win), ds.window_transform(win), ds.crs, ds.nodata)
            )
    return paths


def plane_values(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return A * lon + B * lat + C


@pytest.fixture()
def plane_file(tmp_path: Path) -> Path:
    lon = LON0 + (np.arange(NX) + 0.5) * RES
    lat = LAT0 - (np.arange(NY) + 0.5) * RES
    z = plane_values(*np.meshgrid(lon, lat))
    return write_tif(tmp_path / "plane.tif", z.astype("float64"), from_origin(LON0, LAT0, RES, RES), "EPSG:4326")


@pytest.fixture()
def plane_grid() -> RegionGrid:
    """A UTM 50N 10 m grid well inside the plane raster."""
    bounds = transform_bounds("EPSG:4326", "EPSG:32650", 117.03, 28.83, 117.17, 28.97)
    return RegionGrid.from_bounds("EPSG:32650", 10, bounds)


@pytest.fixture()
def geo_dem() -> Path:
    if not GEO_DEM.exists():
        pytest.skip(f"real geographic DEM not found at {GEO_DEM} (../shared/data/dem-geographic beside the project)")
    return GEO_DEM


@pytest.fixture()
def dem_grid() -> RegionGrid:
    """UTM 14N 10 m grid inside the Dallas-Fort Worth DEM (lon -97.485..-97.179, lat 32.52..32.82)."""
    bounds = transform_bounds("EPSG:4326", "EPSG:32614", -97.45, 32.55, -97.22, 32.79)
    return RegionGrid.from_bounds("EPSG:32614", 10, bounds)


# --------------------------------------------------------------------------------------
# (a) tiles by glob == the single file
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("resampling", ["bilinear", "nearest", "cubic"])
def test_real_dem_tiles_by_glob_equal_single_file(geo_dem, dem_grid, tmp_path, resampling):
    with rasterio.open(geo_dem) as ds:
        row, col = ds.height // 2 + 7, ds.width // 2 - 11  # an off-centre cut
    cut_tiles(geo_dem, tmp_path / "tiles", row=row, col=col)
    single = raster_to_grid(geo_dem, dem_grid, resampling=resampling, source="dem")
    tiled = raster_to_grid(str(tmp_path / "tiles" / "*.tif"), dem_grid, resampling=resampling, source="dem")
    assert dem_grid.matches(tiled)
    assert tiled.dtype == single.dtype == (np.int16 if resampling == "nearest" else np.float32)
    assert_array_equal(tiled.values, single.values)
    # the DEM has no holes inside the grid: every pixel has a value within its range
    values = single.values.astype(float)
    assert np.isfinite(values).all() and 140 <= values.min() and values.max() <= 300


@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
def test_plane_tiles_equal_single_file_and_the_plane(plane_file, plane_grid, tmp_path, resampling):
    # ASTER-like tiles that share one pixel row/column along their edges
    names = ["ASTGTMV003_N29E117_dem", "ASTGTMV003_N29E118_dem", "ASTGTMV003_N28E117_dem", "ASTGTMV003_N28E118_dem"]
    cut_tiles(plane_file, tmp_path / "aster", row=113, col=131, overlap=1, names=names)
    single = raster_to_grid(plane_file, plane_grid, resampling=resampling, source="plane")
    tiled = raster_to_grid(
        tmp_path / "aster" / "ASTGTMV003_*_dem.tif", plane_grid, resampling=resampling, source="plane"
    )
    assert_array_equal(tiled.values, single.values)
    assert tiled.dtype == np.float64
    if resampling == "bilinear":  # bilinear reproduces a plane exactly: compare with the formula
        coords = plane_grid.coords()
        x, y = np.meshgrid(coords["x"], coords["y"])
        lon, lat = Transformer.from_crs(plane_grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
        assert_allclose(tiled.values, plane_values(lon, lat), rtol=0, atol=1e-6)


def test_mosaic_first_means_no_seams(plane_file, plane_grid, tmp_path):
    """Warping the tiles one by one and pasting them together would leave seams."""
    tiles = cut_tiles(plane_file, tmp_path / "t", row=120, col=120)
    mosaic = raster_to_grid(tiles, plane_grid, resampling="bilinear", source="plane").values
    pasted = np.full(plane_grid.shape, np.nan)
    for t in tiles:
        one = raster_to_grid(t, plane_grid, resampling="bilinear", source="tile").values
        pasted = np.where(np.isnan(pasted), one, pasted)
    single = raster_to_grid(plane_file, plane_grid, resampling="bilinear", source="plane").values
    assert_array_equal(mosaic, single)
    assert np.nanmax(np.abs(pasted - single)) > 0.1 or np.isnan(pasted).any()


# --------------------------------------------------------------------------------------
# (b), (c) paths
# --------------------------------------------------------------------------------------


def test_explicit_list_equals_glob(plane_file, plane_grid, tmp_path):
    tiles = cut_tiles(plane_file, tmp_path / "t", row=100, col=140)
    by_glob = raster_to_grid(str(tmp_path / "t" / "*.tif"), plane_grid, resampling="bilinear", source="p")
    by_list = raster_to_grid([str(p) for p in reversed(tiles)], plane_grid, resampling="bilinear", source="p")
    assert_array_equal(by_list.values, by_glob.values)


def test_expand_raster_paths(tmp_path):
    for name in ["b.tif", "a.tif", "c.txt"]:
        (tmp_path / name).write_text("x")
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    assert expand_raster_paths(str(tmp_path / "*.tif")) == [a, b]
    assert expand_raster_paths([b, str(tmp_path / "?.tif"), a]) == [a, b]  # sorted, deduplicated
    assert expand_raster_paths(Path(b)) == [b]
    with pytest.raises(ValueError, match=r"ASTGTMV003_\*_dem\.tif"):
        expand_raster_paths(str(tmp_path / "ASTGTMV003_*_dem.tif"))
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        expand_raster_paths([a, str(tmp_path / "missing.tif")])
    with pytest.raises(ValueError, match="empty"):
        expand_raster_paths([])


def test_nothing_matches_names_the_pattern(plane_grid, tmp_path):
    pattern = str(tmp_path / "dem" / "ASTGTMV003_*_dem.tif")
    with pytest.raises(ValueError, match=r"ASTGTMV003_\*_dem\.tif.*matches no file"):
        raster_to_grid(pattern, plane_grid, resampling="bilinear", source="dem")


def test_no_overlap_names_the_source(plane_file):
    far = RegionGrid.from_bounds("EPSG:32650", 10, (200_000, 1_000_000, 201_000, 1_001_000))
    with pytest.raises(ValueError, match=r"dem \(config inputs\.dem\).*do not overlap the region grid"):
        raster_to_grid(plane_file, far, resampling="bilinear", source="dem (config inputs.dem)")


def test_unknown_resampling(plane_file, plane_grid):
    with pytest.raises(ValueError, match="unknown resampling 'linear'.*bilinear"):
        raster_to_grid(plane_file, plane_grid, resampling="linear", source="dem")


# --------------------------------------------------------------------------------------
# (d) RegionGrid.from_raster and rasters already on the grid
# --------------------------------------------------------------------------------------


def test_from_raster_exact_transform_and_shape(tmp_path):
    transform = from_origin(612_345.6, 3_201_234.5, 12.5, 12.5)  # not a multiple of 12.5: no snapping
    path = write_tif(tmp_path / "g.tif", np.zeros((37, 53), "float32"), transform, "EPSG:32650")
    grid = RegionGrid.from_raster(path)
    assert grid.crs == "EPSG:32650"
    assert grid.transform == transform
    assert grid.shape == (37, 53)
    again = RegionGrid.from_dict(grid.to_dict())
    assert again == grid and again.transform == transform


def test_from_raster_real_geographic_dem(geo_dem):
    grid = RegionGrid.from_raster(geo_dem)
    with rasterio.open(geo_dem) as ds:
        assert grid.transform == ds.transform
        assert grid.shape == (ds.height, ds.width)
    assert grid.crs == "EPSG:4326"


def test_from_raster_rejects_non_square_and_rotated(tmp_path):
    path = write_tif(tmp_path / "ns.tif", np.zeros((4, 4), "uint8"), from_origin(0, 40, 10, 20), "EPSG:32650")
    with pytest.raises(ValueError, match=r"not square \(x size 10\.0, y size 20\.0\)"):
        RegionGrid.from_raster(path)
    rotated = rasterio.Affine(10, 1, 0, 1, -10, 40)
    path = write_tif(tmp_path / "rot.tif", np.zeros((4, 4), "uint8"), rotated, "EPSG:32650")
    with pytest.raises(ValueError, match="rotated"):
        RegionGrid.from_raster(path)


@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
def test_raster_on_the_grid_comes_back_unchanged(tmp_path, caplog, resampling):
    rng = np.random.default_rng(1)
    data = rng.normal(400, 50, (30, 40)).astype("float32")
    data[3, 4] = -9999.0
    path = write_tif(tmp_path / "on.tif", data, from_origin(600_010, 2_800_300, 10, 10), "EPSG:32650", nodata=-9999.0)
    grid = RegionGrid.from_raster(path)
    with caplog.at_level(logging.INFO, logger="karstflow.harmonise"):
        out = raster_to_grid(path, grid, resampling=resampling, source="on-grid dem")
    assert out.dtype == np.float32
    expected = data.copy()
    expected[3, 4] = np.nan  # float output: nodata becomes NaN
    assert_array_equal(out.values, expected)
    assert grid.matches(out)
    assert "on-grid dem" in caplog.text and "already on the region grid, no resampling" in caplog.text


def test_raster_on_the_grid_lattice_is_cropped_not_resampled(tmp_path, caplog):
    data = np.arange(30 * 40, dtype="float32").reshape(30, 40)
    path = write_tif(tmp_path / "big.tif", data, from_origin(600_000, 2_800_300, 10, 10), "EPSG:32650")
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (600_050, 2_800_100, 600_500, 2_800_350))  # sticks out north/east
    with caplog.at_level(logging.INFO, logger="karstflow.harmonise"):
        out = raster_to_grid(path, grid, resampling="cubic", source="big")
    assert "no resampling" in caplog.text
    assert np.isnan(out.values[:5]).all() and np.isnan(out.values[:, 35:]).all()
    assert_array_equal(out.values[5:, :35], data[:20, 5:])


def test_log_line_describes_the_warp(plane_file, plane_grid, tmp_path, caplog):
    cut_tiles(plane_file, tmp_path / "t", row=120, col=120)
    with caplog.at_level(logging.INFO, logger="karstflow.harmonise"):
        raster_to_grid(str(tmp_path / "t" / "*.tif"), plane_grid, resampling="bilinear", source="dem")
    lines = [r.getMessage() for r in caplog.records if r.name == "karstflow.harmonise"]
    assert lines == ["dem: 4 tile(s) from EPSG:4326 at 0.000833 deg -> EPSG:32650 10 m, bilinear"]


# --------------------------------------------------------------------------------------
# (e) classes, nodata, tiles in several CRSs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("resampling", ["nearest", "mode"])
def test_class_raster_keeps_classes_and_dtype(tmp_path, plane_grid, resampling):
    rng = np.random.default_rng(7)
    classes = rng.choice(np.array([3, 7, 12, 40], "uint8"), size=(NY, NX))
    classes[:10, :10] = 255
    path = write_tif(tmp_path / "cls.tif", classes, from_origin(LON0, LAT0, RES, RES), "EPSG:4326", nodata=255)
    cut_tiles(path, tmp_path / "ct", row=90, col=150)
    out = raster_to_grid(str(tmp_path / "ct" / "*.tif"), plane_grid, resampling=resampling, source="classes")
    assert out.dtype == np.uint8
    assert set(np.unique(out.values)) <= {3, 7, 12, 40, 255}
    assert out.rio.nodata == 255
    single = raster_to_grid(path, plane_grid, resampling=resampling, source="classes")
    assert_array_equal(out.values, single.values)


def test_nodata_is_honoured(tmp_path, plane_grid):
    z = np.full((NY, NX), 500, "int16")
    z[100:140, 100:140] = -9999  # a hole
    path = write_tif(tmp_path / "hole.tif", z, from_origin(LON0, LAT0, RES, RES), "EPSG:4326")  # nodata undeclared
    without = raster_to_grid(path, plane_grid, resampling="bilinear", source="hole")
    assert np.nanmin(without.values) < 0  # -9999 taken as elevation
    out = raster_to_grid(path, plane_grid, resampling="bilinear", source="hole", nodata=-9999)
    assert np.isnan(out.values).any()
    assert np.nanmin(out.values) == np.nanmax(out.values) == 500
    # the hole straddles the tile corner: tiles give the same holes as the single file
    tiles = cut_tiles(path, tmp_path / "t", row=120, col=120)
    tiled = raster_to_grid(tiles, plane_grid, resampling="bilinear", source="hole", nodata=-9999)
    assert_array_equal(tiled.values, out.values)
    declared = [write_tif(t, *_read(t), nodata=-9999) for t in tiles]  # nodata in the files this time
    assert_array_equal(raster_to_grid(declared, plane_grid, resampling="bilinear", source="hole").values, out.values)


def _read(path: Path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.crs


def test_tiles_in_different_crs_first_valid_wins(tmp_path, plane_file, plane_grid, caplog):
    # a: the plane's western half in EPSG:4326; b: a constant covering everything in the grid's UTM zone
    (tmp_path / "mixed").mkdir()
    with rasterio.open(plane_file) as ds:
        win = Window(0, 0, NX // 2, NY)
        write_tif(tmp_path / "mixed" / "a_west.tif", ds.read(1, window=win), ds.window_transform(win), ds.crs)
    xmin, ymin, xmax, ymax = plane_grid.bounds
    const = np.full((int((ymax - ymin) / 30) + 4, int((xmax - xmin) / 30) + 4), 7.0)
    write_tif(tmp_path / "mixed" / "b_all.tif", const, from_origin(xmin - 60, ymax + 60, 30, 30), "EPSG:32650")
    with caplog.at_level(logging.INFO, logger="karstflow.harmonise"):
        out = raster_to_grid(
            str(tmp_path / "mixed" / "*.tif"), plane_grid, resampling="bilinear", source="mixed"
        ).values
    assert "EPSG:4326" in caplog.text and "EPSG:32650 at 30 m" in caplog.text
    west = raster_to_grid(tmp_path / "mixed" / "a_west.tif", plane_grid, resampling="bilinear", source="west").values
    has_west = ~np.isnan(west)
    assert has_west.any() and (~has_west).any()
    assert_array_equal(out[has_west], west[has_west])
    assert_allclose(out[~has_west], 7.0, rtol=0, atol=1e-9)  # bilinear weights sum to 1 +- 1 ulp


# --------------------------------------------------------------------------------------
# (f) terrain from the mosaic
# --------------------------------------------------------------------------------------


def test_slope_from_mosaic_equals_slope_from_single_file(geo_dem, dem_grid, tmp_path):
    with rasterio.open(geo_dem) as ds:
        row, col = ds.height // 3, ds.width // 2 + 5
    cut_tiles(geo_dem, tmp_path / "tiles", row=row, col=col)
    single = raster_to_grid(geo_dem, dem_grid, resampling="bilinear", source="dem")
    tiled = raster_to_grid(str(tmp_path / "tiles" / "*.tif"), dem_grid, resampling="bilinear", source="dem")
    slope_single, aspect_single = slope_aspect(single)
    slope_tiled, aspect_tiled = slope_aspect(tiled)
    assert_array_equal(slope_tiled.values, slope_single.values)
    assert_array_equal(aspect_tiled.values, aspect_single.values)
    assert float(slope_single.max()) > 1.0  # a real surface, not flat
