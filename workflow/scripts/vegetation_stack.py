"""Entry script of rule vegetation_stack: the annual stack of the vegetation record, every
year on the reference sensor's scale (the calibrations of rule vegetation_calibration), with
the sensor of each year recorded; over the region or (rule vegetation_stack_tile) one tile.

A calibration is a gain and an offset applied to each pixel, so a tile's stack is the
region's over the tile. The record's summary (vegetation.json) is rule vegetation_summary's.
"""

import logging

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_netcdf_blocks
from karstflow.runtime import run_script
from karstflow.sources.rasters import limit_gdal_cache
from karstflow.vegetation import Calibration, annual_cube, read_composite

log = logging.getLogger("karstflow.scripts.vegetation_stack")


# the reader of the composites (kept under this name for the tests that use it)
_composite = read_composite


def read_calibrations(path: str) -> tuple[str, list[Calibration]]:
    """The reference sensor and the calibrations of rule vegetation_calibration's
    calibration.json (a NaN r2 is written as null)."""
    body = read_json(path)
    cals = []
    for c in body["calibrations"]:
        c = dict(c)
        c["r2"] = float("nan") if c.get("r2") is None else float(c["r2"])
        cals.append(Calibration(**c))
    return str(body["reference_sensor"]), cals


def main(input, output, params, wildcards, threads=1) -> None:
    limit_gdal_cache(params.gdal_cache_mb)  # else GDAL's cache (5 % of RAM) sets the peak
    grid = RegionGrid.from_dict(read_json(input.grid))
    record = params.record
    reference, calibrations = read_calibrations(input.calibration)
    if reference != record["reference_sensor"]:
        raise ValueError(
            f"{input.calibration}: calibrations onto {reference}, the record's reference sensor is "
            f"{record['reference_sensor']}; rerun rule vegetation_calibration"
        )
    sensor_of_year = {int(y): s for y, s in record["sensor_of_year"].items()}
    composites = {y: _composite(str(input[f"{s}_{y}"]), params.chunk_px) for y, s in sensor_of_year.items()}
    for da in composites.values():
        if (da.sizes["y"], da.sizes["x"]) != grid.shape:
            raise ValueError(f"the composites are not on the grid of {input.grid} ({grid.shape})")
    cube = annual_cube(composites, sensor_of_year, calibrations, reference=reference)
    cube.attrs.update(source="vegetation stage (karstflow.vegetation)", reference_sensor=reference)
    write_netcdf_blocks(cube, output.stack, block_px=params.chunk_px)  # memory follows chunk_px
    read_cube(output.stack)  # fails loudly if the file cannot be read back


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
