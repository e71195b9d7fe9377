"""Config validation: ids, types, unknown keys and cross-field rules name the key."""

from __future__ import annotations

import pytest
import yaml

from karstflow.config import ConfigError, check_config, load_schema


@pytest.fixture(scope="module")
def schema(project_root):
    return load_schema(project_root / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture()
def config(project_root):
    return yaml.safe_load((project_root / "config" / "config.yaml").read_text())


def test_default_config_is_valid(config, schema):
    check_config(config, schema)


@pytest.mark.parametrize("bad_id", ["a/b", "..", "../escape", "Demo", "with space", "trailing-", "a.b"])
def test_region_id_must_be_path_safe(config, schema, bad_id):
    config["regions"][bad_id] = config["regions"].pop("demo-county")
    with pytest.raises(ConfigError) as err:
        check_config(config, schema)
    assert repr(bad_id) in str(err.value)
    assert "config key regions" in str(err.value)


def test_wrong_type_names_key_path_expected_and_found(config, schema):
    config["regions"]["demo-county"]["resolution_m"] = "ten"
    with pytest.raises(ConfigError, match=r"regions\.demo-county\.resolution_m: expected number, found 'ten'"):
        check_config(config, schema)


def test_unknown_key_is_rejected_with_its_path(config, schema):
    config["terrain"] = {"flat_max_degs": 3}
    with pytest.raises(ConfigError, match=r"config key terrain: unknown key\(s\) 'flat_max_degs'"):
        check_config(config, schema)


def test_enum_value_is_reported(config, schema):
    config["regions"]["demo-karst"]["source"] = "ftp"
    with pytest.raises(ConfigError, match=r"regions\.demo-karst\.source: expected one of .*found 'ftp'"):
        check_config(config, schema)


def test_years_in_order(config, schema):
    config["regions"]["demo-karst"]["years"] = {"first": 2023, "last": 2000}
    with pytest.raises(ConfigError, match=r"regions\.demo-karst\.years: first \(2023\) is after last \(2000\)"):
        check_config(config, schema)


def test_a_region_without_grid_like_needs_aoi_crs_and_resolution(config, schema):
    region = config["regions"]["demo-county"]
    region.pop("grid_like")
    with pytest.raises(ConfigError, match=r"regions\.demo-county\.aoi: required unless grid_like names a raster"):
        check_config(config, schema)
    region["aoi"] = {"bounds": [0, 0, 100, 100]}
    region.pop("resolution_m")
    with pytest.raises(ConfigError, match=r"regions\.demo-county\.resolution_m: required unless grid_like"):
        check_config(config, schema)


def test_remote_sources_are_accepted_and_their_keys_checked(config, schema):
    region = config["regions"]["demo-county"]
    region.pop("demo")
    region.update(
        source="stac",
        aoi={"bounds": [0, 0, 100, 100]},
        stac={"collection": "sentinel-2-l2a", "sign": "planetary-computer"},
    )
    check_config(config, schema)
    region.update(source="earthengine", earthengine={"project": "p", "cs_cdf_threshold": 1.5})
    with pytest.raises(
        ConfigError, match=r"regions\.demo-county\.earthengine\.cs_cdf_threshold: 1\.5 is greater than the maximum of 1"
    ):
        check_config(config, schema)


def test_local_region_with_periods_needs_imagery(config, schema, tmp_path):
    (tmp_path / "dem.tif").write_bytes(b"")
    region = config["regions"]["demo-county"]
    region.pop("demo")
    region.update(source="local", aoi={"bounds": [0, 0, 100, 100]}, inputs={"dem": "dem.tif"})
    with pytest.raises(
        ConfigError, match=r"regions\.demo-county\.inputs\.imagery: required when a local region has periods"
    ):
        check_config(config, schema, workdir=tmp_path)
    # whether the files exist is checked once the rules are known (test_workflow.py)


def test_period_names_are_path_safe(config, schema):
    config["regions"]["demo-county"]["periods"] = {"2022/spring": {"start": "2022-03-01", "end": "2022-05-31"}}
    with pytest.raises(ConfigError, match=r"period name '2022/spring' is not allowed"):
        check_config(config, schema)


def test_command_line_text_is_typed_where_the_schema_wants_numbers(config, schema):
    from karstflow.config import coerce_cli_strings

    config["terrain"] = {"flat_max_deg": "7.5", "dem_resampling": "cubic"}
    config["regions"]["demo-karst"]["years"] = {"first": "2001", "last": "2023"}
    config["regions"]["demo-county"]["crs"] = "4326"  # a string field stays text
    typed = coerce_cli_strings(config, schema)
    assert typed["terrain"] == {"flat_max_deg": 7.5, "dem_resampling": "cubic"}
    assert typed["regions"]["demo-karst"]["years"] == {"first": 2001, "last": 2023}
    assert typed["regions"]["demo-county"]["crs"] == "4326"
    typed["terrain"]["flat_max_deg"] = coerce_cli_strings({"terrain": {"flat_max_deg": "steep"}}, schema)["terrain"][
        "flat_max_deg"
    ]
    with pytest.raises(ConfigError, match="expected number, found 'steep'"):
        check_config(typed, schema)


def test_schema_defaults_are_filled_as_snakemakes_validate_fills_them(config, schema, project_root):
    """fill_defaults replaces snakemake.utils.validate(set_default=True) in the Snakefile:
    on the shipped config and on a minimal one, both give the same config."""
    import copy

    from snakemake.utils import validate

    from karstflow.config import fill_defaults

    minimal = {
        "regions": {
            "r": {
                "source": "local",
                "demo": {"kind": "county", "seed": 1, "origin": [0, 0]},
                "crs": "EPSG:32648",
                "resolution_m": 10,
                "years": {"first": 2020, "last": 2020},
            }
        }
    }
    for original in (config, minimal):
        ours, theirs = copy.deepcopy(original), copy.deepcopy(original)
        fill_defaults(ours, schema)
        validate(theirs, schema=str(project_root / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
        assert ours == theirs
        assert ours != original  # defaults were filled at all
    # a copy per place: two regions' defaults are not one object
    two = copy.deepcopy(minimal)
    two["regions"]["s"] = copy.deepcopy(two["regions"]["r"])
    fill_defaults(two, schema)
    shared = [k for k, v in two["regions"]["r"].items() if isinstance(v, dict | list) and v is two["regions"]["s"][k]]
    assert shared == []


# --------------------------------------------------------------------------------------
# configurable output paths stay inside resources/ or results/ of the project
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "resolved"),
    [("/tmp/x", "/tmp/x"), ("../escape", "{parent}/escape"), ("resources/../../escape", "{parent}/escape")],
)
def test_cache_dir_outside_the_project_is_rejected_naming_the_key(config, schema, tmp_path, value, resolved):
    project = tmp_path / "project"
    project.mkdir()
    config["imagery"] = {"cache_dir": value}
    expected = resolved.format(parent=tmp_path.resolve())
    with pytest.raises(ConfigError) as err:
        check_config(config, schema, workdir=project)
    assert str(err.value) == (
        f"config key imagery.cache_dir: must be inside resources/ or results/ of the project, "
        f"found {value!r} (resolves to {expected})"
    )


@pytest.mark.parametrize("value", ["resources", "resources/tiles", "./results/cache", "results/../resources/x"])
def test_cache_dir_inside_resources_or_results_is_accepted(config, schema, tmp_path, value):
    config["imagery"] = {"cache_dir": value}
    check_config(config, schema, workdir=tmp_path)


def test_a_symlink_escaping_the_project_is_rejected_and_a_linked_resources_folder_accepted(config, schema, tmp_path):
    project, outside = tmp_path / "project", tmp_path / "elsewhere"
    (project / "resources").mkdir(parents=True)
    outside.mkdir()
    (project / "resources" / "cache").symlink_to(outside, target_is_directory=True)
    config["imagery"] = {"cache_dir": "resources/cache"}
    with pytest.raises(ConfigError, match=rf"imagery\.cache_dir: .*found 'resources/cache' \(resolves to {outside}\)"):
        check_config(config, schema, workdir=project)
    # resources/ itself a link to a data disk (common on clusters): what is under it stays inside
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "resources").symlink_to(outside, target_is_directory=True)
    config["imagery"] = {"cache_dir": "resources/tiles"}
    check_config(config, schema, workdir=linked)


@pytest.mark.e2e
def test_snakemake_refuses_an_outside_cache_dir_at_start_up(project_root, tmp_path):
    from test_workflow import copy_workflow, snakemake

    workdir = copy_workflow(project_root, tmp_path / "wd")
    outside = tmp_path / "outside"
    proc = snakemake(workdir, "-n", "--config", f"imagery={{cache_dir: {outside}}}", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"config key imagery.cache_dir: must be inside resources/ or results/ of the project, found '{outside}'" in (
        out
    )
    assert not (workdir / "results").exists() and not outside.exists()
