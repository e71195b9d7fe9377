"""Entry script of rule desertification_area: the area of each RD grade in every year
(rd_area.csv), from the region's grades cube (the mosaic of its tiles when tiled)."""

import logging

from karstflow.desertification import grade_area_table
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_csv
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_area")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube = read_cube(input.grades, chunks={"year": 1})
    grid.check(cube, grid_source=input.grid, source=str(input.grades))
    area = grade_area_table(cube["rd_grade"], grid.pixel_area_m2 / 1e6)
    write_csv(area, output.area, index=False)
    rd = area[area["grade_code"] >= 2].groupby("year")["area_km2"].sum()
    log.info(
        "RD (light or worse, exposure by %s): %.3f km2 in %d, %.3f km2 in %d",
        cube.attrs.get("exposure_method", "?"),
        rd.iloc[0],
        int(rd.index[0]),
        rd.iloc[-1],
        int(rd.index[-1]),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
