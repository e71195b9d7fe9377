"""Entry script of rule desertification_map: the RD grade GeoTIFF of one year."""

from karstflow.desertification import RD_NODATA
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_raster
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])


def main() -> None:
    year = int(snakemake.wildcards.year)
    grid = RegionGrid.from_dict(read_json(snakemake.input.grid))
    grades = read_cube(snakemake.input.grades)["rd_grade"]
    if year not in grades["year"].values:
        raise ValueError(f"{snakemake.input.grades}: no year {year} (years {grades['year'].values.tolist()})")
    values = grades.sel(year=year).values
    write_raster(grid.data_array(values, name="rd_grade"), snakemake.output.grade, dtype="uint8", nodata=RD_NODATA)
    log.info("RD grades of %d -> %s", year, snakemake.output.grade)


main()
