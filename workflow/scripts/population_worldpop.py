"""Entry script of rule population_worldpop: persons per pixel per year on the region grid
from WorldPop 100 m (Earth Engine ``WorldPop/GP/100m/pop``; stage worldpop).

Earth Engine serves the year's mosaic as a density (persons km-2, see
:func:`karstflow.sources.ee_products.worldpop`), resampled to the grid; multiplied by the
grid pixel's area it is persons per pixel again, so the region's total is WorldPop's
whatever the grid's resolution. Pixels WorldPop leaves empty (water, outside the country)
are 0 persons, not missing.
"""

import logging

import numpy as np
import xarray as xr

from karstflow.grid import RegionGrid, register_rio
from karstflow.io import read_json, write_json, write_netcdf
from karstflow.runtime import run_script
from karstflow.sources import get_source
from karstflow.sources.ee_products import WORLDPOP_COLLECTION, WORLDPOP_DENSITY_BAND, persons_per_pixel

log = logging.getLogger("karstflow.scripts.population_worldpop")


def density_on_grid(files, grid) -> np.ndarray:
    """The density band of cached tiles mosaicked on the grid (first tile wins; NaN where none)."""
    import rasterio

    from karstflow.sources.rasters import read_window

    out = np.full(grid.shape, np.nan)
    for path in [files] if isinstance(files, str) else list(files):
        with rasterio.open(path) as src:
            names = list(src.descriptions)
        if WORLDPOP_DENSITY_BAND not in names:
            raise ValueError(f"{path}: expected a band {WORLDPOP_DENSITY_BAND!r}, found {names}")
        data, valid = read_window(path, [names.index(WORLDPOP_DENSITY_BAND) + 1], grid, (0, 0, grid.height, grid.width))
        fill = valid[0] & np.isnan(out)
        out[fill] = data[0][fill]
    return out


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    source = get_source(wildcards.region, params.region, params.imagery)
    years = [int(y) for y in params.years]
    layers, totals, empty = [], {}, {}
    for year in years:
        density = density_on_grid(source.population(year, grid, country=params.country), grid)
        if not np.isfinite(density).any():
            raise ValueError(
                f"{WORLDPOP_COLLECTION} {year}: no population value over region {wildcards.region} "
                f"(country {params.country!r}); check coupling.worldpop_country"
            )
        empty[str(year)] = int((~np.isfinite(density)).sum())
        persons = persons_per_pixel(np.where(np.isfinite(density), density, 0.0), grid.pixel_area_m2)
        layers.append(persons.astype(np.float32))
        totals[str(year)] = float(persons.sum())
    coords = {"year": np.array(years, dtype=np.int32), **grid.coords()}
    cube = xr.Dataset(
        {
            "population": xr.DataArray(
                np.stack(layers),
                dims=("year", "y", "x"),
                coords=coords,
                attrs={"long_name": "resident population (WorldPop 100 m)", "units": "persons per pixel"},
            )
        }
    )
    register_rio()
    cube = cube.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    summary = {
        "product": WORLDPOP_COLLECTION,
        "country": params.country,
        "years": years,
        "total_persons": totals,
        "pixels_without_value": empty,
        "method": "density (persons km-2) resampled on Earth Engine, times the grid pixel area",
    }
    write_netcdf(cube, output.cube)
    try:
        write_json(summary, output.summary)
    except BaseException:
        from pathlib import Path

        Path(output.cube).unlink(missing_ok=True)
        raise
    log.info("WorldPop %s: totals %s", years, {k: round(v) for k, v in totals.items()})


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
