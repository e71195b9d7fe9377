"""Entry script of rule climate_monthly: the region's monthly climate on its grid, in
canonical variables and units (karstflow.climate.MONTHLY_VARIABLES).

Earth Engine regions pull ERA5-Land or TerraClimate months (one image per year, the months
as bands), STAC regions a collection of monthly COG items, local regions read their
climate_monthly input; units are converted from what each file declares.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

import xarray as xr

from karstflow import climate
from karstflow.checks import check_variables
from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_netcdf
from karstflow.runtime import run_script
from karstflow.sources import get_source

log = logging.getLogger("karstflow.scripts.climate_monthly")


def main(input, output, params, wildcards, threads=1) -> None:
    region_id = wildcards.region
    grid = RegionGrid.from_dict(read_json(input.grid))
    years = [int(y) for y in params.years]
    if params.entry:
        entry = params.entry
        monthly = climate.read_monthly_local(
            entry["path"],
            entry.get("variables") or {},
            grid,
            resampling=entry.get("resampling") or params.resampling,
            units=entry.get("units") or {},
        )
        origin = f"input climate_monthly ({entry['path']})"
    else:
        source = get_source(region_id, params.region, params.imagery)
        kind = params.region["source"]
        product = params.product if kind == "earthengine" else "terraclimate"
        collection = ((params.region.get("stac") or {}).get("collections") or {}).get("climate", "terraclimate")

        def pull(year: int) -> xr.Dataset:
            if kind == "earthengine":
                files = source.climate_monthly(product, year, grid)
            else:
                files = source.climate_monthly(
                    year, grid, collection=collection, variables=climate.TERRACLIMATE_NEEDED["pet"]
                )
            raw = climate.read_monthly_bands(files, grid, resampling=params.resampling)
            log.info("%s %d: %d months of %s from %s", region_id, year, raw.sizes.get("time", 0), product, kind)
            return raw

        # the years are fetched concurrently (imagery.fetch.max_concurrent): each is a few
        # small requests per month, so a year's wait is latency, not bandwidth
        workers = max(1, int((params.imagery.get("fetch") or {}).get("max_concurrent", 4)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="climate-year") as pool:
            parts = list(pool.map(pull, years))
        # converted as one series, so the monthly soil heat flux (FAO-56 eq. 43) spans year ends
        convert = climate.era5_land_to_monthly if product == "era5-land" else climate.terraclimate_to_monthly
        monthly = convert(xr.concat(parts, dim="time"))
        origin = f"{product} via {kind}"
    monthly.attrs["origin"] = origin
    # in canonical units now, so one range per variable whatever the source's units were
    check_variables(monthly, source=origin)
    write_netcdf(monthly, output.monthly)
    log.info(
        "%s: monthly climate %s, %d months -> %s",
        region_id,
        list(monthly.data_vars),
        monthly.sizes["time"],
        output.monthly,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
