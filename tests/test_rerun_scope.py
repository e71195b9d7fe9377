"""Only changed steps rerun (issue 15, point 3): a rule's params hold only what it reads.

Each test changes one kind of config value against the session's demo run (conftest
``demo_run``, left as it is: the changed config and the copied files live in ``tmp_path``)
and asserts the dry run's jobs are exactly the rules that read the value and those that
read their outputs. Snakemake's default rerun triggers apply (workflow/profiles/default:
a changed path reruns the rule that reads it, even for an identical copy of the file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.e2e

# Every changed result reaches the region's summary and the table of all regions.
SUMMARIES = {"region_summary": 1, "summary_table": 1}
# The karst demo's coupling tables read the desertification grades and the service maps.
COUPLING = {"coupling_units": 1, "coupling_statistics": 1}


def plan_with(workflow_runner, run: Path, tmp_path: Path, extra: dict) -> dict[str, int]:
    """The dry run of ``run`` with ``extra`` merged into its config (a second config file,
    as a user's --configfile is), without the default target ``all``."""
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(extra, sort_keys=False))
    plan = workflow_runner.plan(run, "--configfile", "config/config.yaml", str(path))
    plan.pop("all", None)
    return plan


def region_input(extra_path: str, region: str, key: str) -> dict:
    return {"regions": {region: {"inputs": {key: extra_path}}}}


def test_unchanged_config_plans_nothing(demo_run, workflow_runner, tmp_path):
    assert plan_with(workflow_runner, demo_run, tmp_path, {}) == {}


def test_input_pointed_at_an_identical_copy_reruns_only_its_readers(demo_run, workflow_runner, tmp_path):
    # the county's townships: read by the reserve stage (factor by township) and the swap
    # plan after it; before the params were narrowed, the imagery composites took the whole
    # region entry, so this re-ran the composites, the land cover and everything after it
    copy = tmp_path / "townships.gpkg"
    shutil.copy(demo_run / "resources/demo/demo-county/townships.gpkg", copy)  # a new mtime too
    plan = plan_with(workflow_runner, demo_run, tmp_path, region_input(str(copy), "demo-county", "townships"))
    assert plan == {
        "inputs_vector": 1,
        "reserve_evaluate": 1,
        "reserve_maps": 1,
        "capacity_plan": 1,
        "capacity_maps": 1,
        **SUMMARIES,
    }


def test_a_stage_threshold_reruns_only_its_readers(demo_run, workflow_runner, tmp_path):
    # the lowest grade that counts as rocky desertification: read by its summary and by the
    # coupling tables (RD area change per township and cell), and what reads those
    plan = plan_with(workflow_runner, demo_run, tmp_path, {"desertification": {"rd_min_grade": "moderate"}})
    assert plan == {"desertification_summary": 1, **COUPLING, **SUMMARIES}


def test_a_service_table_reruns_only_its_readers(demo_run, workflow_runner, tmp_path):
    # the karst carbon pools with one figure changed, at a path of their own
    pools = pd.read_csv(demo_run / "resources/demo/demo-karst/carbon_pools.csv")
    pools.loc[0, "c_above"] += 1.0  # Mg C/ha above ground of the first land-cover code
    path = tmp_path / "carbon_pools.csv"
    pools.to_csv(path, index=False)
    plan = plan_with(workflow_runner, demo_run, tmp_path, region_input(str(path), "demo-karst", "carbon_pools"))
    # the two maps of carbon storage, the services' copies of them and the summaries; not
    # the monthly climate and CASA, which took the whole region entry before
    assert plan == {
        "inputs_table": 1,
        "carbon_storage": 2,
        "carbon_summary": 1,
        "services_carbon_storage": 2,
        "services_summary": 1,
        "report_maps": 1,
        **COUPLING,
        **SUMMARIES,
    }
