"""Entry script of rule desertification_map: the RD grade GeoTIFF of one year."""

import logging

from karstflow.desertification import RD_NODATA
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_map")


def main(input, output, params, wildcards, threads=1) -> None:
    year = int(wildcards.year)
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube = read_cube(input.grades)
    grades = cube["rd_grade"]
    if year not in grades["year"].values:
        raise ValueError(f"{input.grades}: no year {year} (years {grades['year'].values.tolist()})")
    values = grades.sel(year=year).values
    da = grid.data_array(values, name="rd_grade")
    # the GeoTIFF says how its exposure indicator was made (GDAL metadata tags)
    da.attrs = {
        "year": year,
        "exposure_method": str(cube.attrs.get("exposure_method", "")),
        "exposure_source": str(cube.attrs.get("exposure_source", "")),
        "indicators": str(cube.attrs.get("indicators", "")),
        "combine": str(cube.attrs.get("combine", "")),
    }
    write_raster(da, output.grade, dtype="uint8", nodata=RD_NODATA)
    log.info("RD grades of %d -> %s", year, output.grade)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
