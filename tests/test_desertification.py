"""karstflow.desertification: FVC, indicator grades, combination, areas, transitions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from karstflow.desertification import (
    ENDMEMBERS,
    RD_NODATA,
    exposure_method,
    fcls_unmix,
    fvc_dimidiate,
    fvc_endmember_mask,
    fvc_endmembers,
    grade_area_table,
    grade_indicator,
    image_endmembers,
    rd_grade,
    rd_summary,
    transition_table,
    unmix,
)


def da(values, dims=("y", "x")) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=np.float32), dims=dims)


def test_fvc_dimidiate_by_hand():
    ndvi = da([[0.1, 0.45, 0.8], [0.9, -0.2, np.nan]])
    fvc = fvc_dimidiate(ndvi, 0.1, 0.8).values
    # (0.45 - 0.1) / (0.8 - 0.1) = 0.5; outside the end-members clipped to 0 and 1
    np.testing.assert_allclose(fvc[0], [0.0, 0.5, 1.0], atol=1e-6)
    assert fvc[1, 0] == 1.0 and fvc[1, 1] == 0.0 and np.isnan(fvc[1, 2])
    with pytest.raises(ValueError, match="NDVI_veg > NDVI_soil"):
        fvc_dimidiate(ndvi, 0.8, 0.1)


def test_indicator_grades_at_the_xiong_thresholds():
    exposure = da([0.0, 0.19, 0.2, 0.3, 0.49, 0.5, 0.7, 0.9, 1.0, np.nan], dims=("i",))
    g = grade_indicator(exposure, (0.2, 0.3, 0.5, 0.7, 0.9)).values
    assert g.tolist() == [0, 0, 1, 2, 2, 3, 4, 5, 5, RD_NODATA]
    cover = da([0.9, 0.7, 0.69, 0.5, 0.34, 0.19, 0.09, 0.0], dims=("i",))
    g = grade_indicator(cover, (0.7, 0.5, 0.35, 0.2, 0.1), decreasing=True).values
    assert g.tolist() == [0, 0, 1, 1, 3, 4, 5, 5]
    with pytest.raises(ValueError, match="strictly decreasing"):
        grade_indicator(cover, (0.1, 0.2, 0.35, 0.5, 0.7), decreasing=True)
    with pytest.raises(ValueError, match="expected 5 values"):
        grade_indicator(exposure, (0.2, 0.3))


def test_rd_grade_combines_indicators_within_the_carbonate_mask():
    carbonate = da([[1, 1, 1, 1, 0, np.nan]])
    exposure = da([[0.6, 0.6, 0.05, np.nan, 0.9, 0.9]])  # moderate, moderate, none, missing
    cover = da([[0.8, 0.15, 0.05, 0.3, 0.0, 0.0]])  # none, severe, extremely severe, moderate
    g_min = rd_grade(carbonate=carbonate, exposure=exposure, cover=cover, combine="min").values
    # rock under closed vegetation -> none; both -> the less severe; bare but not rocky -> none;
    # missing exposure -> cover alone; off carbonate -> nodata
    assert g_min.tolist() == [[0, 3, 0, 3, RD_NODATA, RD_NODATA]]
    g_max = rd_grade(carbonate=carbonate, exposure=exposure, cover=cover, combine="max").values
    assert g_max.tolist() == [[3, 4, 5, 3, RD_NODATA, RD_NODATA]]
    g_exp = rd_grade(carbonate=carbonate, exposure=exposure, indicators=["exposure"]).values
    assert g_exp.tolist() == [[3, 3, 0, RD_NODATA, RD_NODATA, RD_NODATA]]
    slope = da([[10.0, 40.0, 40.0, 40.0, 40.0, 40.0]])
    g_slope = rd_grade(
        carbonate=carbonate, exposure=exposure, slope=slope, indicators=["exposure", "slope"], combine="min"
    ).values
    assert g_slope.tolist() == [[0, 3, 0, 5, RD_NODATA, RD_NODATA]]
    with pytest.raises(ValueError, match="no cover layer"):
        rd_grade(carbonate=carbonate, exposure=exposure)


def test_rd_grade_broadcasts_years_and_stays_lazy():
    years = [2000, 2001]
    exposure = xr.DataArray(
        np.array([[[0.6, 0.1]], [[0.25, 0.1]]], np.float32), dims=("year", "y", "x"), coords={"year": years}
    ).chunk({"year": 1})
    cover = xr.DataArray(
        np.array([[[0.1, 0.9]], [[0.6, 0.9]]], np.float32), dims=("year", "y", "x"), coords={"year": years}
    ).chunk({"year": 1})
    carbonate = da([[1, 1]])
    g = rd_grade(carbonate=carbonate, exposure=exposure, cover=cover)
    assert g.chunks is not None and g.dims == ("year", "y", "x")
    assert g.values.tolist() == [[[3, 0]], [[1, 0]]]


def test_area_table_transitions_and_reduction_rate():
    first = np.array([[2, 3, 0, 255], [4, 1, 0, 2]], np.uint8)
    last = np.array([[0, 2, 0, 255], [4, 1, 2, 1]], np.uint8)
    grades = xr.DataArray(np.stack([first, last]), dims=("year", "y", "x"), coords={"year": [2000, 2023]})
    area = grade_area_table(grades, pixel_area_km2=0.01)
    a0 = area[area.year == 2000].set_index("grade")["pixels"]
    assert a0.to_dict() == {"none": 2, "potential": 1, "light": 2, "moderate": 1, "severe": 1, "extremely severe": 0}
    assert area[area.year == 2000]["share"].sum() == pytest.approx(1.0)
    trans = transition_table(first, last, 0.01, (2000, 2023))
    assert len(trans) == 36 and trans["pixels"].sum() == 7  # the nodata pixel is left out
    cell = trans.set_index(["from_code", "to_code"])["pixels"]
    assert cell[(2, 0)] == 1 and cell[(3, 2)] == 1 and cell[(0, 2)] == 1 and cell[(2, 1)] == 1
    s = rd_summary(area, trans, rd_min_grade=2)
    # RD (light or worse): 4 pixels -> 3 pixels
    assert s["rd_area_first_km2"] == pytest.approx(0.04) and s["rd_area_last_km2"] == pytest.approx(0.03)
    assert s["reduction_rate"] == pytest.approx(0.25)
    assert s["restored_from_rd_km2"] == pytest.approx(0.02)  # 2->0 and 2->1
    assert s["new_rd_km2"] == pytest.approx(0.01)  # 0->2
    assert s["improved_km2"] == pytest.approx(0.03) and s["worsened_km2"] == pytest.approx(0.01)
    assert isinstance(area, pd.DataFrame) and list(area.columns) == [
        "year",
        "grade_code",
        "grade",
        "pixels",
        "area_km2",
        "share",
    ]


def test_grade_boundaries_as_xiong_writes_them():
    # Xiong et al. (2002): exposure "potential 20-30 %, light 31-50 %": 30 % exactly is
    # potential, above 30 % light; cover "none > 70 %, potential 50-70 %": 70 % exactly is
    # potential. float32 values, as the cubes store them.
    carbonate = da([[1] * 8])
    exposure = da([[0.2, 0.3, 0.3001, 0.5, 0.5001, 0.7, 0.9, 0.9001]])
    g = rd_grade(carbonate=carbonate, exposure=exposure, indicators=["exposure"]).values
    assert g.tolist() == [[1, 1, 2, 2, 3, 3, 4, 5]]
    cover = da([[0.7001, 0.7, 0.5001, 0.5, 0.35, 0.2, 0.1, 0.0999]])
    g = rd_grade(carbonate=carbonate, cover=cover, indicators=["cover"]).values
    assert g.tolist() == [[0, 1, 1, 2, 3, 4, 4, 5]]
    # grade_indicator's own default keeps its documented >= / < reading
    assert grade_indicator(da([0.3], dims=("i",)), (0.2, 0.3, 0.5, 0.7, 0.9)).values.tolist() == [2]


def test_fcls_is_the_projection_onto_the_simplex_by_hand():
    # identity end-members: FCLS is the Euclidean projection of the pixel onto the simplex
    # (Duchi et al. 2008): (0.7, 0.5, -0.2) -> tau = (0.7 + 0.5 - 1) / 2 = 0.1 -> (0.6, 0.4, 0)
    e = np.eye(3)
    f, r = fcls_unmix(np.array([[0.5, 0.3, 0.2], [0.7, 0.5, -0.2], [np.nan, 0.1, 0.1]]), e)
    np.testing.assert_allclose(f[0], [0.5, 0.3, 0.2], atol=1e-12)
    np.testing.assert_allclose(f[1], [0.6, 0.4, 0.0], atol=1e-12)
    assert r[0] == pytest.approx(0.0, abs=1e-12)
    assert r[1] == pytest.approx(np.sqrt((0.1**2 + 0.1**2 + 0.2**2) / 3))
    assert np.all(np.isnan(f[2])) and np.isnan(r[2])


# Vegetation, red karst soil and bare limestone over red, nir, swir1, swir2 (reflectance).
PLANTED = {
    "vegetation": {"red": 0.04, "nir": 0.45, "swir1": 0.20, "swir2": 0.09},
    "soil": {"red": 0.18, "nir": 0.26, "swir1": 0.33, "swir2": 0.28},
    "rock": {"red": 0.28, "nir": 0.34, "swir1": 0.42, "swir2": 0.30},
}
BANDS4 = ["red", "nir", "swir1", "swir2"]


def planted_pixels(shape=(2, 60, 60), noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    e = np.array([[PLANTED[em][b] for b in BANDS4] for em in ENDMEMBERS])
    f = rng.dirichlet([0.8, 0.8, 0.8], size=shape)
    f[0, 0, :3] = np.eye(3)  # a few pure pixels, as a real scene has
    x = f @ e + rng.normal(0.0, noise, size=(*shape, len(BANDS4)))
    ds = xr.Dataset(
        {b: (("year", "y", "x"), x[..., i].astype(np.float32)) for i, b in enumerate(BANDS4)},
        coords={"year": [2000, 2001]},
    )
    return ds, f


def test_unmixing_recovers_planted_fractions():
    ds, f = planted_pixels()
    out = unmix(ds.chunk({"y": 30, "x": 30}), PLANTED)
    assert out["bedrock_exposure"].chunks is not None  # lazy, block by block
    out = out.compute()
    for k, name in enumerate(("vegetation_fraction", "soil_fraction", "bedrock_exposure")):
        err = out[name].values - f[..., k]
        assert np.abs(err).mean() < 0.02, name
    total = out["vegetation_fraction"] + out["soil_fraction"] + out["bedrock_exposure"]
    np.testing.assert_allclose(total.values, 1.0, atol=1e-5)
    assert float(out["bedrock_exposure"].min()) >= 0.0

    # the end-members found in the image are the planted ones, named right
    found = image_endmembers(ds)
    for em in ENDMEMBERS:
        np.testing.assert_allclose([found[em][b] for b in BANDS4], [PLANTED[em][b] for b in BANDS4], atol=0.01)
    again = unmix(ds, found)["bedrock_exposure"].values
    assert np.abs(again - f[..., 2]).mean() < 0.03


def test_fvc_endmembers_leave_out_water_and_built_up():
    rng = np.random.default_rng(1)
    land = rng.uniform(0.1, 0.8, size=(20, 20)).astype(np.float32)
    ndvi = land.copy()
    lc = np.full((20, 20), 2, np.uint8)
    ndvi[:4] = -0.3  # a lake
    lc[:4] = 7
    ndvi[4:8] = rng.uniform(0.0, 0.08, size=(4, 20))  # a town: low, positive NDVI
    lc[4:8] = 8
    nd = da(ndvi)
    mask = fvc_endmember_mask(nd, [da(lc).astype(np.uint8)], (7, 8))
    soil, veg = fvc_endmembers(nd, (5, 95), mask=mask)
    expect = np.percentile(land[8:].astype(np.float64), [5, 95])
    assert (soil, veg) == pytest.approx(tuple(expect))
    # without a land-cover map the water (NDVI < 0) still drops out, the town does not
    soil_nolc, _ = fvc_endmembers(nd, (5, 95), mask=fvc_endmember_mask(nd))
    assert soil_nolc == pytest.approx(np.percentile(ndvi[4:].astype(np.float64), 5))
    assert fvc_endmembers(nd, (5, 95))[0] < -0.29  # what today's pooled percentile gave


def test_exposure_method_prefers_the_layer_then_unmixing_and_never_falls_back_silently():
    assert exposure_method("auto", has_layer=True, bands=BANDS4) == "layer"
    assert exposure_method("auto", has_layer=False, bands=BANDS4) == "unmixing"
    assert exposure_method("one_minus_fvc", has_layer=True, bands=BANDS4) == "one_minus_fvc"
    with pytest.raises(ValueError, match="desertification.exposure_method: one_minus_fvc"):
        exposure_method("auto", has_layer=False, bands=["red", "nir"], source="stack.nc")
    with pytest.raises(ValueError, match="inputs.bedrock_exposure"):
        exposure_method("layer", has_layer=False, bands=BANDS4)
    with pytest.raises(ValueError, match="expected one of"):
        exposure_method("fvc", has_layer=False, bands=BANDS4)


# -- the rule scripts on a toy region ------------------------------------------------------

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def toy_region(tmp_path: Path, *, with_bands: bool):
    from karstflow.grid import RegionGrid
    from karstflow.io import write_json, write_netcdf, write_raster

    grid = RegionGrid.from_bounds("EPSG:32648", 30.0, (0, 0, 60 * 30, 60 * 30))
    write_json(grid.to_dict(), tmp_path / "grid.json")
    refl, f = planted_pixels()
    e = refl  # reflectance cube (year, y, x)
    ndvi = ((e["nir"] - e["red"]) / (e["nir"] + e["red"])).astype(np.float32)
    coords = {"year": [2000, 2001], **grid.coords()}
    cube = xr.Dataset({"ndvi": (("year", "y", "x"), ndvi.values)}, coords=coords)
    write_netcdf(cube, tmp_path / "cube.nc")
    stack = cube.copy()
    if with_bands:
        for b in BANDS4:
            stack[b] = (("year", "y", "x"), e[b].values)
    write_netcdf(stack, tmp_path / "stack.nc")
    write_raster(grid.data_array(np.ones(grid.shape, np.uint8)), tmp_path / "carbonate.tif", dtype="uint8")
    return grid, f


def endmember_params(method="auto", endmembers=None):
    from karstflow.runtime import Params

    return Params(
        fvc_percentiles=[5, 95],
        fvc_exclude_classes=[7, 8],
        exposure_method=method,
        unmixing={"endmembers": endmembers, "max_samples": 200000, "vertex_px": 20},
        chunk_px=32,
    )


def grade_params(**more):
    from karstflow.runtime import Params

    return Params(indicators=["exposure", "cover"], combine="min", thresholds={}, chunk_px=32, **more)


def toy_inputs(tmp_path, **more):
    inp = {
        k: str(tmp_path / f)
        for k, f in (("cube", "cube.nc"), ("stack", "stack.nc"), ("carbonate", "carbonate.tif"), ("grid", "grid.json"))
    }
    inp.update({k: str(v) for k, v in more.items()})
    return inp


def grade_inputs(tmp_path, **more):
    """The inputs of rule desertification_grades: no land-cover maps, the region's end-members."""
    inp = {k: v for k, v in toy_inputs(tmp_path, **more).items() if not k.startswith("landcover_")}
    return inp | {"endmembers": str(tmp_path / "endmembers.json")}


def run_grades(tmp_path, method="auto", endmembers=None, **more):
    """Rules desertification_endmembers, desertification_grades and desertification_area."""
    from karstflow.runtime import call_script

    stats = {"endmembers": str(tmp_path / "endmembers.json")}
    call_script(
        SCRIPTS / "desertification_endmembers.py",
        toy_inputs(tmp_path, **more),
        stats,
        endmember_params(method, endmembers),
        {"region": "toy"},
    )
    out = {"grades": str(tmp_path / "rd_grade_annual.nc"), "area": str(tmp_path / "rd_area.csv")}
    call_script(
        SCRIPTS / "desertification_grades.py",
        grade_inputs(tmp_path, **more),
        {"grades": out["grades"]},
        grade_params(),
        {"region": "toy"},
    )
    call_script(
        SCRIPTS / "desertification_area.py",
        {"grades": out["grades"], "grid": str(tmp_path / "grid.json")},
        {"area": out["area"]},
        {},
        {"region": "toy"},
    )
    return out


def test_grades_script_unmixes_by_default_and_records_the_method(tmp_path):
    from karstflow.io import read_cube
    from karstflow.runtime import Params, call_script

    _, f = toy_region(tmp_path, with_bands=True)
    out = run_grades(tmp_path)
    ds = read_cube(out["grades"])
    assert ds.attrs["exposure_method"] == "unmixing"
    assert "swir1" in ds.attrs["unmixing_bands"] and "image" in ds.attrs["unmixing_endmember_source"]
    assert np.abs(ds["bedrock_exposure"].values - f[..., 2]).mean() < 0.03
    # the summary and the GeoTIFF say so too
    import rasterio

    for year in (2000, 2001):
        call_script(
            SCRIPTS / "desertification_map.py",
            {"grades": out["grades"], "grid": str(tmp_path / "grid.json")},
            {"grade": str(tmp_path / f"rd_{year}.tif")},
            Params(),
            {"region": "toy", "year": str(year)},
        )
    with rasterio.open(tmp_path / "rd_2000.tif") as src:
        assert src.tags()["exposure_method"] == "unmixing"
    call_script(
        SCRIPTS / "desertification_summary.py",
        {
            k: str(tmp_path / v)
            for k, v in (
                ("area", "rd_area.csv"),
                ("grades", "rd_grade_annual.nc"),
                ("first", "rd_2000.tif"),
                ("last", "rd_2001.tif"),
                ("grid", "grid.json"),
            )
        },
        {"transition": str(tmp_path / "tr.csv"), "summary": str(tmp_path / "rd.json")},
        Params(rd_min_grade=2, years=[2000, 2001]),
        {"region": "toy"},
    )
    summary = json.loads((tmp_path / "rd.json").read_text())
    assert summary["exposure_method"] == "unmixing"
    assert set(summary["unmixing_endmembers"]) == set(ENDMEMBERS)


def test_grades_script_stops_without_bands_unless_one_minus_fvc_is_chosen(tmp_path):
    from karstflow.io import read_cube

    toy_region(tmp_path, with_bands=False)
    with pytest.raises(ValueError, match="desertification.exposure_method: one_minus_fvc"):
        run_grades(tmp_path)
    assert not (tmp_path / "rd_grade_annual.nc").exists()
    # a land-cover map marks a town (code 8) where NDVI is lowest: it leaves the end-members
    from karstflow.grid import RegionGrid
    from karstflow.io import write_raster

    grid = RegionGrid.from_dict(json.loads((tmp_path / "grid.json").read_text()))
    ndvi = read_cube(tmp_path / "cube.nc")["ndvi"].values
    town = ndvi.min(axis=0) < np.percentile(ndvi, 10)
    lc = np.where(town, 8, 2).astype(np.uint8)
    write_raster(grid.data_array(lc), tmp_path / "lc.tif", dtype="uint8")
    out = run_grades(tmp_path, "one_minus_fvc", landcover_2020=tmp_path / "lc.tif")
    ds = read_cube(out["grades"])
    land = ndvi[:, ~town].astype(np.float64)
    assert ds.attrs["ndvi_soil"] == pytest.approx(np.percentile(land, 5), abs=1e-6)
    assert ds.attrs["ndvi_veg"] == pytest.approx(np.percentile(land, 95), abs=1e-6)
    assert "classes [7, 8]" in ds.attrs["fvc_endmember_exclusion"]
    assert ds.attrs["exposure_method"] == "one_minus_fvc"
    assert "1 - FVC" in ds.attrs["exposure_source"]
    np.testing.assert_allclose(ds["bedrock_exposure"].values, 1.0 - ds["fvc"].values, atol=1e-6)


def test_tiles_grade_as_the_region_with_its_end_members(tmp_path):
    """desertification_grades one tile at a time (halo 0, as desertification_grades_tile runs
    it): each tile's cube is the region's cube on the tile, pixel for pixel, with the same
    attributes (what the mosaic requires). The image end-members and the FVC percentiles of
    one tile differ from the region's: taken per tile, they would change the pixels, so they
    come from desertification_endmembers."""
    from karstflow.desertification import fvc_endmember_mask, fvc_endmembers
    from karstflow.io import read_cube, read_json
    from karstflow.runtime import call_script
    from karstflow.tiling import plan_tiles

    grid, _ = toy_region(tmp_path, with_bands=True)
    whole = read_cube(run_grades(tmp_path)["grades"]).load()  # unmixing, image end-members
    stats = read_json(tmp_path / "endmembers.json")
    assert stats["exposure_method"] == "unmixing" and stats["unmixing"]["endmember_source"].startswith("image")
    tiles = plan_tiles(grid, 32)
    assert [t.id for t in tiles] == ["r000c000", "r000c001", "r001c000", "r001c001"]
    for t in tiles:
        out = {"grades": str(tmp_path / "tiles" / t.id / "rd_grade_annual.nc")}
        call_script(
            SCRIPTS / "desertification_grades.py",
            grade_inputs(tmp_path),
            out,
            grade_params(tile={"tile_px": 32, "halo_px": 0, "halo_m": 0.0}),
            {"region": "toy", "tile": t.id},
        )
        part, region = read_cube(out["grades"]), whole.isel(t.window.slices)
        assert set(part.attrs) == set(whole.attrs)
        assert all(np.array_equal(part.attrs[k], whole.attrs[k]) for k in whole.attrs), t.id
        for name in ("rd_grade", "fvc", "bedrock_exposure"):
            np.testing.assert_array_equal(part[name].values, region[name].values, err_msg=f"{t.id} {name}")
    assert json.loads(whole.attrs["unmixing_endmembers"]) == stats["unmixing"]["endmembers"]
    assert (whole.attrs["ndvi_soil"], whole.attrs["ndvi_veg"]) == (stats["ndvi_soil"], stats["ndvi_veg"])
    # one tile's own figures are not the region's
    ndvi = read_cube(tmp_path / "cube.nc")["ndvi"].isel(y=slice(0, 32), x=slice(0, 32))
    soil, _ = fvc_endmembers(ndvi, (5, 95), mask=fvc_endmember_mask(ndvi))
    assert abs(soil - stats["ndvi_soil"]) > 1e-4


def test_endmembers_json_layer_and_configured_unmixing_and_the_area_table(tmp_path):
    from karstflow.desertification import check_grading_statistics
    from karstflow.io import read_cube, read_json, write_netcdf

    toy_region(tmp_path, with_bands=True)
    cube = read_cube(tmp_path / "cube.nc").load()
    ndvi = cube["ndvi"].values.astype(np.float64)
    layer = cube.drop_vars("ndvi").assign(
        bedrock_exposure=(("year", "y", "x"), np.linspace(0.0, 1.0, ndvi.size, dtype=np.float32).reshape(ndvi.shape))
    )
    write_netcdf(layer, tmp_path / "exposure.nc")
    out = run_grades(tmp_path, exposure=tmp_path / "exposure.nc")
    stats = read_json(tmp_path / "endmembers.json")
    assert stats["exposure_method"] == "layer" and stats["unmixing"] is None
    assert stats["exposure_source"] == f"bedrock exposure layer: {tmp_path / 'exposure.nc'}"
    land = ndvi[ndvi >= 0]  # no land-cover map: only NDVI < 0 leaves the end-members
    assert (stats["ndvi_soil"], stats["ndvi_veg"]) == pytest.approx(tuple(np.percentile(land, [5, 95])), abs=1e-12)
    ds = read_cube(out["grades"])
    np.testing.assert_array_equal(ds["bedrock_exposure"].values, layer["bedrock_exposure"].values)
    assert ds.attrs["exposure_source"] == stats["exposure_source"]
    # rd_area.csv (rule desertification_area): pixels of each grade and year, 30 m pixels
    area = pd.read_csv(out["area"])
    g = ds["rd_grade"].values
    for k, year in enumerate((2000, 2001)):
        rows = area[area["year"] == year].sort_values("grade_code")
        assert rows["pixels"].tolist() == np.bincount(g[k].ravel(), minlength=256)[:6].tolist()
        np.testing.assert_allclose(rows["area_km2"], rows["pixels"] * 0.0009)

    # configured end-members: the bands every end-member gives, in the stack's order
    given = {em: dict(v) for em, v in PLANTED.items()}
    given["vegetation"]["blue"] = 0.03  # only one end-member has blue: left out
    run_grades(tmp_path, "unmixing", endmembers=given)
    stats = read_json(tmp_path / "endmembers.json")
    assert stats["unmixing"] == {
        "bands": ["red", "nir", "swir1", "swir2"],
        "endmembers": PLANTED,
        "endmember_source": "desertification.unmixing.endmembers",
    }
    assert read_cube(tmp_path / "rd_grade_annual.nc").attrs["unmixing_endmember_source"] == (
        "desertification.unmixing.endmembers"
    )

    # a broken statistics file stops the grades, naming it
    with pytest.raises(ValueError, match=r"e\.json: missing key\(s\) \['ndvi_veg'\]"):
        check_grading_statistics({k: v for k, v in stats.items() if k != "ndvi_veg"}, "e.json")
    with pytest.raises(ValueError, match="ndvi_veg > ndvi_soil"):
        check_grading_statistics({**stats, "ndvi_veg": stats["ndvi_soil"]}, "e.json")
    with pytest.raises(ValueError, match="unmixing.bands"):
        check_grading_statistics({**stats, "unmixing": {**stats["unmixing"], "bands": ["red", "nir"]}}, "e.json")
    with pytest.raises(ValueError, match=r"lack the reflectance of \[\('rock', 'swir2'\)\]"):
        bad = {**stats["unmixing"]["endmembers"], "rock": {"red": 0.28, "nir": 0.34, "swir1": 0.42}}
        check_grading_statistics({**stats, "unmixing": {**stats["unmixing"], "endmembers": bad}}, "e.json")
