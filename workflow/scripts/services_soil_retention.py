"""Entry script of rule services_soil_retention (and its `_tile`): RUSLE soil loss and soil
retention of one year, per pixel given the LS factor.

The rainfall erosivity R follows ``services.soil_conservation.r_factor.method``: the
default ``wischmeier_smith_monthly`` reads the 12 monthly precipitation totals of the year
from the monthly climate cube (``input.climate_monthly``, the monthly_climate stage's
climate/climate_monthly.nc, karstflow.climate conventions); ``renard_freimund_1994`` and
``power`` read annual precipitation from the annual climate cube. With climate
``period_mean`` R is the mean of the years' R (RUSLE's R is a mean annual erosivity).

Besides soil retention and soil loss it writes the factors per pixel (soil_factors_{year}.tif:
bands r_factor, k_factor, c_factor, p_factor, potential_soil_loss), from which rule
services_soil_factors takes the region means. With ``cover_factor: vegetation_cover`` the
NDVI end-members of the FVC are region figures, read from rule services_soil_ndvi_endmembers.
"""

import logging

import numpy as np
import pandas as pd

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_raster
from karstflow.runtime import run_script
from karstflow.services import (
    MONTHLY_R_FACTOR_METHODS,
    c_factor_from_cover,
    check_biophysical_table,
    climate_of_year,
    k_factor_epic,
    months_of_year,
    r_factor,
    r_factor_monthly,
    reclassify,
    rusle,
)

SOIL_VARS = ("sand_pct", "silt_pct", "clay_pct", "organic_carbon_pct")
#: Bands of soil_factors_{year}.tif, in order.
FACTOR_BANDS = ("r_factor", "k_factor", "c_factor", "p_factor", "potential_soil_loss")

log = logging.getLogger("karstflow.scripts.services_soil_retention")


def erosivity(input, spec, year: int, climate_mode: str, grid: RegionGrid) -> tuple[np.ndarray, str]:
    """R (MJ mm ha-1 h-1 yr-1) of ``year`` by the configured method, and the file it came from."""
    method = spec["method"]
    if method in MONTHLY_R_FACTOR_METHODS:
        if "climate_monthly" not in input:
            raise ValueError(
                f"config key services.soil_conservation.r_factor.method: {method} needs the monthly climate cube "
                "(climate/climate_monthly.nc of the monthly_climate stage), which this rule was not given"
            )
        path = str(input.climate_monthly)
        monthly = read_cube(path)
        grid.check(monthly, grid_source=input.grid, source=path)
        coefficients = dict(spec["monthly"])
        if climate_mode == "period_mean":
            years = sorted({int(y) for y in monthly["time"].dt.year.values.tolist()})
        else:
            years = [year]
        rs = [
            r_factor_monthly(
                np.asarray(months_of_year(monthly, "precipitation_mm", y, source=path).values, dtype=np.float64),
                a=coefficients["a"],
                b=coefficients["b"],
                c=coefficients["c"],
                si_factor=coefficients["si_factor"],
                name=f"{path}: precipitation_mm ({y})",
            )
            for y in years
        ]
        return np.mean(rs, axis=0), path
    path = str(input.climate)
    climate = read_cube(path)
    grid.check(climate, grid_source=input.grid, source=path)
    precip = climate_of_year(climate, "precipitation_mm", year, mode=climate_mode, source=path)
    r = r_factor(
        np.asarray(precip.values, dtype=np.float64),
        method=method,
        a=spec["a"],
        b=spec["b"],
        name=f"{path}: precipitation_mm ({year})",
    )
    return r, path


def main(input, output, params, wildcards, threads=1) -> None:
    year = int(wildcards.year)
    sc = params.soil_conservation
    grid = RegionGrid.from_dict(read_json(input.grid))

    lc_path = str(input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    lc = np.asarray(landcover.values)
    ls = np.asarray(read_raster(input.ls).values, dtype=np.float64)

    r, r_source = erosivity(input, sc["r_factor"], year, params.climate, grid)

    soil_path = str(input.soil)
    soil = read_cube(soil_path)
    grid.check(soil, grid_source=input.grid, source=soil_path)
    missing = [v for v in SOIL_VARS if v not in soil.data_vars]
    if missing:
        raise ValueError(
            f"{soil_path}: missing soil variable(s) {missing} for the K factor; found {sorted(soil.data_vars)}"
        )

    bio_path = str(input.biophysical)
    bio = check_biophysical_table(pd.read_csv(bio_path), source=bio_path)

    k = k_factor_epic(
        *(np.asarray(soil[v].values, dtype=np.float64) for v in SOIL_VARS),
        si_factor=sc["k_si_factor"],
        names={v: f"{soil_path}: {v}" for v in SOIL_VARS},
    )
    c_table = reclassify(lc, bio["usle_c"].to_dict(), what="usle_c", table_source=bio_path, map_source=lc_path)
    p_factor = reclassify(lc, bio["usle_p"].to_dict(), what="usle_p", table_source=bio_path, map_source=lc_path)
    if sc["cover_factor"] == "vegetation_cover":
        from karstflow.desertification import fvc_dimidiate

        ndvi_path = str(input.ndvi)
        cube = read_cube(ndvi_path)
        grid.check(cube, grid_source=input.grid, source=ndvi_path)
        endmembers = read_json(input.ndvi_endmembers)
        soil_ndvi, veg_ndvi = float(endmembers["soil_ndvi"]), float(endmembers["vegetation_ndvi"])
        ndvi = climate_of_year(cube, "ndvi", year, mode="year", source=ndvi_path)
        fvc = fvc_dimidiate(ndvi, soil_ndvi, veg_ndvi)
        c_cover = c_factor_from_cover(np.asarray(fvc.values, dtype=np.float64))
        # pixels without an NDVI value keep the table's C
        c_factor = np.where(np.isfinite(c_cover), c_cover, c_table)
        log.info(
            "C from vegetation cover (Cai et al. 2000): NDVI end-members %.3f / %.3f",
            soil_ndvi,
            veg_ndvi,
        )
    else:
        c_factor = c_table
    result = rusle(r, k, ls, c_factor, p_factor)
    non_soil = np.isin(lc, list(sc["non_soil_classes"])) | ~np.isfinite(lc.astype(float))
    retention = np.where(non_soil, np.nan, result.retention)
    loss = np.where(non_soil, np.nan, result.actual)
    potential = np.where(non_soil, np.nan, result.potential)
    write_raster(
        grid.data_array(retention.astype(np.float32), name="soil_retention", units="t ha-1 yr-1"),
        output.retention,
    )
    write_raster(
        grid.data_array(loss.astype(np.float32), name="soil_loss", units="t ha-1 yr-1"),
        output.soil_loss,
    )
    shape = grid.shape
    factors = np.stack(
        [np.broadcast_to(np.asarray(a, dtype=np.float64), shape) for a in (r, k, c_factor, p_factor, potential)]
    )
    da = grid.data_array(factors.astype(np.float32), name="soil_factors").rename({"dim_0": "band"})
    da.attrs.update(
        units="R MJ mm ha-1 h-1 yr-1; K t ha h ha-1 MJ-1 mm-1; C, P 1; potential soil loss t ha-1 yr-1",
        r_factor_method=sc["r_factor"]["method"],
        cover_factor=sc["cover_factor"],
        climate=params.climate,
    )
    write_raster(da, output.factors_map, band_names=list(FACTOR_BANDS))
    soil_px = ~non_soil & np.isfinite(retention)
    log.info(
        "soil %d on %d x %d px: %d soil pixel(s), mean retention %.1f t/ha/yr",
        year,
        *shape,
        int(soil_px.sum()),
        float(retention[soil_px].mean()) if soil_px.any() else float("nan"),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
