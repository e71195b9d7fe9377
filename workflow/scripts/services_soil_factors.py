"""Entry script of rule services_soil_factors: the region means of one year's RUSLE factors
and soil figures (soil_factors_{year}.json), over the soil pixels of the whole region.

Reads the per-pixel maps rule services_soil_retention writes (put together from the tiles
when the region is tiled): soil_factors_{year}.tif (bands r_factor, k_factor, c_factor,
p_factor, potential_soil_loss), soil retention and soil loss, the LS factor and the land
cover (the non-soil classes, water and built-up, have no soil service).
"""

import logging

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.services_soil_factors")

FACTOR_BANDS = ("r_factor", "k_factor", "c_factor", "p_factor", "potential_soil_loss")


def _on_grid(grid: RegionGrid, input, key: str) -> np.ndarray:
    path = str(input[key])
    da = read_raster(path)
    grid.check(da, grid_source=input.grid, source=path)
    return np.asarray(da.values, dtype=np.float64)


def main(input, output, params, wildcards, threads=1) -> None:
    year = int(wildcards.year)
    sc = params.soil_conservation
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc = _on_grid(grid, input, "landcover")
    non_soil = np.isin(lc, list(sc["non_soil_classes"])) | ~np.isfinite(lc)
    soil_px = ~non_soil

    import rasterio

    with rasterio.open(input.factors_map) as ds:
        names = tuple(ds.descriptions)
    if names != FACTOR_BANDS:
        raise ValueError(f"{input.factors_map}: expected bands {list(FACTOR_BANDS)}, found {list(names)}")
    stack = _on_grid(grid, input, "factors_map")
    bands = dict(zip(FACTOR_BANDS, stack, strict=True))

    def mean(a):
        a = np.asarray(a, dtype=np.float64)[soil_px]
        a = a[np.isfinite(a)]
        return float(a.mean()) if a.size else float("nan")

    factors = {
        "year": year,
        "climate": params.climate,
        "r_factor_method": sc["r_factor"]["method"],
        "r_factor_source": params.r_factor_source,
        "cover_factor": sc["cover_factor"],
        "r_mean_mj_mm_ha_h_yr": mean(bands["r_factor"]),
        "k_mean_t_ha_h_ha_mj_mm": mean(bands["k_factor"]),
        "ls_mean": mean(_on_grid(grid, input, "ls")),
        "c_mean": mean(bands["c_factor"]),
        "p_mean": mean(bands["p_factor"]),
        "potential_soil_loss_mean_t_ha_yr": mean(bands["potential_soil_loss"]),
        "actual_soil_loss_mean_t_ha_yr": mean(_on_grid(grid, input, "soil_loss")),
        "soil_retention_mean_t_ha_yr": mean(_on_grid(grid, input, "retention")),
        "non_soil_pixels": int(non_soil.sum()),
        "non_soil_classes": list(sc["non_soil_classes"]),
    }
    write_json(factors, output.factors)
    log.info(
        "soil %d: R %.0f, K %.4f, LS %.2f, C %.3f, P %.2f -> potential %.1f, actual %.2f, retention %.1f t/ha/yr",
        year,
        factors["r_mean_mj_mm_ha_h_yr"],
        factors["k_mean_t_ha_h_ha_mj_mm"],
        factors["ls_mean"],
        factors["c_mean"],
        factors["p_mean"],
        factors["potential_soil_loss_mean_t_ha_yr"],
        factors["actual_soil_loss_mean_t_ha_yr"],
        factors["soil_retention_mean_t_ha_yr"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
