"""Region inputs (karstflow.inputs): the declared layers, the schema that documents them,
and the canonical form a user's layer is brought to."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import Point, box

from karstflow.inputs import INPUTS, InputError, harmonise_table, harmonise_vector, input_spec
from karstflow.stages import STAGES

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(SCHEMA.read_text())


def test_every_input_is_documented_in_the_schema_with_its_kind_and_columns(schema):
    documented = schema["$defs"]["region"]["properties"]["inputs"]["properties"]
    assert set(documented) == set(INPUTS)
    for name, spec in INPUTS.items():
        text = " ".join(documented[name]["description"].split())
        if spec.kind != "imagery":
            assert text.startswith(f"{spec.kind}:"), name
        for column in spec.columns:
            assert column.name in text, (name, column.name)


def test_every_stage_can_be_requested_in_the_schema(schema):
    enum = schema["$defs"]["region"]["properties"]["stages"]["items"]["enum"]
    assert enum == list(STAGES)


def test_stage_requirements_name_declared_inputs_or_stages():
    pseudo = {"periods", "remote_source", "earthengine_source"}
    for stage in STAGES.values():
        for need in stage.requires:
            for alternative in need:
                if alternative.startswith("@"):
                    assert alternative[1:] in STAGES
                    # a stage only builds on stages listed before it (plan order)
                    assert list(STAGES).index(alternative[1:]) < list(STAGES).index(stage.name)
                else:
                    assert alternative in INPUTS or alternative in pseudo, (stage.name, alternative)


def _parcels(crs="EPSG:32650"):
    return gpd.GeoDataFrame(
        {"FID_2020": [11, 12, 13], "KXND": [2015, 2016, 2017], "other": ["a", "b", "c"]},
        geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10), box(20, 0, 30, 10)],
        crs=crs,
    )


def test_columns_are_mapped_and_other_columns_kept():
    entry = input_spec("r", "parcels", {"path": "p.shp", "columns": {"parcel_id": "FID_2020", "reclaim_year": "KXND"}})
    out = harmonise_vector(_parcels(), "parcels", entry, "EPSG:32650", "p.shp")
    assert list(out["parcel_id"]) == [11, 12, 13]
    assert list(out["reclaim_year"]) == [2015, 2016, 2017]
    assert "other" in out.columns and "FID_2020" not in out.columns


def test_values_are_mapped_to_the_canonical_codes():
    forest = gpd.GeoDataFrame(
        {"DLMC": ["乔木林地", "其他林地", "疏林地", "乔木林地"]},
        geometry=[box(i, 0, i + 1, 1) for i in range(4)],
        crs="EPSG:32650",
    )
    entry = input_spec(
        "r",
        "forest",
        {
            "path": "f.gpkg",
            "columns": {"forest_type": "DLMC"},
            "values": {
                "forest_type": {
                    "乔木林地": "forested land",
                    "其他林地": "other forest land",
                    "疏林地": "sparse forest land",
                }
            },
        },
    )
    out = harmonise_vector(forest, "forest", entry, "EPSG:32650", "f.gpkg")
    assert list(out["forest_type"]) == ["forested land", "other forest land", "sparse forest land", "forested land"]


def test_unmapped_values_stop_with_the_file_the_column_and_the_values():
    forest = gpd.GeoDataFrame({"forest_type": ["forested land", "bamboo"]}, geometry=[box(0, 0, 1, 1)] * 2, crs=3857)
    with pytest.raises(InputError, match=r"f\.gpkg \(input forest\), column forest_type: value\(s\) \['bamboo'\]"):
        harmonise_vector(forest, "forest", input_spec("r", "forest", "f.gpkg"), "EPSG:3857", "f.gpkg")


def test_a_missing_column_names_the_file_and_how_to_map_it():
    villages = gpd.GeoDataFrame({"RKZS": [100]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(InputError, match=r"v\.geojson \(input villages\): expected column\(s\) \['population'\].*RKZS"):
        harmonise_vector(villages, "villages", input_spec("r", "villages", "v.geojson"), "EPSG:32650", "v.geojson")
    with pytest.raises(InputError, match=r"mapped column\(s\) \['POP'\] are not in the file"):
        harmonise_vector(
            villages,
            "villages",
            input_spec("r", "villages", {"path": "v.geojson", "columns": {"population": "POP"}}),
            "EPSG:32650",
            "v.geojson",
        )


def test_a_mapping_to_an_unknown_canonical_column_is_a_config_error():
    with pytest.raises(InputError, match=r"config key regions\.r\.inputs\.parcels\.columns: \['parcelid'\]"):
        input_spec("r", "parcels", {"path": "p.shp", "columns": {"parcelid": "FID"}})


def test_vectors_are_reprojected_to_the_grid_crs():
    lon, lat = 117.0, 28.0
    villages = gpd.GeoDataFrame({"population": [250]}, geometry=[Point(lon, lat).buffer(0.001)], crs=4326)
    out = harmonise_vector(villages, "villages", input_spec("r", "villages", "v.geojson"), "EPSG:32650", "v.geojson")
    assert out.crs.to_epsg() == 32650
    expected = gpd.GeoSeries([Point(lon, lat)], crs=4326).to_crs(32650).iloc[0]
    assert out.geometry.iloc[0].centroid.distance(expected) < 0.5  # metres; the circle's centre


@pytest.mark.parametrize(
    "layer, message",
    [
        (gpd.GeoDataFrame({"population": [1]}, geometry=[box(0, 0, 1, 1)]), "has no CRS"),
        (gpd.GeoDataFrame({"population": []}, geometry=[], crs=32650), "has no features"),
        (gpd.GeoDataFrame({"population": [1]}, geometry=[Point(0, 0)], crs=32650), "expected Polygon/MultiPolygon"),
        (
            gpd.GeoDataFrame({"population": [-5]}, geometry=[box(0, 0, 1, 1)], crs=32650),
            r"row\(s\) below the minimum 0 people \(resident population\)",
        ),
        (gpd.GeoDataFrame({"population": ["many"]}, geometry=[box(0, 0, 1, 1)], crs=32650), "expected numbers"),
    ],
)
def test_bad_vector_layers_stop_naming_the_file(layer, message):
    with pytest.raises(InputError, match=message) as err:
        harmonise_vector(layer, "villages", input_spec("r", "villages", "v.gpkg"), "EPSG:32650", "v.gpkg")
    assert "v.gpkg (input villages)" in str(err.value)


def test_tables_are_mapped_and_checked():
    pools = pd.DataFrame({"code": [1, 2], "above": [10.0, 50.0], "below": [2.0, 10], "soil": [80, 90], "dead": [0, 1]})
    entry = input_spec(
        "r",
        "carbon_pools",
        {
            "path": "pools.csv",
            "columns": {"lucode": "code", "c_above": "above", "c_below": "below", "c_soil": "soil", "c_dead": "dead"},
        },
    )
    out = harmonise_table(pools, "carbon_pools", entry, "pools.csv")
    np.testing.assert_array_equal(out["c_above"], [10.0, 50.0])
    pools.loc[1, "soil"] = -1
    with pytest.raises(
        InputError, match=r"pools\.csv \(input carbon_pools\), column c_soil: 1 row\(s\) below the minimum 0 Mg C ha-1"
    ):
        harmonise_table(pools, "carbon_pools", entry, "pools.csv")


def test_yes_no_columns_accept_the_usual_spellings_only():
    soil = gpd.GeoDataFrame(
        {"polluted": [True, "no", "Yes", 0]}, geometry=[box(i, 0, i + 1, 1) for i in range(4)], crs=32650
    )
    harmonise_vector(soil, "soil", input_spec("r", "soil", "s.gpkg"), "EPSG:32650", "s.gpkg")
    soil.loc[3, "polluted"] = "perhaps"
    with pytest.raises(InputError, match=r"column polluted: expected yes/no values.*\['perhaps'\]"):
        harmonise_vector(soil, "soil", input_spec("r", "soil", "s.gpkg"), "EPSG:32650", "s.gpkg")


def test_land_cover_by_year_and_raster_tiles():
    entry = input_spec("r", "landcover", {2000: "a.tif", "2023": "b.tif"})
    assert entry == {"years": {2000: "a.tif", 2023: "b.tif"}, "resampling": "nearest"}
    entry = input_spec("r", "landcover", {"years": {2000: "a.tif"}, "resampling": "mode"})
    assert entry["resampling"] == "mode"
    with pytest.raises(InputError, match="expected a mapping year -> raster path"):
        input_spec("r", "landcover", "a.tif")
    tiles = input_spec("r", "precipitation", ["n28.tif", "n29.tif"])
    assert tiles == {"path": ["n28.tif", "n29.tif"], "columns": {}, "values": {}, "resampling": "bilinear"}
    with pytest.raises(InputError, match=r"config key regions\.r\.inputs\.elevation: unknown input"):
        input_spec("r", "elevation", "dem.tif")
