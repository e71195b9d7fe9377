"""Entry script of rule carbon_npp: CASA NPP, Rh and NEP per year, and the NPP trend."""

import logging

import numpy as np
import xarray as xr

from karstflow.carbon import (
    budyko_fu_aet_ratio,
    casa_npp,
    epsilon_max_map,
    heterotrophic_respiration,
    landcover_by_year,
    npp_summary,
    water_stress,
)
from karstflow.greening import check_same_grid, on_grid, percentile_endmembers, select_years
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json, write_netcdf, write_raster
from karstflow.runtime import run_script
from karstflow.trends import TREND_NODATA, theil_sen_mk

CLIMATE_VARS = ("temperature_c", "precipitation_mm", "solar_mj_m2", "eto_mm")

log = logging.getLogger("karstflow.scripts.carbon_npp")


def main(input, output, params, wildcards, threads=1) -> None:
    chunks = {"year": -1, "y": params.chunk_px, "x": params.chunk_px}
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube_path, climate_path = str(input.cube), str(input.climate)

    cube = read_cube(cube_path, chunks=chunks)
    grid.check(cube, grid_source=input.grid, source=cube_path)
    years = [int(y) for y in cube["year"].values]
    climate = read_cube(climate_path, chunks=chunks)
    check_same_grid(cube, climate, cube_path, climate_path)
    missing_vars = [v for v in CLIMATE_VARS if v not in climate.data_vars]
    if missing_vars:
        raise ValueError(f"{climate_path}: missing variable(s) {missing_vars}; found {sorted(climate.data_vars)}")
    climate = select_years(climate, years, source=climate_path).assign_coords(y=cube["y"], x=cube["x"])

    landcovers = {}
    for year in params.landcover_years:
        path = str(input[f"landcover_{year}"])
        lc = read_raster(path, chunks={"y": params.chunk_px, "x": params.chunk_px})
        check_same_grid(cube, lc, cube_path, path)
        landcovers[year] = lc.assign_coords(y=cube["y"], x=cube["x"])
    lc_cube = landcover_by_year(landcovers, years)
    eps_max = epsilon_max_map(
        lc_cube,
        params.epsilon_max,
        source=", ".join(str(input[f"landcover_{y}"]) for y in params.landcover_years),
    )

    ndvi = cube["ndvi"]
    ndvi_min, ndvi_max = percentile_endmembers(ndvi, *params.fpar["ndvi_percentiles"])
    log.info(
        "FPAR end-members: NDVI_min %.4f, NDVI_max %.4f (percentiles %s, years pooled)",
        ndvi_min,
        ndvi_max,
        params.fpar["ndvi_percentiles"],
    )
    w_e = water_stress(budyko_fu_aet_ratio(climate["precipitation_mm"], climate["eto_mm"], omega=params.fu_omega))
    casa = casa_npp(
        ndvi,
        climate["solar_mj_m2"],
        climate["temperature_c"],
        w_e,
        eps_max,
        ndvi_min=ndvi_min,
        ndvi_max=ndvi_max,
        fpar_min=params.fpar["min"],
        fpar_max=params.fpar["max"],
        ndvi_weight=params.fpar["ndvi_weight"],
    )
    if params.rh_model != "pei2009":
        raise ValueError(f"config key carbon.heterotrophic_respiration: unknown model {params.rh_model!r}")
    rh = heterotrophic_respiration(
        climate["temperature_c"], climate["precipitation_mm"], months_per_step=params.months_per_step
    )
    npp = casa["npp"].where(ndvi.notnull())
    nep = (npp - rh).astype(np.float32)
    unit = "g C m-2 yr-1" if params.months_per_step == 12 else f"g C m-2 per {params.months_per_step:g} months"
    out = xr.Dataset(
        {
            "npp": npp.assign_attrs(long_name="net primary production (CASA)", units=unit),
            "rh": rh.assign_attrs(units=unit),
            "nep": nep.assign_attrs(long_name="net ecosystem production, NPP - Rh", units=unit),
            "t_opt": casa["t_opt"],
        }
    ).drop_vars("spatial_ref", errors="ignore")
    out = on_grid(out, grid)
    out.attrs.update(
        casa_ndvi_min=ndvi_min,
        casa_ndvi_max=ndvi_max,
        fpar_min=params.fpar["min"],
        fpar_max=params.fpar["max"],
        fpar_ndvi_weight=params.fpar["ndvi_weight"],
        par_fraction=0.5,
        fu_omega=params.fu_omega,
        rh_model=params.rh_model,
        months_per_step=params.months_per_step,
        landcover_years=",".join(map(str, params.landcover_years)),
        epsilon_max_g_c_per_mj=",".join(
            f"{k}:{v}" for k, v in sorted(params.epsilon_max.items(), key=lambda kv: int(kv[0]))
        ),
        note="CASA on annual steps: APAR = annual solar radiation x FPAR(annual NDVI) x 0.5; "
        "T_opt = temperature of the year of peak NDVI; W_e from Fu's Budyko curve with annual P "
        "and ETo",
    )
    write_netcdf(out, output.npp, chunks={"year": len(years), "y": params.chunk_px, "x": params.chunk_px})
    log.info("NPP/Rh/NEP cube -> %s", output.npp)

    npp_disk = read_cube(output.npp, chunks=chunks)["npp"]
    trend = theil_sen_mk(
        npp_disk,
        dim="year",
        alpha=params.alpha,
        autocorrelation=None if params.autocorrelation == "none" else params.autocorrelation,
        min_valid=params.min_valid_years,
        stable_slope=params.stable_slope,
    )[["slope", "trend_class"]].compute()
    write_raster(
        grid.data_array(trend["slope"].values, name="npp_trend_slope", units=f"{unit} per year"),
        output.slope,
    )
    write_raster(
        grid.data_array(trend["trend_class"].values, name="npp_trend_class"),
        output.trend_class,
        dtype="uint8",
        nodata=TREND_NODATA,
    )
    log.info("NPP trend: mean slope %.3f g C m-2 yr-2", float(np.nanmean(trend["slope"].values)))
    summary = npp_summary(read_cube(output.npp).load(), trend, pixel_area_m2=grid.pixel_area_m2)
    summary["method"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in out.attrs.items()}
    write_json(summary, output.summary)
    log.info(
        "NPP %.1f, Rh %.1f, NEP %.1f g C m-2 yr-1",
        summary["npp_mean_g_c_m2_yr"],
        summary["rh_mean_g_c_m2_yr"],
        summary["nep_mean_g_c_m2_yr"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
