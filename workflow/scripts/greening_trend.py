"""Entry script of rule greening_trend: per-pixel Theil-Sen / Mann-Kendall trend and summary."""

import logging

from karstflow.greening import greening_summary, greening_trend
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_json, write_raster
from karstflow.runtime import run_script
from karstflow.trends import TREND_NODATA

log = logging.getLogger("karstflow.scripts.greening_trend")


def main(input, output, params, wildcards, threads=1) -> None:
    source = str(input.cube)
    grid = RegionGrid.from_dict(read_json(input.grid))

    cube = read_cube(source, chunks={"year": -1, "y": params.chunk_px, "x": params.chunk_px})
    grid.check(cube, grid_source=input.grid, source=source)
    trend = greening_trend(
        cube[params.index],
        alpha=params.alpha,
        min_valid=params.min_valid_years,
        autocorrelation=None if params.autocorrelation == "none" else params.autocorrelation,
        stable_slope=params.stable_slope,
    )
    # keep only what is written or summarised (the kernel computes the rest anyway)
    trend = trend[["slope", "slope_low", "slope_high", "p", "trend_class", "n_valid"]].compute()
    log.info(
        "trend of %s over %d years computed (min_valid %d)",
        params.index,
        cube.sizes["year"],
        trend.attrs["min_valid"],
    )

    units = f"{params.index} per year"
    write_raster(grid.data_array(trend["slope"].values, name="trend_slope", units=units), output.slope)
    # Sen (1968) 1 - alpha confidence interval of the slope (Hamed-Rao variance when that is on)
    for key, name in (("slope_low", "trend_slope_low"), ("slope_high", "trend_slope_high")):
        write_raster(
            grid.data_array(trend[key].values, name=name, units=units, long_name=trend[key].attrs["long_name"]),
            output[key],
        )
    write_raster(grid.data_array(trend["p"].values, name="trend_p", units="1"), output.p)
    write_raster(
        grid.data_array(trend["trend_class"].values, name="trend_class"),
        output.trend_class,
        dtype="uint8",
        nodata=TREND_NODATA,
    )
    years = (int(cube["year"].values[0]), int(cube["year"].values[-1]))
    summary = greening_summary(trend, pixel_area_km2=grid.pixel_area_m2 / 1e6, index=params.index, years=years)
    if "sensor" in cube.coords:
        # the record's sensor per year, and the calibration that put them on one scale
        summary["sensor_of_year"] = {
            str(int(y)): str(s) for y, s in zip(cube["year"].values, cube["sensor"].values, strict=True)
        }
        summary["calibrations"] = cube.attrs.get("calibrations", "")
    write_json(summary, output.summary)
    log.info(
        "greening: mean slope %.5f/yr, significant greening %.1f %%, significant browning %.1f %%",
        summary["slope_mean_per_yr"],
        100 * summary["class_share"]["significant_greening"],
        100 * summary["class_share"]["significant_browning"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
