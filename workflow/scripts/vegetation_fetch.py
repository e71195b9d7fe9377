"""Entry script of rule vegetation_fetch: one year's growing season of one sensor into the
tile cache: the scenes (stac) or the composite Earth Engine computes (earthengine), and the
table the composite rule reads."""

import logging
from pathlib import Path

from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_csv, write_json
from karstflow.runtime import run_script
from karstflow.sensors import SensorRules
from karstflow.sources import get_source
from karstflow.sources.cache import relative_to
from karstflow.sources.fetch import write_date_table
from karstflow.vegetation import season_period

log = logging.getLogger("karstflow.scripts.vegetation_fetch")


def main(input, output, params, wildcards, threads=1) -> None:
    import pandas as pd

    region_id, sensor, year = wildcards.region, wildcards.sensor, int(wildcards.year)
    grid = RegionGrid.from_dict(read_json(input.grid))
    period = season_period(year, params.season_months)
    source = get_source(region_id, params.region, params.imagery)
    veg = params.vegetation
    rules = SensorRules(
        landsat_qa_not_clear=tuple(veg["landsat_qa_not_clear"]),
        scl_not_clear=tuple(veg["scl_not_clear"]),
        modis_reliability_clear=tuple(veg["modis_reliability_clear"]),
    )
    if params.region["source"] == "earthengine":
        # Earth Engine composites the season on its side: only the composite's pixels come back
        files = source.vegetation_composite(sensor, period, grid, method=veg["composite"], rules=rules)
        rel = [relative_to(f, Path(output.table).parent) for f in files]  # as date tables name files
        table = pd.DataFrame({"date": period.end.isoformat(), "file": rel, "sensor": sensor, "kind": "composite"})
        write_csv(table, output.table, index=False)
        scenes = None
    else:
        scenes = source.vegetation_scenes(sensor, period, grid)
        write_date_table(scenes, output.table)
    bytes_pulled = int(getattr(source, "bytes_pulled", 0) or 0)
    write_json(
        {
            "region": region_id,
            "sensor": sensor,
            "year": year,
            "season": [period.start.isoformat(), period.end.isoformat()],
            "source": source.name,
            "scenes": len(scenes) if scenes is not None else None,
            "server_side_composite": scenes is None,
            "tiles_fetched": source.fetched,
            "tiles_from_cache": source.reused,
            "bytes_pulled": bytes_pulled,
            "entries": source.last_entries,
        },
        output.manifest,
    )
    log.info(
        "%s %s %d: %s, %d tiles fetched, %d from the cache, %.1f MB pulled",
        region_id,
        sensor,
        year,
        "server-side composite" if scenes is None else f"{len(scenes)} scenes",
        source.fetched,
        source.reused,
        bytes_pulled / 1e6,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
