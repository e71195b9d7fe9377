"""Entry script of rule greening_summary: headline greening figures (greening.json) from the
region's trend rasters and index cube (after the tiles, if any, are put together)."""

import logging

from karstflow.greening import greening_summary, trend_from_rasters
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json
from karstflow.runtime import run_script
from karstflow.trends import TREND_NODATA

log = logging.getLogger("karstflow.scripts.greening_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    source = str(input.cube)
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube = read_cube(source, chunks={"year": -1, "y": params.chunk_px, "x": params.chunk_px})
    grid.check(cube, grid_source=input.grid, source=source)
    slope = read_raster(input.slope)
    # masked=True reads the class nodata as NaN: give the summary its uint8 codes back
    trend_class = read_raster(input.trend_class).fillna(TREND_NODATA).astype("uint8")
    trend = trend_from_rasters(
        slope,
        trend_class,
        cube[params.index],
        alpha=params.alpha,
        autocorrelation=None if params.autocorrelation == "none" else params.autocorrelation,
        min_valid=params.min_valid_years,
        stable_slope=params.stable_slope,
    )
    if not (trend["n_valid"] > 0).any():
        raise ValueError(f"{source}: {params.index} has no valid value")
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
