"""Entry script of rule desertification_summary: first-to-last transitions and headline figures."""

import json
import logging

import pandas as pd

from karstflow.desertification import RD_GRADES, rd_summary, transition_table
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_csv, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    first = read_raster(input.first, masked=False).values
    last = read_raster(input.last, masked=False).values
    transitions = transition_table(first, last, grid.pixel_area_m2 / 1e6, tuple(params.years))
    write_csv(transitions, output.transition, index=False)

    area = pd.read_csv(input.area)
    attrs = read_cube(input.grades).attrs
    summary = rd_summary(area, transitions, rd_min_grade=params.rd_min_grade)
    summary.update(
        graded_area_km2=float(area[area["year"] == params.years[0]]["area_km2"].sum()),
        fvc_ndvi_soil=float(attrs["ndvi_soil"]),
        fvc_ndvi_veg=float(attrs["ndvi_veg"]),
        fvc_endmember_exclusion=str(attrs.get("fvc_endmember_exclusion", "")),
        exposure_method=str(attrs["exposure_method"]),
        exposure_source=str(attrs["exposure_source"]),
        indicators=str(attrs["indicators"]).split(","),
        combine=str(attrs["combine"]),
        grades={str(k): v for k, v in RD_GRADES.items()},
    )
    if "unmixing_endmembers" in attrs:
        summary.update(
            unmixing_bands=str(attrs["unmixing_bands"]).split(","),
            unmixing_endmembers=json.loads(str(attrs["unmixing_endmembers"])),
            unmixing_endmember_source=str(attrs["unmixing_endmember_source"]),
        )
    write_json(summary, output.summary)
    log.info(
        "RD %s (exposure by %s): %.3f -> %.3f km2 (%d-%d), reduction %.1f %%",
        summary["rd_definition"],
        summary["exposure_method"],
        summary["rd_area_first_km2"],
        summary["rd_area_last_km2"],
        params.years[0],
        params.years[-1],
        100 * summary["reduction_rate"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
