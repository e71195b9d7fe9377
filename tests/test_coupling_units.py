"""Units of the coupling stage (karstflow.coupling_units), the population-table checks
(karstflow.checks.check_population_table, karstflow.inputs) and the demo's planted
population (karstflow.demo.population), without Snakemake."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from karstflow.checks import VARIABLE_RANGES, check_population_table, check_variables
from karstflow.coupling_units import (
    add_coupling,
    cell_labels,
    cell_polygons,
    population_by_area,
    unit_indicators,
    zonal_mean,
    zonal_share,
    zonal_sum,
)
from karstflow.inputs import INPUTS, InputError, harmonise_table, input_spec

# --- cells and zonal statistics ---


def test_cells_are_anchored_at_the_top_left_and_take_pixels_by_centre():
    labels, n_rows, n_cols = cell_labels((5, 6), 30.0, 60.0)
    assert (n_rows, n_cols) == (3, 3)
    assert labels[0].tolist() == [1, 1, 2, 2, 3, 3]
    assert labels[4].tolist() == [7, 7, 8, 8, 9, 9]  # the last row of cells is one pixel high
    cells = cell_polygons((0.0, 0.0, 180.0, 150.0), 60.0, n_rows, n_cols, "EPSG:32648")
    assert cells["cell_id"].tolist() == list(range(1, 10))
    assert cells.geometry.area.tolist()[-1] == pytest.approx(60.0 * 30.0)  # clipped to the grid
    assert cells.geometry.area.sum() == pytest.approx(180.0 * 150.0)
    with pytest.raises(ValueError, match="at least one pixel wide"):
        cell_labels((5, 6), 30.0, 10.0)


def test_zonal_sum_mean_and_share_skip_nan_and_nodata():
    labels = np.array([[1, 1, 2], [1, 2, 0]])
    values = np.array([[1.0, np.nan, 4.0], [3.0, 6.0, 100.0]])
    assert zonal_sum(values, labels, [1, 2]).tolist() == [4.0, 10.0]
    assert zonal_mean(values, labels, [1, 2, 3]).tolist()[:2] == [2.0, 5.0]
    assert math.isnan(zonal_mean(values, labels, [1, 2, 3])[2])  # a unit without pixels
    classes = np.array([[1, 255, 1], [3, 2, 1]], dtype=np.uint8)
    assert zonal_share(classes, labels, [1, 2], (1,), 255).tolist() == [0.5, 0.5]


def test_unit_indicators_population_trends_and_what_is_not_evaluated():
    labels = np.array([[1, 1], [2, 2]])
    first = np.array([[10.0, 10.0], [5.0, 5.0]])
    last = np.array([[8.0, 8.0], [6.0, 6.0]])
    df, evaluation = unit_indicators(
        labels,
        [1, 2],
        pixel_area_m2=250_000.0,
        population=(first, last),
        trend_slope=np.array([[0.01, 0.03], [-0.01, 0.0]]),
        trend_class=np.array([[1, 1], [5, 3]], dtype=np.uint8),
        rd_grades=(np.array([[3, 2], [0, 1]], np.uint8), np.array([[1, 2], [2, 1]], np.uint8)),
        reasons={"services": "stage services does not run for region r"},
    )
    assert df["area_km2"].tolist() == [0.5, 0.5]
    assert df["population_start"].tolist() == [20.0, 10.0] and df["population_end"].tolist() == [16.0, 12.0]
    assert df["population_rate"].tolist() == pytest.approx([-0.2, 0.2])
    assert df["rural_density_per_km2"].tolist() == pytest.approx([32.0, 24.0])
    assert df["ndvi_slope_mean"].tolist() == pytest.approx([0.02, -0.005])
    assert df["greening_share"].tolist() == [1.0, 0.0]
    # RD (grade >= 2): township 1 from 2 px to 1 px (-25 ha), township 2 from 0 to 1 (+25 ha)
    assert df["rd_area_change_ha"].tolist() == pytest.approx([-25.0, 25.0])
    assert df["rd_grade_shift_mean"].tolist() == pytest.approx([-1.0, 1.0])
    assert evaluation["services"] == {"evaluated": False, "reason": "stage services does not run for region r"}
    assert evaluation["npp"] == {"evaluated": False, "reason": "input not given"}
    assert "npp_slope_mean" not in df and "improvement_zone_share" not in df
    with pytest.raises(ValueError, match="found both"):
        unit_indicators(labels, [1], pixel_area_m2=1.0, population=(first, last), population_table=df)


def test_a_township_table_is_distributed_to_cells_by_area_keeping_totals():
    overlap = pd.DataFrame({"unit_id": [1, 1, 2], "township_id": [10, 20, 20], "area_km2": [2.0, 1.0, 3.0]})
    pop = pd.DataFrame(
        {
            "township_id": [10, 20],
            "population_start": [100.0, 400.0],
            "population_end": [50.0, 400.0],
            "rural_share": [1.0, 0.5],
        }
    )
    cells = population_by_area(overlap, pop, {10: 2.0, 20: 4.0})
    assert cells["population_start"].tolist() == [200.0, 300.0]
    assert cells["population_end"].tolist() == [150.0, 300.0]
    assert cells["population_start"].sum() == pop["population_start"].sum()
    assert cells["rural_share"].tolist() == pytest.approx([(50.0 * 1.0 + 100.0 * 0.5) / 150.0, 0.5])


def test_add_coupling_by_hand_and_records_dropped_indicators():
    df = pd.DataFrame(
        {
            "population_rate": [-0.3, 0.0, 0.1],
            "rural_density_per_km2": [100.0, 300.0, 200.0],
            "ndvi_slope_mean": [0.004, 0.0, -0.002],
            "greening_share": [0.5, 0.5, 0.5],  # constant: left out
        }
    )
    out, record = add_coupling(
        df,
        social={"positive": ["population_rate", "rural_density_per_km2"]},
        ecological={"positive": ["ndvi_slope_mean", "greening_share", "npp_slope_mean"]},
    )
    u1 = np.array([(0 + 0) / 2, (0.75 + 1) / 2, (1 + 0.5) / 2])
    u2 = np.array([1.0, 2 / 6, 0.0])
    assert out["U1"].tolist() == pytest.approx(u1) and out["U2"].tolist() == pytest.approx(u2)
    c = 2 * np.sqrt(u1 * u2) / (u1 + u2)
    t = 0.5 * u1 + 0.5 * u2
    assert out["C"].tolist() == pytest.approx(c) and out["D"].tolist() == pytest.approx(np.sqrt(c * t))
    assert out["D_class"].tolist()[0] == "extreme disorder"  # U1 = 0: C = 0, D = 0
    assert out["coupling_type"].tolist() == ["depopulating-greening", "stable-stagnant", "growing-degrading"]
    assert record["ecological"]["dropped"] == {
        "greening_share": "no variance between units (min-max normalisation undefined)",
        "npp_slope_mean": "not evaluated (its input is missing)",
    }
    assert record["social"]["weights"] == {"population_rate": 0.5, "rural_density_per_km2": 0.5}


# --- the population inputs ---


def _table():
    return pd.DataFrame(
        {
            "XZ": [1, 1, 2, 2],
            "NIAN": [2000, 2023, 2000, 2023],
            "CZRK": [100.0, 80.0, 50.0, 55.0],
            "NCBL": [0.9, 0.8, 0.7, 0.6],
        }
    )


def test_population_table_with_the_owners_column_names():
    entry = input_spec(
        "r",
        "population_table",
        {"path": "t.csv", "columns": {"township_id": "XZ", "year": "NIAN", "resident": "CZRK", "rural_share": "NCBL"}},
    )
    table = harmonise_table(_table(), "population_table", entry, "t.csv")
    assert {"township_id", "year", "resident", "rural_share"} <= set(table.columns)
    check_population_table(
        table, source="t.csv", years=range(2000, 2024), township_ids=[1, 2], columns=entry["columns"]
    )
    bad = _table().assign(CZRK=[100.0, -1.0, 50.0, 55.0])
    with pytest.raises(InputError, match=r"t.csv \(input population_table\), column resident: 1 row\(s\) below"):
        harmonise_table(bad, "population_table", entry, "t.csv")
    share = _table().assign(NCBL=[0.9, 1.5, 0.7, 0.6])
    with pytest.raises(InputError, match="rural_share: 1 row.* above the maximum 1"):
        harmonise_table(share, "population_table", entry, "t.csv")


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda t: t.assign(year=[1999, 2023, 2000, 2030]),
            r"column NIAN: expected years of the region \(2000..2023\); "
            r"found 2 row\(s\) with year\(s\) outside: 1999, 2030",
        ),
        (
            lambda t: t.assign(year=[2000, 2000, 2000, 2023]),
            r"columns XZ and NIAN: expected one row per township and year; "
            r"found 2 rows of 1 duplicate township-year\(s\): 1/2000",
        ),
        (
            lambda t: t.assign(township_id=[1, 1, 7, 7]),
            r"column XZ: expected township ids of towns.gpkg \(1, 2\); found 2 row\(s\) of unknown id\(s\): 7",
        ),
    ],
)
def test_population_table_checks_name_file_column_and_rows(change, match):
    table = change(_table().rename(columns={"XZ": "township_id", "NIAN": "year", "CZRK": "resident"}))
    with pytest.raises(InputError, match=match):
        check_population_table(
            table,
            source="t.csv",
            years=range(2000, 2024),
            township_ids=[1, 2],
            columns={"township_id": "XZ", "year": "NIAN"},
            townships_source="towns.gpkg",
        )


def test_population_cube_spec_and_range():
    import xarray as xr

    spec = INPUTS["population"]
    assert spec.kind == "cube" and spec.variables == ("population",) and spec.leading_dims == ("year",)
    assert VARIABLE_RANGES["population"].units == "persons" and VARIABLE_RANGES["population"].minimum == 0.0
    ds = xr.Dataset({"population": (("year", "y", "x"), -np.ones((2, 2, 2)))})
    with pytest.raises(InputError, match="p.nc, variable population: expected values >= 0 persons"):
        check_variables(ds, source="p.nc", required=("population",))


# --- the demo's planted population ---


def test_demo_population_plants_the_coefficient_on_the_cells():
    from karstflow.demo import generate
    from karstflow.grid import RegionGrid, demo_bounds

    grid = RegionGrid.from_bounds("EPSG:32648", 30, demo_bounds([600000, 2800000], 80, 30))
    bundle = generate("karst", grid, 7)
    planted = bundle.planted["population"]
    assert planted["beta"] == -0.02 and planted["cell_size_m"] == 240.0 and planted["cells"] == 110
    # OLS of the planted cell NDVI slope on (1, rate, slope) gives beta exactly, slope 0
    assert planted["ols_check"][1] == pytest.approx(-0.02, abs=1e-12)
    assert planted["ols_check"][2] == pytest.approx(0.0, abs=1e-12)
    cube = bundle.cubes["population.nc"]["population"]
    assert cube.dims == ("year", "y", "x") and float(cube.min()) > 0
    labels, _, _ = cell_labels(grid.shape, 30.0, 240.0)
    start = zonal_sum(cube.isel(year=0).values, labels, range(1, 111))
    end = zonal_sum(cube.isel(year=-1).values, labels, range(1, 111))
    assert (end / start - 1).min() == pytest.approx(planted["rate_range"][0], rel=1e-5)
    table = bundle.tables["population_townships.csv"]
    assert list(table.columns) == ["XZ_CODE", "NIAN", "CZRK", "HJRK", "NCRK_BL"]
    assert len(table) == 24 * table["XZ_CODE"].nunique()
    assert table.groupby("NIAN")["CZRK"].sum().iloc[0] == pytest.approx(float(cube.isel(year=0).sum()), rel=1e-4)


# --- the worldpop stage (Earth Engine regions) ---


def test_worldpop_stage_provides_population_for_earth_engine_regions_only():
    from karstflow.stages import EARTHENGINE_SOURCE, REMOTE_SOURCE, layer_path, plan_region

    remote = {"dem", "imagery", REMOTE_SOURCE, EARTHENGINE_SOURCE, "townships", "annual_stack"}
    plan = plan_region(remote)
    assert plan["worldpop"].runs and plan["coupling"].runs
    assert layer_path(plan, "coupling", "population") == "population/population.nc"
    # the region's own population input wins over WorldPop
    own = plan_region(remote | {"population"})
    assert layer_path(own, "coupling", "population") == "inputs/population.nc"
    # a STAC region has no WorldPop: a table is needed
    stac = plan_region(remote - {EARTHENGINE_SOURCE})
    assert not stac["worldpop"].runs and not stac["coupling"].runs
    assert "an Earth Engine source" in stac["worldpop"].reason
    table = plan_region(remote - {EARTHENGINE_SOURCE} | {"population_table"})
    assert table["coupling"].runs and layer_path(table, "coupling", "population") is None
    # without townships WorldPop is not pulled
    assert not plan_region(remote - {"townships"})["worldpop"].runs


def test_population_worldpop_script_turns_the_density_into_persons_per_pixel(tmp_path, monkeypatch, project_root):
    """The rule's script on cached density tiles of a fake source (the Earth Engine request
    itself is tested offline in tests/test_ee_products.py and test_sources_earthengine.py)."""
    import rasterio
    import xarray as xr

    from karstflow.grid import RegionGrid
    from karstflow.io import write_json
    from karstflow.runtime import Files, Params, load_script

    grid = RegionGrid("EPSG:32648", 30.0, (600000.0, 2800000.0, 600000.0 + 4 * 30, 2800000.0 + 3 * 30))
    write_json(grid.to_dict(), tmp_path / "grid.json")

    class Source:
        def population(self, year, g, country="CHN"):
            path = tmp_path / f"pop_{year}.tif"
            data = np.full((1, *g.shape), 250.0 + (year - 2000), dtype=np.float32)
            data[0, 0, 0] = np.nan  # no WorldPop value: 0 persons
            profile = {
                "driver": "GTiff",
                "width": g.width,
                "height": g.height,
                "count": 1,
                "dtype": "float32",
                "crs": g.crs,
                "transform": g.transform,
                "nodata": float("nan"),
            }
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(data)
                dst.set_band_description(1, "population_density")
            return [str(path)]

    script = load_script(project_root / "workflow" / "scripts" / "population_worldpop.py")
    monkeypatch.setattr(script, "get_source", lambda *a, **k: Source())
    out = Files(cube=str(tmp_path / "population.nc"), summary=str(tmp_path / "population.json"))
    script.main(
        Files(grid=str(tmp_path / "grid.json")),
        out,
        Params(region={"source": "earthengine"}, imagery={}, years=[2000, 2020], country="CHN"),
        Params(region="r"),
    )
    with xr.open_dataset(out.cube) as ds:
        pop = ds["population"].load()
    assert pop.dims == ("year", "y", "x") and pop["year"].values.tolist() == [2000, 2020]
    # 250 persons km-2 on a 30 m pixel (0.0009 km2) is 0.225 persons; the empty pixel 0
    assert float(pop.sel(year=2000)[1, 1]) == pytest.approx(0.225)
    assert float(pop.sel(year=2000)[0, 0]) == 0.0
    summary = json.loads((tmp_path / "population.json").read_text())
    assert summary["total_persons"]["2020"] == pytest.approx(270.0 * 0.0009 * 11, rel=1e-5)
    assert summary["pixels_without_value"] == {"2000": 1, "2020": 1}
