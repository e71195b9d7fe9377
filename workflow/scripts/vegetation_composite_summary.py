"""Entry script of rule vegetation_composite_summary: the figures of one sensor's growing-season
composite ({sensor}_{year}.json: clear share and counts, scenes, first and last date, bytes
pulled) from the region's composite (after the tiles, if any, are put together) and, for a
remote region, the fetch manifest."""

import logging

import rasterio
import xarray as xr

from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.vegetation import BANDS, composite_summary_of_year

log = logging.getLogger("karstflow.scripts.vegetation_composite_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    sensor, year = wildcards.sensor, int(wildcards.year)
    with rasterio.open(input.composite) as ds:
        tags = ds.tags()
        band = ds.descriptions.index("clear_count") + 1 if "clear_count" in ds.descriptions else None
        if band is None:
            band = BANDS.index("clear_count") + 1  # composites written before the bands were named
        clear_count = ds.read(band)
    attrs = {k: tags[k] for k in ("sensor", "method", "scenes", "dates") if k in tags}
    attrs.setdefault("sensor", sensor)
    summary = composite_summary_of_year(xr.Dataset({"clear_count": (("y", "x"), clear_count)}, attrs=attrs))
    start, end = tags["season"].split("/")
    fetched = read_json(input.manifest) if input.get("manifest") else {}
    summary.update(
        sensor=sensor,
        year=year,
        season=[start, end],
        source=params.source,
        bytes_pulled=int(fetched.get("bytes_pulled") or 0),
        tiles_fetched=int(fetched.get("tiles_fetched") or 0),
    )
    write_json(summary, output.summary)
    log.info("%s %s %d: %s", wildcards.region, sensor, year, summary)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
