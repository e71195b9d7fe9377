"""Entry script of rule carbon_npp: CASA NPP, Rh and NEP per year, and the NPP trend, per
pixel (tiled as carbon_npp_tile); the FPAR end-members come from rule carbon_npp_endmembers
and the headline figures (npp.json) from rule carbon_npp_summary.

carbon.time_step monthly (the default): CASA and Rh on the months of climate/climate_monthly.nc,
summed to years; annual: on the annual climate cube (biased, see karstflow.carbon)."""

import logging

import numpy as np
import xarray as xr

from karstflow.carbon import (
    budyko_fu_aet_ratio,
    casa_monthly,
    casa_npp,
    endmember_maps,
    endmembers_from_record,
    endmembers_settings,
    epsilon_max_map,
    heterotrophic_respiration,
    landcover_bracket,
    water_stress,
    year_month,
)
from karstflow.greening import check_same_grid, on_grid, select_years
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_netcdf, write_raster
from karstflow.runtime import run_script
from karstflow.trends import TREND_NODATA, theil_sen_mk

CLIMATE_VARS = ("temperature_c", "precipitation_mm", "solar_mj_m2", "eto_mm")
#: Units of a monthly climate cube (karstflow.climate.MONTHLY_VARIABLES).
MONTHLY_UNITS = {
    "temperature_c": "degC",
    "precipitation_mm": "mm month-1",
    "solar_mj_m2": "MJ m-2 month-1",
    "eto_mm": "mm month-1",
}

log = logging.getLogger("karstflow.scripts.carbon_npp")


def _monthly_climate(path: str, years: list[int], cube: xr.Dataset, chunk_px: int) -> xr.Dataset:
    """The monthly climate cube as (year, month, y, x), units checked, on the NDVI cube's grid."""
    climate = read_cube(path, chunks={"time": 12, "y": chunk_px, "x": chunk_px})
    if "time" not in climate.dims:
        raise ValueError(
            f"{path}: carbon.time_step is monthly but the climate cube has no time axis (dims "
            f"{dict(climate.sizes)}); give the monthly climate (regions.<id>.inputs.climate_monthly)"
        )
    check_same_grid(cube, climate, "NDVI cube", path)
    bad = {
        v: climate[v].attrs.get("units")
        for v in CLIMATE_VARS
        if v in climate and climate[v].attrs.get("units") != MONTHLY_UNITS[v]
    }
    missing = [v for v in CLIMATE_VARS if v not in climate.data_vars]
    if missing or bad:
        raise ValueError(
            f"{path}: monthly CASA needs {MONTHLY_UNITS} (per month); missing {missing}, other units {bad}"
        )
    climate = climate[list(CLIMATE_VARS)].assign_coords(y=cube["y"], x=cube["x"])
    return xr.Dataset({v: year_month(climate[v], years, source=path) for v in CLIMATE_VARS})


def main(input, output, params, wildcards, threads=1) -> None:
    chunks = {"year": -1, "y": params.chunk_px, "x": params.chunk_px}
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube_path, climate_path = str(input.cube), str(input.climate)
    monthly = params.time_step == "monthly"
    if params.time_step not in ("monthly", "annual"):
        raise ValueError(f"config key carbon.time_step: expected monthly or annual, found {params.time_step!r}")

    cube = read_cube(cube_path, chunks=chunks)
    grid.check(cube, grid_source=input.grid, source=cube_path)
    years = [int(y) for y in cube["year"].values]
    if monthly:
        climate = _monthly_climate(climate_path, years, cube, params.chunk_px)
    else:
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
    # between two maps a changed pixel's class is known only to lie between them: NPP is the
    # expectation over a change year uniform in the interval (karstflow.carbon.landcover_bracket)
    lc_before, lc_after, lc_weight = landcover_bracket(landcovers, years)
    lc_source = ", ".join(str(input[f"landcover_{y}"]) for y in params.landcover_years)

    ndvi = cube["ndvi"]
    fp = params.fpar
    # end-members per type: region-wide percentiles over the pixel-years whose class is known
    # (rule carbon_npp_endmembers), the same table untiled and on every tile
    endmembers_path = str(input.endmembers)
    table = endmembers_from_record(read_json(endmembers_path), source=endmembers_path, expect=endmembers_settings(fp))
    for row in table.itertuples():
        log.info(
            "FPAR end-members of land-cover code %d (%d pixel-years): NDVI %.3f-%.4f, SR %.2f-%.3f",
            row.code,
            row.n,
            row.ndvi_min,
            row.ndvi_max,
            row.sr_min,
            row.sr_max,
        )
        if row.ndvi_max <= row.ndvi_min or row.sr_max <= row.sr_min:
            log.warning("land-cover code %d: NDVI_max <= NDVI_min, FPAR_min for its pixels", row.code)

    def type_parameters(lc: xr.DataArray) -> tuple[xr.DataArray, dict]:
        ndvi_max, sr_max = endmember_maps(lc, table)
        fpar_kw = dict(
            ndvi_min=fp["ndvi_min"],
            ndvi_max=ndvi_max,
            sr_min=fp["sr_min"],
            sr_max=sr_max,
            fpar_min=fp["min"],
            fpar_max=fp["max"],
            ndvi_weight=fp["ndvi_weight"],
        )
        return epsilon_max_map(lc, params.epsilon_max, source=lc_source), fpar_kw

    sides = [type_parameters(lc_before)]
    if float(lc_weight.max()) > 0:
        sides.append(type_parameters(lc_after))

    def blend(values: list[xr.DataArray]) -> xr.DataArray:
        return values[0] if len(values) == 1 else (values[0] * (1 - lc_weight) + values[1] * lc_weight)

    if params.rh_model != "pei2009":
        raise ValueError(f"config key carbon.heterotrophic_respiration: unknown model {params.rh_model!r}")
    if monthly:
        runs = [
            casa_monthly(ndvi, climate, eps, omega=params.fu_omega, peak_month=params.ndvi_peak_month, **kw)
            for eps, kw in sides
        ]
        npp = blend([r["npp"] for r in runs]).where(ndvi.notnull())
        rh, t_opt = runs[0]["rh"], runs[0]["t_opt"]  # neither depends on the land cover
        extra = {"t_stress_apar": runs[0]["t_stress_apar"]}
        note = (
            "CASA on monthly steps summed to years: APAR = monthly solar radiation x FPAR x 0.5 with the "
            "year's (growing-season) NDVI for each of its months (no monthly NDVI); T_opt per year = "
            f"temperature of the month of peak NDVI ({t_opt.attrs['method']}); W_e from Fu's Budyko curve "
            "on the year's P and ETo, for each month; Rh (Pei et al. 2009) per month, summed"
        )
    else:
        w_e = water_stress(budyko_fu_aet_ratio(climate["precipitation_mm"], climate["eto_mm"], omega=params.fu_omega))
        runs = [casa_npp(ndvi, climate["solar_mj_m2"], climate["temperature_c"], w_e, eps, **kw) for eps, kw in sides]
        rh = heterotrophic_respiration(climate["temperature_c"], climate["precipitation_mm"], months_per_step=12)
        npp, t_opt, extra = blend([r["npp"] for r in runs]).where(ndvi.notnull()), runs[0]["t_opt"], {}
        note = (
            "CASA on annual steps (carbon.time_step: annual, biased: T_e1 T_e2 near 1 and Rh on the annual "
            "mean temperature low): APAR = annual solar radiation x FPAR(annual NDVI) x 0.5; T_opt = "
            "temperature of the year of peak NDVI; W_e from Fu's Budyko curve with annual P and ETo"
        )
    note += (
        "; between two land-cover maps NPP = (1 - w) NPP(earlier map) + w NPP(later map), "
        "w = (t - t0) / (t1 - t0): the expectation over an unobserved change year"
    )
    nep = (npp - rh).astype(np.float32)
    unit = "g C m-2 yr-1"
    out = xr.Dataset(
        {
            "npp": npp.assign_attrs(long_name="net primary production (CASA)", units=unit),
            "rh": rh.assign_attrs(units=unit),
            "nep": nep.assign_attrs(long_name="net ecosystem production, NPP - Rh", units=unit),
            "t_opt": t_opt,
            **extra,
        }
    ).drop_vars("spatial_ref", errors="ignore")
    out = on_grid(out, grid)
    out.attrs.update(
        time_step=params.time_step,
        casa_ndvi_min=float(fp["ndvi_min"]),
        casa_sr_min=float(fp["sr_min"]),
        fpar_max_percentile=float(fp["max_percentile"]),
        fpar_endmembers_of=",".join(
            f"{c}:{t}" for c, t in sorted(fp["endmembers_of"].items(), key=lambda kv: int(kv[0]))
        ),
        casa_ndvi_max_by_code=",".join(f"{r.code}:{r.ndvi_max:.6f}" for r in table.itertuples()),
        casa_sr_max_by_code=",".join(f"{r.code}:{r.sr_max:.6f}" for r in table.itertuples()),
        fpar_min=fp["min"],
        fpar_max=fp["max"],
        fpar_ndvi_weight=fp["ndvi_weight"],
        par_fraction=0.5,
        fu_omega=params.fu_omega,
        rh_model=params.rh_model,
        ndvi_peak_month=str(params.ndvi_peak_month),
        landcover_years=",".join(map(str, params.landcover_years)),
        landcover_between_maps="linear blend of the two maps' NPP (expected value over the change year)",
        epsilon_max_g_c_per_mj=",".join(
            f"{k}:{v}" for k, v in sorted(params.epsilon_max.items(), key=lambda kv: int(kv[0]))
        ),
        note=note,
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
        interval=False,  # only slope and class are written; the interval costs ~1.4x kernel time
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


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
