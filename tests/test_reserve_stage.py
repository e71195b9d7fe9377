"""End-to-end: reserve farmland, grain capacity and the swap plan on the tiny county demo.

One module-scoped Snakemake run of the county region builds what the stages need (the
karst region is dropped from the config, and the model takes the study's four
convenience rules from the config instead of searching them: the tiny demo's 400 parcels
are too few for the search to pass its tests, and a rules file without rules would leave
the convenience factor "not evaluated", which tests/test_reserve.py covers). The
bad-input cases rerun only the reserve and capacity rules in copies of that run.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml

from karstflow.reserve import FACTORS

pytestmark = pytest.mark.e2e

REGION = "demo-county"
FIGURES = (
    f"results/{REGION}/reserve/figures/reclaimable_by_type.png",
    f"results/{REGION}/reserve/figures/failing_factor.png",
    f"results/{REGION}/capacity/figures/swap_plan.png",
)
TARGETS = (*FIGURES, f"results/{REGION}/reserve/reserve.json", f"results/{REGION}/capacity/capacity.json")
STUDY_RULES = [
    "x1_elevation_m > 130 and x10_area_ha < 0.2",
    "x6_population_density_per_km2 < 400 and x10_area_ha < 0.2",
    "x5_farmland_distance_m > 40 and x10_area_ha < 0.2",
    "x1_elevation_m > 110 and x5_farmland_distance_m > 70",
]


def county_only(config):
    config["regions"] = {REGION: config["regions"][REGION]}
    config["model"] = {**(config.get("model") or {}), "rules": STUDY_RULES}


@pytest.fixture(scope="module")
def county_run(workflow_runner, tmp_path_factory):
    workdir = workflow_runner.copy(tmp_path_factory.mktemp("county"), county_only)
    workflow_runner.run(workdir, *TARGETS)
    return workdir


def results(workdir, *parts):
    return workdir.joinpath("results", REGION, *parts)


def read_json(path):
    return json.loads(path.read_text())


def test_every_forest_polygon_is_evaluated_with_its_first_failing_factor(county_run):
    forest = gpd.read_file(county_run / "resources" / "demo" / REGION / "forest.gpkg")
    out = gpd.read_file(results(county_run, "reserve", "reclaimable_forest.gpkg"))
    assert len(out) == len(forest) and set(out["forest_id"]) == set(forest["forest_id"])
    values = out[list(FACTORS)].to_numpy()
    assert set(np.unique(values)) <= {"pass", "fail", "not evaluated"}
    fails = values == "fail"
    assert (out["reclaimable"].to_numpy() == (~fails.any(axis=1))).all()
    first = [next((f for f, bad in zip(FACTORS, row, strict=True) if bad), "") for row in fails]
    assert out["first_failing_factor"].fillna("").tolist() == first
    np.testing.assert_allclose(out["area_ha"], out.geometry.area / 1e4)
    assert {"forest_type", "township", "carbon_mg_ha"} <= set(out.columns)
    # on the demo every layer exists: nothing may go unevaluated
    assert (values != "not evaluated").all()
    # the demo plants a failure of every soil factor in some unit, and a red line
    assert (out["redline"] == "fail").any() and (out["convenience"] == "fail").any()

    table = pd.read_csv(results(county_run, "reserve", "reserve_summary.csv"))
    total = table[table["grouping"] == "all"].iloc[0]
    assert total["candidate_area_ha"] == pytest.approx(out["area_ha"].sum())
    assert total["reclaimable_area_ha"] == pytest.approx(out.loc[out["reclaimable"] == 1, "area_ha"].sum())
    for grouping in ("forest_type", "township"):
        part = table[table["grouping"] == grouping]
        assert part["reclaimable_area_ha"].sum() == pytest.approx(total["reclaimable_area_ha"])
        assert part["share_of_reclaimable"].sum() == pytest.approx(1.0)


def test_convenience_applies_the_models_rules_to_the_forest_drivers(county_run):
    from karstflow.conditions import inconvenient
    from karstflow.drivers import compute_drivers
    from karstflow.io import read_raster

    demo = county_run / "resources" / "demo" / REGION
    rules = [r["rule"] for r in read_json(results(county_run, "model", "convenience_rules.json"))["rules"]]
    assert rules == STUDY_RULES
    forest = gpd.read_file(demo / "forest.gpkg")
    drivers = compute_drivers(
        forest,
        dem=read_raster(results(county_run, "terrain", "dem.tif")),
        slope_deg=read_raster(results(county_run, "terrain", "slope.tif")),
        aspect_class=read_raster(results(county_run, "terrain", "aspect_class.tif")),
        **{name: gpd.read_file(demo / f"{name}.gpkg") for name in ("settlements", "roads", "farmland", "villages")},
        grades=gpd.read_file(demo / "quality_grades.gpkg"),
        id_column="forest_id",
    )
    out = gpd.read_file(results(county_run, "reserve", "reclaimable_forest.gpkg")).set_index("forest_id")
    expected = np.where(inconvenient(drivers, rules), "fail", "pass")
    assert out.loc[drivers["forest_id"], "convenience"].tolist() == expected.tolist()
    # the slope factor reads the slope as driver x2 does
    np.testing.assert_allclose(out.loc[drivers["forest_id"], "slope_mean_deg"], drivers["x2_slope_deg"])


def test_lost_capacity_matches_an_independent_calculation(county_run):
    demo = county_run / "resources" / "demo" / REGION
    parcels = gpd.read_file(results(county_run, "abandonment", "parcels.gpkg"))
    grades = gpd.read_file(demo / "quality_grades.gpkg")
    lost = parcels[parcels["abandoned"] == 1]
    # area-weighted utilization grade of each abandoned parcel by a geopandas overlay
    pieces = gpd.overlay(lost[["parcel_id", "geometry"]], grades[["utilization_grade", "geometry"]], how="intersection")
    pieces["a"] = pieces.area
    pieces["ga"] = pieces["utilization_grade"] * pieces["a"]
    sums = pieces.groupby("parcel_id")[["ga", "a"]].sum()
    per_parcel = sums["ga"] / sums["a"]
    area_ha = lost.set_index("parcel_id").area / 1e4
    expected_t = float(((16 - per_parcel) * area_ha.loc[per_parcel.index] * 15 * 100).sum()) / 1000
    capacity = read_json(results(county_run, "capacity", "capacity.json"))
    assert capacity["lost_t"] == pytest.approx(expected_t, rel=1e-9)
    assert capacity["lost_area_ha"] == pytest.approx(float(area_ha.sum()))
    # the same from the driver stage's x8 (area-weighted utilization grade) and x10 (ha)
    drivers = (
        pd.read_csv(results(county_run, "drivers", "parcel_drivers.csv")).set_index("parcel_id").loc[lost["parcel_id"]]
    )
    assert capacity["lost_t"] == pytest.approx(
        float(((16 - drivers["x8_utilization_grade"]) * drivers["x10_area_ha"] * 1.5).sum()), rel=1e-6
    )
    table = pd.read_csv(results(county_run, "capacity", "capacity_summary.csv")).set_index(["account", "forest_type"])
    assert table.loc[("lost", "all"), "capacity_t"] == pytest.approx(capacity["lost_t"])
    by_type = {k: v for (acc, k), v in table["capacity_t"].items() if acc == "activated" and k != "all"}
    assert by_type == pytest.approx(capacity["activated_t_by_forest_type"])
    assert sum(by_type.values()) == pytest.approx(capacity["activated_t"])


def test_swap_plan_is_the_least_area_covering_the_loss(county_run):
    capacity = read_json(results(county_run, "capacity", "capacity.json"))
    plan = gpd.read_file(results(county_run, "capacity", "swap_plan.gpkg"))
    out = gpd.read_file(results(county_run, "reserve", "reclaimable_forest.gpkg"))
    reclaimable = out[out["reclaimable"] == 1]
    assert set(plan["forest_id"]) <= set(reclaimable["forest_id"])
    assert capacity["planned_area_ha"] == pytest.approx(plan["area_ha"].sum())
    assert capacity["planned_t"] == pytest.approx(plan["capacity_t"].sum())
    assert capacity["cost_kind"] == "area" and capacity["cost"] == pytest.approx(plan["area_ha"].sum())
    assert capacity["solver"] == "milp" and capacity["solver_status"] == "optimal"
    if not capacity["covered"]:
        pytest.fail(f"the demo's reclaimable forest should cover the loss: {capacity}")
    assert capacity["planned_t"] >= capacity["lost_t"] * (1 - 1e-7)
    # Brute force over the reclaimable patches: capacity of each from its nearest grade.
    from karstflow.capacity import grain_capacity_kg, nearest_grade, polygon_grades

    demo = county_run / "resources" / "demo" / REGION
    grades = gpd.read_file(demo / "quality_grades.gpkg")
    parcels = gpd.read_file(results(county_run, "abandonment", "parcels.gpkg"))
    cultivated = pd.concat(
        [gpd.read_file(demo / "farmland.gpkg")[["geometry"]], parcels.loc[parcels["abandoned"] == 0, ["geometry"]]]
    )
    cultivated = gpd.GeoDataFrame(cultivated, crs=grades.crs)
    near = nearest_grade(reclaimable, cultivated, polygon_grades(cultivated, grades))
    cap_t = np.asarray(grain_capacity_kg(near["grade"], reclaimable["area_ha"])) / 1000
    planned_ids = set(plan["forest_id"])
    np.testing.assert_allclose(
        cap_t[reclaimable["forest_id"].isin(planned_ids).to_numpy()].sum(), capacity["planned_t"]
    )
    area = reclaimable["area_ha"].to_numpy()
    n = len(area)
    if n > 22:
        pytest.skip(
            f"{n} reclaimable patches: too many to brute-force here (tests/test_swap.py brute-forces small cases)"
        )
    best = min(
        (area[list(s)].sum() for k in range(n + 1) for s in itertools.combinations(range(n), k)
         if cap_t[list(s)].sum() >= capacity["lost_t"]),
        default=np.inf,
    )
    assert capacity["cost"] == pytest.approx(best, rel=1e-6)
    print(f"demo swap: optimum {best:.3f} ha by brute force over {n} patches; greedy gap {capacity['greedy_gap']}")


def test_headline_figures_are_registered_for_the_region_summary(county_run, workflow_runner):
    # the job graph of the region summary: which jobs feed region_summary directly
    dot = workflow_runner.run(county_run, "--dag", "dot", "--", f"results/{REGION}/summary.json").stdout
    label = {m[0]: m[1] for m in re.findall(r'^\s*(\d+)\[label = "(\w+)', dot, flags=re.M)}
    feeding = {label[a] for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M) if label[b] == "region_summary"}
    assert {"reserve_evaluate", "capacity_plan"} <= feeding
    for png in FIGURES:
        data = (county_run / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    for rule in ("reserve_evaluate", "capacity_plan"):
        assert (county_run / "logs" / REGION / f"{rule}.log").stat().st_size > 0
        assert (county_run / "logs" / "benchmarks" / REGION / f"{rule}.tsv").exists()


def overlay(workdir, name, settings):
    """A config file over config/config.yaml (``--config`` would pass nested numbers as text)."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return ("--configfile", path.name)


def test_changing_the_cost_reruns_only_the_plan(county_run, workflow_runner):
    cost = overlay(county_run, "cost", {"capacity": {"swap": {"cost": "carbon"}}})
    assert workflow_runner.plan(county_run, *TARGETS, *cost) == {"capacity_plan": 1, "capacity_maps": 1}
    slope = overlay(county_run, "slope", {"reserve": {"slope": {"max_deg": 15}}})
    assert workflow_runner.plan(county_run, *TARGETS, *slope) == {
        "reserve_evaluate": 1, "reserve_maps": 1, "capacity_plan": 1, "capacity_maps": 1
    }


def _rerun(county_run, tmp_path, workflow_runner, settings):
    workdir = tmp_path / "rerun"
    shutil.copytree(county_run, workdir, symlinks=True)
    workflow_runner.run(workdir, f"results/{REGION}/capacity/capacity.json", *overlay(workdir, "bad", settings))
    return workdir


def test_no_reclaimable_forest_still_writes_the_capacity_figures(county_run, tmp_path, workflow_runner):
    workdir = _rerun(county_run, tmp_path, workflow_runner, {"reserve": {"slope": {"max_deg": 0.0}}})
    out = gpd.read_file(results(workdir, "reserve", "reclaimable_forest.gpkg"))
    assert (out["reclaimable"] == 0).all() and (out["slope"] == "fail").all()
    capacity = read_json(results(workdir, "capacity", "capacity.json"))
    before = read_json(results(county_run, "capacity", "capacity.json"))
    assert capacity["lost_t"] == pytest.approx(before["lost_t"])
    assert capacity["activated_t"] == 0 and capacity["planned_t"] == 0 and capacity["planned_patches"] == 0
    assert capacity["solver_status"] == "no reclaimable forest" and not capacity["covered"]
    assert capacity["shortfall_t"] == pytest.approx(capacity["lost_t"])
    assert len(gpd.read_file(results(workdir, "capacity", "swap_plan.gpkg"))) == 0
    log = (workdir / "logs" / REGION / "capacity_plan.log").read_text()
    assert "no reclaimable forest" in log


def test_loss_beyond_all_reclaimable_forest_takes_it_all_and_says_so(county_run, tmp_path, workflow_runner):
    out = gpd.read_file(results(county_run, "reserve", "reclaimable_forest.gpkg"))
    slopes = np.sort(out.loc[out["reclaimable"] == 1, "slope_mean_deg"].to_numpy())
    # a slope limit between the two gentlest reclaimable patches leaves only the gentlest
    limit = float((slopes[0] + slopes[1]) / 2)
    workdir = _rerun(county_run, tmp_path, workflow_runner, {"reserve": {"slope": {"max_deg": limit}}})
    capacity = read_json(results(workdir, "capacity", "capacity.json"))
    assert capacity["reclaimable_area_ha"] > 0
    assert capacity["activated_t"] < capacity["lost_t"], "precondition: one patch cannot make up the loss"
    assert not capacity["covered"] and capacity["solver_status"].startswith("infeasible")
    assert capacity["planned_t"] == pytest.approx(capacity["activated_t"])
    assert capacity["shortfall_t"] == pytest.approx(capacity["lost_t"] - capacity["activated_t"])
    assert "less than the" in (workdir / "logs" / REGION / "capacity_plan.log").read_text()
