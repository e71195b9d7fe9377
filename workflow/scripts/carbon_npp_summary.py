"""Entry script of rule carbon_npp_summary: headline NPP, Rh and NEP figures and the NPP trend
(npp.json) from the region's NPP cube and trend rasters (after the tiles, if any, are put
together); the method block is the cube's attributes."""

import logging

import xarray as xr

from karstflow.carbon import npp_summary
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json
from karstflow.runtime import run_script
from karstflow.trends import TREND_NODATA

log = logging.getLogger("karstflow.scripts.carbon_npp_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube = read_cube(input.npp).load()
    grid.check(cube, grid_source=input.grid, source=str(input.npp))
    slope = read_raster(input.slope)
    # masked=True reads the class nodata as NaN: give the summary its uint8 codes back
    trend_class = read_raster(input.trend_class).fillna(TREND_NODATA).astype("uint8")
    trend = xr.Dataset({"slope": (("y", "x"), slope.values), "trend_class": (("y", "x"), trend_class.values)})
    summary = npp_summary(cube, trend, pixel_area_m2=grid.pixel_area_m2)
    summary["method"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in cube.attrs.items()}
    write_json(summary, output.summary)
    log.info(
        "NPP %.1f, Rh %.1f, NEP %.1f g C m-2 yr-1",
        summary["npp_mean_g_c_m2_yr"],
        summary["rh_mean_g_c_m2_yr"],
        summary["nep_mean_g_c_m2_yr"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
