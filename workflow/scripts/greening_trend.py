"""Entry script of rule greening_trend: per-pixel Theil-Sen / Mann-Kendall trend rasters (tiled
as greening_trend_tile); the headline figures (greening.json) come from rule greening_summary."""

import logging

from karstflow.greening import greening_trend, log_short_series
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_raster
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
    log_short_series(trend)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
