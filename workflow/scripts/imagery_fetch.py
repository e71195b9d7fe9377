"""Entry script of rule imagery_fetch: one period's scenes into the tile cache, and its date
table."""

import datetime as dt
import logging

from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.sources import Period, get_source
from karstflow.sources.fetch import write_date_table

log = logging.getLogger("karstflow.scripts.imagery_fetch")


def main(input, output, params, wildcards, threads=1) -> None:
    region_id, period_name = wildcards.region, wildcards.period
    period = Period(
        period_name,
        dt.date.fromisoformat(str(params.period["start"])),
        dt.date.fromisoformat(str(params.period["end"])),
    )
    grid = RegionGrid.from_dict(read_json(input.grid))
    try:
        source = get_source(region_id, params.region, params.imagery)
        scenes = source.scenes(period, grid)
    except Exception as err:
        log.error("%s", err)
        raise
    write_date_table(scenes, output.table)
    write_json(
        {
            "region": region_id,
            "period": period_name,
            "source": source.name,
            "scenes": len(scenes),
            "tiles_fetched": source.fetched,
            "tiles_from_cache": source.reused,
            "bytes_pulled": int(getattr(source, "bytes_pulled", 0) or 0),
            "entries": source.last_entries,
        },
        output.manifest,
    )
    log.info(
        "%s %s: %d scenes, %d tiles fetched, %d from the cache, %.1f MB pulled",
        region_id,
        period_name,
        len(scenes),
        source.fetched,
        source.reused,
        int(getattr(source, "bytes_pulled", 0) or 0) / 1e6,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
