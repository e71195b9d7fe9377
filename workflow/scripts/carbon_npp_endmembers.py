"""Entry script of rule carbon_npp_endmembers: the region's FPAR end-members per land-cover
code (95th percentiles of NDVI and SR over the pixel-years of known class, Zhu et al. 2006),
computed once on the whole region and read by carbon_npp, untiled or on every tile."""

import logging

from karstflow.carbon import endmembers_record, endmembers_settings, landcover_endmembers
from karstflow.greening import check_same_grid
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.carbon_npp_endmembers")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube_path = str(input.cube)
    cube = read_cube(cube_path, chunks={"year": -1, "y": params.chunk_px, "x": params.chunk_px})
    grid.check(cube, grid_source=input.grid, source=cube_path)
    landcovers = {}
    for year in params.landcover_years:
        path = str(input[f"landcover_{year}"])
        lc = read_raster(path, chunks={"y": params.chunk_px, "x": params.chunk_px})
        check_same_grid(cube, lc, cube_path, path)
        landcovers[int(year)] = lc.assign_coords(y=cube["y"], x=cube["x"])
    fp = params.fpar
    table = landcover_endmembers(
        cube["ndvi"],
        landcovers,
        percentile=fp["max_percentile"],
        ndvi_min=fp["ndvi_min"],
        sr_min=fp["sr_min"],
        endmembers_of=fp["endmembers_of"],
    )
    record = endmembers_record(
        table,
        **endmembers_settings(fp),
        landcover_years=[int(y) for y in params.landcover_years],
        note=(
            "NDVI_max and SR_max: the percentile of NDVI and SR = (1 + NDVI) / (1 - NDVI) over the region's "
            "pixel-years whose class both bracketing land-cover maps agree on (Zhu et al. 2006); codes of "
            "endmembers_of take the values of the type they map to"
        ),
    )
    write_json(record, output.endmembers)
    log.info("FPAR end-members of %d land-cover codes -> %s", len(table), output.endmembers)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
