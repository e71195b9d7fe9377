"""Entry script of rule soil_grids: soil texture, organic carbon and available water from
SoilGrids 250 m on the region grid (karstflow.soil)."""

import logging

from karstflow import soil
from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_json, write_netcdf
from karstflow.runtime import run_script
from karstflow.sources import get_source

log = logging.getLogger("karstflow.scripts.soil_grids")

PROPERTIES = ("sand", "silt", "clay", "soc")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    cfg = params.soil
    depths = soil.depths_down_to(cfg["depth_cm"])
    if params.region["source"] == "earthengine":
        source = get_source(wildcards.region, params.region, params.imagery)
        files = source.soil(grid, PROPERTIES, depths)
        raw = soil.read_soil_bands(files, grid)
        origin = "SoilGrids 2.0 (ISRIC Earth Engine assets)"
    else:
        raw = soil.read_soilgrids(
            cfg["base_url"], grid, properties=PROPERTIES, depths=depths, resampling=cfg["resampling"]
        )
        origin = f"SoilGrids 2.0 ({cfg['base_url']})"
    grids = soil.soilgrids_to_soil_grids(
        raw, depth_cm=cfg["depth_cm"], soil_depth_mm=float(cfg["soil_depth_mm"]), source=origin
    )
    write_netcdf(grids, output.soil)
    summary = {
        "origin": origin,
        "depth_cm": cfg["depth_cm"],
        "soil_depth_mm": {"value": float(cfg["soil_depth_mm"]), "from": "configured constant (soil.soil_depth_mm)"},
        "means": {k: float(v.mean()) for k, v in grids.data_vars.items()},
    }
    write_json(summary, output.summary)
    log.info("soil grids from %s: %s", origin, {k: round(v, 3) for k, v in summary["means"].items()})


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
