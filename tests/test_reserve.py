"""Limiting-factor evaluation: each factor on a candidate built to fail (or just pass) it."""

from __future__ import annotations

import logging

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from karstflow.grid import RegionGrid
from karstflow.reserve import (
    FACTORS,
    FAIL,
    NOT_EVALUATED,
    PASS,
    ReserveCriteria,
    ReserveInputError,
    ReserveLayers,
    criteria_from_config,
    dominant_zone,
    evaluate_reserve,
    polygon_pixel_mean,
    reserve_headline,
    reserve_summary,
    rules_from_json,
)

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 2_904_000.0
GRID = RegionGrid.from_bounds(CRS, 10, (X0, Y0 - 400, X0 + 400, Y0))
CELL = 50.0  # candidates are 50 m squares, 8 per row

# name -> (the factors it fails, overrides of the base values)
CASES: dict[str, tuple[set[str], dict]] = {
    "ok": (set(), {}),
    "in_reserve": ({"redline"}, {}),
    "slope_25": ({"slope"}, {"slope": 25.0}),
    "slope_24.99": (set(), {"slope": 24.99}),
    "cold": ({"accumulated_temperature"}, {"at": 1799.0}),
    "at_1800": (set(), {"at": 1800.0}),
    "dry_irrigated": (set(), {"precip": 350.0, "irrigated": 0.6}),
    "dry_not_irrigated": ({"water"}, {"precip": 350.0, "irrigated": 0.4}),
    "precip_400": (set(), {"precip": 400.0}),
    "gravelly": ({"texture"}, {"texture": "gravelly"}),
    "polluted": ({"pollution"}, {"polluted": True}),
    "saline_severe": ({"salinization"}, {"salinization": "severe"}),
    "saline_moderate": (set(), {"salinization": "moderate"}),
    "no_drainage": ({"drainage"}, {"drainage": False}),
    "shallow_weatherable": (set(), {"depth_cm": 20, "weatherable_bedrock": True}),
    "shallow": ({"soil_depth"}, {"depth_cm": 20, "weatherable_bedrock": False}),
    "depth_30": (set(), {"depth_cm": 30}),
    "ph_4.0": ({"ph"}, {"ph": 4.0}),
    "ph_9.5": ({"ph"}, {"ph": 9.5}),
    "ph_4.1": (set(), {"ph": 4.1}),
    "touches_reserve": (set(), {}),
    "in_park_not_excluding": (set(), {}),
    "steep_and_gravelly": ({"slope", "texture"}, {"slope": 30.0, "texture": "gravelly"}),
}
BASE = {
    "slope": 5.0, "at": 4000.0, "precip": 1500.0, "irrigated": 0.0, "texture": "Loam", "polluted": False,
    "salinization": "none", "drainage": True, "depth_cm": 80, "weatherable_bedrock": False, "ph": 5.5,
}


def box_of(k: int) -> shapely.Polygon:
    col, row = k % 8, k // 8
    x, y = X0 + col * CELL, Y0 - (row + 1) * CELL
    return shapely.box(x, y, x + CELL, y + CELL)


def scene():
    names = list(CASES)
    boxes = [box_of(k) for k in range(len(names))]
    values = [{**BASE, **CASES[n][1]} for n in names]
    slope = np.full(GRID.shape, 5.0)
    at = np.full(GRID.shape, 4000.0)
    precip = np.full(GRID.shape, 1500.0)
    for b, v in zip(boxes, values, strict=True):
        xmin, ymin, xmax, ymax = b.bounds
        rows = slice(int((Y0 - ymax) / 10), int((Y0 - ymin) / 10))
        cols = slice(int((xmin - X0) / 10), int((xmax - X0) / 10))
        slope[rows, cols], at[rows, cols], precip[rows, cols] = v["slope"], v["at"], v["precip"]
    irrigation = []
    for b, v in zip(boxes, values, strict=True):
        if v["irrigated"]:
            xmin, ymin, xmax, ymax = b.bounds
            irrigation.append(shapely.box(xmin, ymin, xmin + v["irrigated"] * CELL, ymax))
    k = {n: i for i, n in enumerate(names)}
    reserve = box_of(k["in_reserve"])
    touching = box_of(k["touches_reserve"])
    park = box_of(k["in_park_not_excluding"])
    redline = gpd.GeoDataFrame(
        {"kind": ["nature_reserve", "nature_reserve", "park"]},
        geometry=[
            shapely.box(reserve.bounds[2] - 10, reserve.bounds[3] - 10, reserve.bounds[2], reserve.bounds[3]),
            # shares the bottom edge (no candidate below it)
            shapely.box(touching.bounds[0], touching.bounds[1] - 20, touching.bounds[2], touching.bounds[1]),
            park.buffer(-5),
        ],
        crs=CRS,
    )
    soil = gpd.GeoDataFrame(
        {
            "soil_id": np.arange(101, 101 + len(names)),
            **{
                c: [v[c] for v in values]
                for c in ("texture", "polluted", "salinization", "drainage", "depth_cm", "weatherable_bedrock", "ph")
            },
        },
        geometry=boxes,
        crs=CRS,
    )
    candidates = gpd.GeoDataFrame(
        {
            "forest_id": np.arange(1, len(names) + 1),
            "name": names,
            "forest_type": ["sparse forest land" if i % 2 else "forested land" for i in range(len(names))],
            "township": ["T01" if i < 10 else "T02" for i in range(len(names))],
        },
        geometry=boxes,
        crs=CRS,
    )
    layers = ReserveLayers(
        redline=redline,
        slope_deg=GRID.data_array(slope),
        accumulated_temperature=GRID.data_array(at),
        precipitation=GRID.data_array(precip),
        irrigation=gpd.GeoDataFrame(geometry=irrigation, crs=CRS),
        soil=soil,
        rules=[],
        names={"redline": "redline.gpkg", "soil": "soil.gpkg", "convenience_rules": "convenience_rules.json"},
    )
    return candidates, layers


CRITERIA = ReserveCriteria(redline_kinds={"nature_reserve": True, "park": False})


def test_every_factor_fails_exactly_where_built_to():
    candidates, layers = scene()
    out = evaluate_reserve(candidates, layers, CRITERIA).candidates.set_index("name")
    soil_etc = [f for f in FACTORS if f != "convenience"]
    for name, (fails, _) in CASES.items():
        row = out.loc[name]
        got = {f for f in soil_etc if row[f] == FAIL}
        assert got == fails, f"{name}: failed {got}, expected {fails}"
        assert all(row[f] == PASS for f in soil_etc if f not in fails), name
        assert row["reclaimable"] == int(not fails)
        expected_first = next((f for f in FACTORS if f in fails), "")
        assert row["first_failing_factor"] == expected_first, name
    # the values behind the results
    assert out.loc["slope_25", "slope_mean_deg"] == 25.0
    assert out.loc["dry_irrigated", "irrigated_share"] == pytest.approx(0.6)
    assert out.loc["in_reserve", "redline_kinds"] == "nature_reserve"
    assert out.loc["touches_reserve", "redline_kinds"] == ""
    assert out.loc["in_park_not_excluding", "redline_kinds"] == "park"
    assert out.loc["gravelly", "soil_unit"] == 101 + list(CASES).index("gravelly")


def test_missing_layers_are_not_evaluated_never_passed(caplog):
    candidates, layers = scene()
    layers.soil = None
    layers.rules = None
    with caplog.at_level(logging.WARNING, logger="karstflow.reserve"):
        ev = evaluate_reserve(candidates, layers, CRITERIA)
    out = ev.candidates.set_index("name")
    for f in ("texture", "pollution", "salinization", "drainage", "soil_depth", "ph", "convenience"):
        assert (out[f] == NOT_EVALUATED).all(), f
        assert f in ev.not_evaluated
    assert "no soil layer (soil.gpkg)" in ev.not_evaluated["ph"]
    assert "factor ph is not evaluated" in caplog.text
    # a candidate failing no evaluated factor is reclaimable, and counted as decided with gaps
    assert out.loc["gravelly", "reclaimable"] == 1 and out.loc["gravelly", "n_not_evaluated"] == 7
    assert out.loc["slope_25", "reclaimable"] == 0
    head = reserve_headline(ev)
    assert head["reclaimable_with_not_evaluated"] == head["reclaimable"] > 0
    assert head["not_evaluated_counts"]["ph"] == len(CASES)
    assert head["factors_not_evaluated"]["convenience"] == "no convenience rules (convenience_rules.json)"


def test_or_factors_use_three_valued_logic():
    candidates, layers = scene()
    layers.irrigation = None  # dry and unknown irrigation: not evaluated, not a fail
    out = evaluate_reserve(candidates, layers, CRITERIA).candidates.set_index("name")
    assert out.loc["dry_not_irrigated", "water"] == NOT_EVALUATED
    assert out.loc["dry_irrigated", "water"] == NOT_EVALUATED
    assert out.loc["ok", "water"] == PASS
    candidates, layers = scene()
    layers.precipitation = None  # irrigated passes whatever the rain
    out = evaluate_reserve(candidates, layers, CRITERIA).candidates.set_index("name")
    assert out.loc["dry_irrigated", "water"] == PASS
    assert out.loc["ok", "water"] == NOT_EVALUATED
    candidates, layers = scene()
    layers.soil = layers.soil.drop(columns="weatherable_bedrock")
    out = evaluate_reserve(candidates, layers, CRITERIA).candidates.set_index("name")
    assert out.loc["shallow", "soil_depth"] == NOT_EVALUATED
    assert out.loc["depth_30", "soil_depth"] == PASS


def test_a_missing_soil_column_leaves_only_its_factor_unevaluated():
    candidates, layers = scene()
    layers.soil = layers.soil.drop(columns="ph")
    ev = evaluate_reserve(candidates, layers, CRITERIA)
    assert ev.not_evaluated == {
        "ph": "soil.gpkg has no column 'ph'",
        "convenience": "convenience_rules.json holds no rules",
    }
    out = ev.candidates.set_index("name")
    assert (out["ph"] == NOT_EVALUATED).all() and out.loc["gravelly", "texture"] == FAIL


def test_candidates_without_data_are_not_evaluated_there():
    candidates, layers = scene()
    layers.soil = layers.soil[layers.soil["texture"] != "gravelly"]  # two candidates lose their unit
    slope = layers.slope_deg.copy()
    slope[:5, :5] = np.nan  # the first candidate's pixels
    layers.slope_deg = slope
    out = evaluate_reserve(candidates, layers, CRITERIA).candidates.set_index("name")
    assert (out.loc["gravelly", ["texture", "pollution", "ph"]] == NOT_EVALUATED).all()
    assert out.loc["steep_and_gravelly", "texture"] == NOT_EVALUATED
    assert out.loc["ok", "slope"] == NOT_EVALUATED and np.isnan(out.loc["ok", "slope_mean_deg"])


def test_switched_off_factors_are_reported():
    candidates, layers = scene()
    ev = evaluate_reserve(candidates, layers, CRITERIA, skip={"slope": "layer switched off"})
    out = ev.candidates.set_index("name")
    assert (out["slope"] == NOT_EVALUATED).all() and ev.not_evaluated["slope"] == "layer switched off"
    assert out.loc["steep_and_gravelly", "first_failing_factor"] == "texture"
    with pytest.raises(ReserveInputError, match="unknown factor 'slopes'"):
        evaluate_reserve(candidates, layers, CRITERIA, skip={"slopes": "x"})


def test_convenience_fails_where_any_rule_holds():
    candidates, layers = scene()
    n = len(candidates)
    drivers = pd.DataFrame(
        {
            "forest_id": candidates["forest_id"],
            "x1_elevation_m": np.full(n, 100.0),
            "x6_population_density_per_km2": np.full(n, 800.0),
            "x10_area_ha": np.full(n, 0.25),
        }
    )
    drivers.loc[0, ["x1_elevation_m", "x10_area_ha"]] = [150.0, 0.1]  # rule 1 holds
    drivers.loc[1, ["x6_population_density_per_km2", "x10_area_ha"]] = [300.0, 0.1]  # rule 2 holds
    drivers.loc[2, "x1_elevation_m"] = 150.0  # elevation alone: no rule holds
    drivers.loc[3, "x6_population_density_per_km2"] = np.nan  # undecidable and nothing holds
    layers.rules = rules_from_json(
        {"source": "config", "rules": [{"rule": "x1_elevation_m > 130 and x10_area_ha < 0.2"},
                                       {"rule": "x6_population_density_per_km2 < 400 and x10_area_ha < 0.2"}]}
    )
    layers.drivers = drivers
    out = evaluate_reserve(candidates, layers, CRITERIA).candidates
    assert out["convenience"].tolist()[:4] == [FAIL, FAIL, PASS, NOT_EVALUATED]
    assert out["convenience_rule"].tolist()[:2] == [layers.rules[0], layers.rules[1]]
    assert out.loc[0, "first_failing_factor"] == "convenience"


def test_bad_rules_and_layers_name_their_file():
    candidates, layers = scene()
    layers.rules = ["x99_magic > 1"]
    layers.drivers = pd.DataFrame({"x1_elevation_m": np.zeros(len(candidates))})
    with pytest.raises(ReserveInputError, match=r"convenience_rules\.json: rule 'x99_magic > 1': unknown column"):
        evaluate_reserve(candidates, layers, CRITERIA)
    with pytest.raises(ReserveInputError, match=r"rules\.json: expected an object with a list 'rules'"):
        rules_from_json(["x1_elevation_m > 1"], "rules.json")
    candidates, layers = scene()
    layers.redline = layers.redline.assign(kind=["nature_reserve", "wetland", "park"])
    with pytest.raises(ReserveInputError, match=r"redline\.gpkg: red-line kind\(s\) \['wetland'\] are not configured"):
        evaluate_reserve(candidates, layers, CRITERIA)
    candidates, layers = scene()
    layers.soil = layers.soil.assign(salinization="extreme")
    with pytest.raises(ReserveInputError, match=r"soil\.gpkg column 'salinization': level\(s\) \['extreme'\]"):
        evaluate_reserve(candidates, layers, CRITERIA)
    candidates, layers = scene()
    layers.soil = layers.soil.assign(polluted="perhaps")
    with pytest.raises(ReserveInputError, match="expected yes/no values"):
        evaluate_reserve(candidates, layers, CRITERIA)
    candidates, layers = scene()
    layers.soil = layers.soil.assign(ph="acid")
    with pytest.raises(ReserveInputError, match=r"soil\.gpkg column 'ph': expected numbers"):
        evaluate_reserve(candidates, layers, CRITERIA)
    candidates, layers = scene()
    with pytest.raises(ReserveInputError, match="expected the candidates' CRS"):
        evaluate_reserve(candidates, ReserveLayers(soil=layers.soil.to_crs("EPSG:4326")), CRITERIA)


def test_pixel_mean_matches_the_driver_x2_rule():
    from karstflow.drivers import compute_drivers

    rng = np.random.default_rng(3)
    slope = GRID.data_array(rng.uniform(0, 40, GRID.shape))
    polys = gpd.GeoDataFrame(
        {"forest_id": [1, 2, 3]},
        geometry=[shapely.box(X0 + 12, Y0 - 88, X0 + 57, Y0 - 31), shapely.Point(X0 + 203, Y0 - 207).buffer(40),
                  shapely.box(X0 + 301, Y0 - 309, X0 + 304, Y0 - 302)],  # holds no pixel centre
        crs=CRS,
    )
    mean = polygon_pixel_mean(polys.geometry, slope)
    # by hand for the box: pixel centres x in (12, 57) -> columns 1..5, y in (31, 88) -> rows 3..8
    assert mean[0] == pytest.approx(float(slope.values[3:9, 1:6].mean()))
    assert mean[2] == pytest.approx(float(slope.values[30, 30]))
    everywhere = gpd.GeoDataFrame(geometry=[GRID_BOX], crs=CRS)
    drivers = compute_drivers(
        polys,
        dem=slope,
        slope_deg=slope,
        aspect_class=GRID.data_array(np.ones(GRID.shape)),
        settlements=gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 5, Y0 - 5)], crs=CRS),
        roads=nx.Graph(),
        farmland=gpd.GeoDataFrame(geometry=[shapely.box(X0 + 380, Y0 - 400, X0 + 400, Y0 - 380)], crs=CRS),
        villages=everywhere.assign(population=100, area_km2=0.16),
        grades=everywhere.assign(natural_grade=5, utilization_grade=5, economic_grade=5),
        id_column="forest_id",
    )
    np.testing.assert_allclose(mean, drivers["x2_slope_deg"].to_numpy())


GRID_BOX = shapely.box(*GRID.bounds)


def test_summary_by_forest_type_and_township():
    candidates, layers = scene()
    ev = evaluate_reserve(candidates, layers, CRITERIA)
    table = reserve_summary(ev.candidates).set_index(["grouping", "group"])
    c = ev.candidates
    recl = c[c["reclaimable"] == 1]
    # every candidate is 0.25 ha
    assert table.loc[("all", "all"), "candidate_area_ha"] == pytest.approx(0.25 * len(c))
    assert table.loc[("all", "all"), "reclaimable_area_ha"] == pytest.approx(0.25 * len(recl))
    for township in ("T01", "T02"):
        n = int((recl["township"] == township).sum())
        assert table.loc[("township", township), "reclaimable"] == n
        assert table.loc[("township", township), "share_of_reclaimable"] == pytest.approx(n / len(recl))
        assert table.loc[("township", township), "reclaimable_share_of_group"] == pytest.approx(
            n / int((c["township"] == township).sum())
        )
    assert table.xs("forest_type")["reclaimable_area_ha"].sum() == pytest.approx(0.25 * len(recl))


def test_dominant_zone_takes_the_largest_overlap():
    zones = gpd.GeoDataFrame(
        {"township": ["A", "B"]}, geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], crs=CRS
    )
    polys = gpd.GeoSeries([shapely.box(4, 0, 14, 10), shapely.box(8, 0, 18, 10), shapely.box(50, 50, 60, 60)], crs=CRS)
    assert dominant_zone(polys, zones, "township").tolist() == ["A", "B", None]


def test_defaults_from_the_schema_are_the_studys(project_root):
    from snakemake.utils import validate

    config = {"regions": {"r": {"source": "local", "demo": {"kind": "county", "seed": 1, "origin": [0, 0]}, "crs": CRS,
                                "resolution_m": 10, "years": {"first": 2020, "last": 2020}}}}
    validate(config, schema=str(project_root / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    criteria, skip = criteria_from_config(config["reserve"])
    assert skip == {}
    assert (criteria.slope_max_deg, criteria.accumulated_temperature_min_degc_day, criteria.precipitation_min_mm) == (
        25,
        1800,
        400,
    )
    assert (criteria.soil_depth_min_cm, criteria.ph_min_exclusive, criteria.ph_max_exclusive) == (30, 4.0, 9.5)
    assert set(criteria.textures_allowed) == {"loam", "clay", "sand"} and criteria.salinization_max_level == "moderate"
    assert all(criteria.redline_kinds.values()) and len(criteria.redline_kinds) == 6
    assert (
        config["capacity"]["D"] == 16
        and config["capacity"]["mu_per_ha"] == 15
        and config["capacity"]["kg_per_mu_per_grade"] == 100
    )
    section = yaml.safe_load(yaml.safe_dump(config["reserve"]))
    section["ph"]["layer"] = None
    section["water"]["precipitation_layer"] = None
    _, skip = criteria_from_config(section)
    assert list(skip) == ["ph"]  # water still has its irrigation layer
