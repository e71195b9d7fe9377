"""Entry script of rule services_water_yield: InVEST annual water yield of one year."""

import logging

import numpy as np
import pandas as pd

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_raster
from karstflow.runtime import run_script
from karstflow.services import (
    annual_water_yield,
    check_biophysical_table,
    climate_of_year,
    reclassify,
)

log = logging.getLogger("karstflow.scripts.services_water_yield")


def main(input, output, params, wildcards, threads=1) -> None:
    year = int(wildcards.year)
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc_path, climate_path, soil_path, bio_path = (
        str(input.landcover),
        str(input.climate),
        str(input.soil),
        str(input.biophysical),
    )
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    lc = np.asarray(landcover.values)
    climate = read_cube(climate_path)
    grid.check(climate, grid_source=input.grid, source=climate_path)
    soil = read_cube(soil_path)
    grid.check(soil, grid_source=input.grid, source=soil_path)
    for var in ("soil_depth_mm", "pawc"):
        if var not in soil.data_vars:
            raise ValueError(f"{soil_path}: missing variable {var!r}; found {sorted(soil.data_vars)}")
    bio = check_biophysical_table(pd.read_csv(bio_path), source=bio_path)

    def lookup(column):
        return reclassify(lc, bio[column].to_dict(), what=column, table_source=bio_path, map_source=lc_path)

    precip = climate_of_year(climate, "precipitation_mm", year, mode=params.climate, source=climate_path)
    eto = climate_of_year(climate, "eto_mm", year, mode=params.climate, source=climate_path)
    what = "" if params.climate == "year" else " (period mean)"
    result = annual_water_yield(
        np.asarray(precip.values, dtype=np.float64),
        np.asarray(eto.values, dtype=np.float64),
        lookup("kc"),
        lookup("root_depth_mm"),
        np.asarray(soil["soil_depth_mm"].values, dtype=np.float64),
        np.asarray(soil["pawc"].values, dtype=np.float64),
        float(params.z),
        lookup("lulc_veg"),
        names={
            "precip_mm": f"{climate_path}: precipitation_mm {year}{what}",
            "eto_mm": f"{climate_path}: eto_mm {year}{what}",
            "soil_depth_mm": f"{soil_path}: soil_depth_mm",
            "pawc": f"{soil_path}: pawc",
            "kc": f"{bio_path}: kc",
            "root_depth_mm": f"{bio_path}: root_depth_mm",
            "vegetated": f"{bio_path}: lulc_veg",
        },
    )
    wy = result.water_yield_mm
    write_raster(
        grid.data_array(wy.astype(np.float32), name="water_yield", units="mm yr-1"),
        output.water_yield,
    )
    volume = float(np.nansum(wy) / 1000.0 * grid.pixel_area_m2)
    log.info(
        "water yield %d: mean %.1f mm of %.1f mm precipitation (AET %.1f mm), %.4g m3 (Z = %g, climate %s)",
        year,
        float(np.nanmean(wy)),
        float(np.nanmean(precip.values)),
        float(np.nanmean(result.aet_mm)),
        volume,
        params.z,
        params.climate,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
