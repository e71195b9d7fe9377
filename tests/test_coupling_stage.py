"""The coupling stage on the karst demo (issue 16): the planted population effect on the
NDVI trend recovered by the spatial regression, the OLS residuals' autocorrelation, the
coupling coordination degree by hand on two townships, the results contract, what is not
evaluated, and the township table with the owner's own column names through the inputs
mapping (the inputs_table script's main() on a generated demo, without Snakemake)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml

KARST = "demo-karst"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def coupling(karst_demo_run):
    root = karst_demo_run / "results" / KARST / "coupling"
    return {
        "root": root,
        "statistics": _json(root / "coupling_statistics.json"),
        "record": _json(root / "coupling_units.json"),
        "townships": pd.read_csv(root / "coupling_townships.csv"),
        "cells": gpd.read_file(root / "coupling_cells.gpkg"),
        "planted": _json(karst_demo_run / "resources" / "demo" / KARST / "PLANTED.json")["population"],
        "config": yaml.safe_load((karst_demo_run / "config" / "config.yaml").read_text()),
    }


@pytest.mark.e2e
def test_the_spatial_regression_recovers_the_planted_coefficient_within_its_interval(coupling):
    planted, stats = coupling["planted"], coupling["statistics"]
    assert coupling["config"]["coupling"]["cell_size_m"] == planted["cell_size_m"]
    reg = stats["regression"]
    assert reg["evaluated"] and reg["dependent"] == planted["dependent"]
    assert reg["explanatory"] == planted["explanatory"]
    # the planted residual is autocorrelated: the LM tests call for a spatial model
    assert reg["model"] in ("ML_Error", "ML_Lag"), reg["reason"]
    coef = reg["coefficients"]["population_rate"]
    assert coef["ci_low"] <= planted["beta"] <= coef["ci_high"], (planted["beta"], coef)
    assert coef["ci_high"] < 0  # and the interval excludes no association
    assert reg["confidence_level"] == pytest.approx(0.95)
    # the non-spatial OLS does not account for the autocorrelation: its residuals are clustered
    moran = reg["ols_residual_moran"]
    assert moran["I"] > 0 and moran["p"] < 0.05
    assert stats["caveat"].startswith("These statistics measure association across space, not cause")


@pytest.mark.e2e
def test_moran_gwr_and_the_levels_are_recorded(coupling):
    stats = coupling["statistics"]
    cells = stats["levels"]["cells"]
    assert cells["evaluated"] and cells["n"] == coupling["planted"]["cells"]
    assert cells["moran"]["variables"]["ndvi_slope_mean"]["p_norm"] < 0.05
    # the demo has two townships: too few for spatial statistics, recorded with the reason
    towns = stats["levels"]["townships"]
    assert not towns["evaluated"] and "fewer than coupling.min_units" in towns["reason"]
    gwr = stats["gwr"]
    assert gwr["evaluated"] and gwr["bandwidth"] > 0 and "population_rate" in gwr["local_coefficients"]
    assert stats["local_moran"] == {"evaluated": False, "reason": "config coupling.local_moran: false"}


@pytest.mark.e2e
def test_coupling_degree_by_hand_on_two_townships(coupling):
    towns, record = coupling["townships"], coupling["record"]["townships"]["coupling"]
    assert len(towns) >= 2
    two = towns.iloc[:2]
    a, b = record["a"], record["b"]
    for _, t in two.iterrows():
        u1, u2 = t["U1"], t["U2"]
        c = 2 * np.sqrt(u1 * u2) / (u1 + u2) if u1 + u2 > 0 else 0.0
        tt = a * u1 + b * u2
        assert t["C"] == pytest.approx(c) and t["T"] == pytest.approx(tt)
        assert t["D"] == pytest.approx(np.sqrt(c * tt))
        band = min(int(t["D"] * 10), 9)
        labels = [
            "extreme disorder",
            "severe disorder",
            "moderate disorder",
            "mild disorder",
            "on the verge of disorder",
            "barely coordinated",
            "primary coordination",
            "intermediate coordination",
            "good coordination",
            "high-quality coordination",
        ]
        assert t["D_class"] == labels[band]
    # U1 and U2 from the raw indicators: min-max over the townships, weighted mean
    for key, name in (("U1", "social"), ("U2", "ecological")):
        sub = record[name]
        assert sub["evaluated"]
        score = np.zeros(len(towns))
        for col in sub["positive"] + sub["negative"]:
            x = towns[col].to_numpy(dtype=float)
            norm = (x - x.min()) / (x.max() - x.min())
            if col in sub["negative"]:
                norm = 1 - norm
            score += sub["weights"][col] * norm
        assert towns[key].to_numpy() == pytest.approx(score)
    # the population columns from the owner's table: rate = (end - start) / start
    rate = (two["population_end"] - two["population_start"]) / two["population_start"]
    assert two["population_rate"].to_numpy() == pytest.approx(rate.to_numpy())


@pytest.mark.e2e
def test_the_tables_hold_every_indicator_and_the_summary_the_headline(coupling, karst_demo_run):
    towns, cells = coupling["townships"], coupling["cells"]
    wanted = [
        "population_start",
        "population_end",
        "population_change",
        "population_rate",
        "rural_density_per_km2",
        "ndvi_slope_mean",
        "greening_share",
        "rd_area_change_ha",
        "rd_grade_shift_mean",
        "npp_slope_mean",
        "improvement_zone_share",
        "U1",
        "U2",
        "C",
        "T",
        "D",
        "D_class",
        "coupling_type",
    ]
    for table in (towns, cells):
        missing = [c for c in wanted if c not in table.columns]
        assert not missing
        assert any(c.endswith("_change_mean") for c in table.columns)  # service changes
    assert towns["township_id"].is_unique and len(cells) == coupling["planted"]["cells"]
    assert cells.crs is not None and cells.crs.to_epsg() == 32648
    record = coupling["record"]
    assert record["population"]["townships_from"] == "table"
    assert record["population"]["cells_from"].startswith("grid")
    assert all(r["evaluated"] for r in record["townships"]["evaluation"].values())
    summary = _json(karst_demo_run / "results" / KARST / "summary.json")["coupling"]
    assert summary["regression"]["model"] == coupling["statistics"]["regression"]["model"]
    assert summary["caveat"] == "association, not cause"
    plan = _json(karst_demo_run / "results" / KARST / "plan.json")
    assert plan["stages"]["coupling"]["runs"] if "stages" in plan else plan["coupling"]["runs"]
    for fig in ("coupling_types", "gwr_coefficients", "moran_scatter"):
        assert (coupling["root"] / "figures" / f"{fig}.png").stat().st_size > 1000


def _coupling_units_main(run: Path, project_root: Path, tmp_path: Path, **population: str):
    """coupling_units' script, the inputs it needs from ``run`` (the population input named
    by the one keyword: population_table or population, a file under inputs/), outputs in
    ``tmp_path``."""
    from karstflow.runtime import Files, load_script

    script = load_script(project_root / "workflow" / "scripts" / "coupling_units.py")
    res = run / "results" / KARST
    inputs = Files(
        grid=str(res / "grid.json"),
        townships=str(res / "inputs" / "townships.gpkg"),
        trend_slope=str(res / "greening" / "trend_slope.tif"),
        trend_class=str(res / "greening" / "trend_class.tif"),
        **{key: str(res / "inputs" / name) for key, name in population.items()},
    )
    outputs = Files(townships=str(tmp_path / "t.csv"), cells=str(tmp_path / "c.gpkg"), record=str(tmp_path / "r.json"))
    return script, inputs, outputs


@pytest.mark.e2e
def test_a_region_without_the_services_stage_records_them_as_not_evaluated(karst_demo_run, tmp_path, project_root):
    """coupling_units' main() with the inputs of a region whose services (and NPP) stage does
    not run: the columns are absent and the record says why, nothing is dropped silently."""
    from karstflow.runtime import Params

    script, inputs, outputs = _coupling_units_main(
        karst_demo_run, project_root, tmp_path, population_table="population_table.csv"
    )
    config = yaml.safe_load((karst_demo_run / "config" / "config.yaml").read_text())
    reason = "stage services does not run for region demo-karst (not requested in stages; missing inputs: -)"
    params = Params(
        cell_size_m=config["coupling"]["cell_size_m"],
        years={"first": 2000, "last": 2023},
        not_evaluated={"services": reason, "improvement_zones": reason, "npp": "stage npp does not run"},
        social={"positive": ["population_rate", "rural_density_per_km2"], "negative": []},
        ecological={"positive": ["ndvi_slope_mean", "greening_share", "npp_slope_mean"], "negative": []},
        indicator_weights="equal",
        weights={"a": 0.5, "b": 0.5},
        classes="ten",
        types={"pop_threshold": 0.05, "greening_threshold": 0.0005},
        rd_min_grade=2,
        greening_classes=[1],
        improvement_codes=[2, 3],
    )
    script.main(inputs, outputs, params, Params(region=KARST))
    record = _json(tmp_path / "r.json")
    evaluation = record["townships"]["evaluation"]
    assert evaluation["services"] == {"evaluated": False, "reason": reason}
    assert evaluation["npp"] == {"evaluated": False, "reason": "stage npp does not run"}
    assert record["townships"]["coupling"]["ecological"]["dropped"] == {
        "npp_slope_mean": "not evaluated (its input is missing)"
    }
    towns = pd.read_csv(tmp_path / "t.csv")
    assert "improvement_zone_share" not in towns and "npp_slope_mean" not in towns
    # cells from the table alone: distributed by area, which the record says
    assert record["population"]["cells_from"].startswith("township table distributed by area")
    cells = gpd.read_file(tmp_path / "c.gpkg")
    assert cells["population_start"].sum() == pytest.approx(towns["population_start"].sum(), rel=1e-6)


def test_the_township_table_with_the_owners_column_names_through_the_inputs_mapping(tmp_path, project_root):
    """The demo's yearbook table (XZ_CODE, NIAN, CZRK, HJRK, NCRK_BL) through the config's
    columns mapping and the inputs_table script, as the inputs rule runs it."""
    from karstflow.demo import generate
    from karstflow.grid import RegionGrid, demo_bounds
    from karstflow.inputs import input_spec
    from karstflow.io import write_vector
    from karstflow.runtime import Files, Params, load_script

    config = yaml.safe_load((project_root / "config" / "config.yaml").read_text())
    raw = config["regions"][KARST]["inputs"]["population_table"]
    assert raw["columns"]["resident"] == "CZRK"  # the owner's names, mapped in the config
    grid = RegionGrid.from_bounds("EPSG:32648", 30, demo_bounds([600000, 2800000], 80, 30))
    bundle = generate("karst", grid, 7)
    source = tmp_path / "population_townships.csv"
    bundle.tables["population_townships.csv"].to_csv(source, index=False)
    townships = tmp_path / "townships.gpkg"
    write_vector(bundle.vectors["townships.gpkg"], townships)
    entry = dict(input_spec(KARST, "population_table", {**raw, "path": str(source)}))
    entry["region_years"] = list(range(2000, 2024))
    script = load_script(project_root / "workflow" / "scripts" / "inputs_table.py")
    out = tmp_path / "population_table.csv"
    script.main(
        Files(source=[str(source)], landcover=[], townships=[str(townships)]),
        Files(table=str(out)),
        Params(entry=entry),
        Params(region=KARST, layer="population_table"),
    )
    table = pd.read_csv(out)
    assert {"township_id", "year", "resident", "registered", "rural_share"} <= set(table.columns)
    assert len(table) == 24 * bundle.vectors["townships.gpkg"].shape[0]
    # a township id that is not in the layer: named with the owner's column
    bad = bundle.tables["population_townships.csv"].copy()
    bad.loc[0, "XZ_CODE"] = 99
    bad.to_csv(source, index=False)
    from karstflow.inputs import InputError

    with pytest.raises(InputError, match=r"column XZ_CODE: expected township ids of .*townships.gpkg.*99"):
        script.main(
            Files(source=[str(source)], landcover=[], townships=[str(townships)]),
            Files(table=str(tmp_path / "bad.csv")),
            Params(entry=entry),
            Params(region=KARST, layer="population_table"),
        )
    assert not (tmp_path / "bad.csv").exists()


@pytest.mark.e2e
def test_local_moran_of_the_cells_when_configured(karst_demo_run, tmp_path, project_root):
    """coupling_statistics' main() with coupling.local_moran on (off in the demo config, as
    esda compiles its numba kernels on the first call): the cluster counts are recorded and
    the figures written; without GWR its record says why."""
    from karstflow.runtime import Files, Params, load_script

    script = load_script(project_root / "workflow" / "scripts" / "coupling_statistics.py")
    res = karst_demo_run / "results" / KARST
    outputs = Files(
        statistics=str(tmp_path / "s.json"),
        summary=str(tmp_path / "c.json"),
        types_map=str(tmp_path / "types.png"),
        gwr_map=str(tmp_path / "gwr.png"),
        moran_scatter=str(tmp_path / "moran.png"),
    )
    inputs = Files(
        cells=str(res / "coupling" / "coupling_cells.gpkg"),
        townships_table=str(res / "coupling" / "coupling_townships.csv"),
        record=str(res / "coupling" / "coupling_units.json"),
        townships=str(res / "inputs" / "townships.gpkg"),
    )
    params = Params(
        spatial_weights={"kind": "queen", "k": 6},
        alpha=0.05,
        permutations=99,
        seed=0,
        regression={"dependent": "ndvi_slope_mean", "explanatory": ["population_rate", "slope_mean"]},
        gwr=False,
        local_moran=True,
        min_units=10,
    )
    script.main(inputs, outputs, params, Params(region=KARST))
    stats = _json(tmp_path / "s.json")
    clusters = stats["local_moran"]["clusters"]
    assert set(clusters) == {"ndvi_slope_mean", "population_rate"}
    assert sum(clusters["ndvi_slope_mean"].values()) == len(coupling_cells(res))
    assert clusters["ndvi_slope_mean"].get("HH", 0) + clusters["ndvi_slope_mean"].get("LL", 0) > 0
    assert stats["gwr"] == {"evaluated": False, "reason": "config coupling.gwr: false"}
    assert (tmp_path / "gwr.png").stat().st_size > 1000  # a note figure


def coupling_cells(res: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(res / "coupling" / "coupling_cells.gpkg")


@pytest.mark.e2e
def test_townships_from_the_grid_alone_agree_with_the_table(karst_demo_run, tmp_path, project_root, coupling):
    """coupling_units' main() with the gridded population only: townships then sum its
    pixels, which for the demo (whose table is those sums) gives the table's figures."""
    from karstflow.runtime import Params

    script, inputs, outputs = _coupling_units_main(karst_demo_run, project_root, tmp_path, population="population.nc")
    cfg = coupling["config"]["coupling"]
    params = Params(
        cell_size_m=cfg["cell_size_m"],
        years={"first": 2000, "last": 2023},
        not_evaluated={},
        social={"positive": ["population_rate"], "negative": []},
        ecological={"positive": ["ndvi_slope_mean"], "negative": []},
        indicator_weights="equal",
        weights={"a": 0.5, "b": 0.5},
        classes="five",
        types={"pop_threshold": 0.05, "greening_threshold": 0.0005},
        rd_min_grade=2,
        greening_classes=[1],
        improvement_codes=[2, 3],
    )
    script.main(inputs, outputs, params, Params(region=KARST))
    record = _json(tmp_path / "r.json")
    assert record["population"]["townships_from"] == "grid"
    assert record["population"]["grid"] == {
        "file": inputs.population,
        "first_year": 2000,
        "last_year": 2023,
    }
    grid_towns = pd.read_csv(tmp_path / "t.csv").set_index("township_id")
    table_towns = coupling["townships"].set_index("township_id")
    for col in ("population_start", "population_end"):
        assert grid_towns[col].to_numpy() == pytest.approx(table_towns[col].to_numpy(), rel=1e-4)
    # without a rural share every resident counts in the density
    assert (grid_towns["rural_density_per_km2"] > table_towns["rural_density_per_km2"]).all()
    assert set(grid_towns["D_class"]) <= {
        "severely uncoordinated",
        "moderately uncoordinated",
        "basically coordinated",
        "moderately coordinated",
        "highly coordinated",
    }
