"""Entry script of rule imagery_composite: cloud-masked median composite and clear count of one
period."""

import datetime as dt
import logging
import warnings
from pathlib import Path

from karstflow.composite import ClearCountTally, composite_summary, median_composite
from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.sources import MaskRules, Period, context, get_source
from karstflow.sources.local import LocalSource
from karstflow.sources.rasters import limit_gdal_cache, load_stack, write_streamed

log = logging.getLogger("karstflow.scripts.imagery_composite")


def main(input, output, params, wildcards, threads=1) -> None:
    limit_gdal_cache(params.gdal_cache_mb)
    region_id, name = wildcards.region, wildcards.period
    region = params.region
    period = Period(
        name,
        dt.date.fromisoformat(str(params.period["start"])),
        dt.date.fromisoformat(str(params.period["end"])),
    )
    grid = RegionGrid.from_dict(read_json(input.grid))
    imagery = {"bands": list(params.bands), "max_scene_cloud_pct": params.max_scene_cloud_pct}
    where = context(region_id, period)

    try:
        if region["source"] in ("stac", "earthengine"):
            # the fetch rule wrote the cached tiles' date table (scene cloud cover already applied)
            source = LocalSource.from_date_table(
                region_id, input.scenes[0], bands=tuple(params.bands), name=region["source"]
            )
        else:
            source = get_source(region_id, region, imagery)
        scenes = source.scenes(period, grid)
        rules = MaskRules(
            scl_not_clear=tuple(params.scl_not_clear),
            cs_cdf_threshold=float((region.get("earthengine") or {}).get("cs_cdf_threshold", 0.6)),
        )
        bands = list(source.bands)
        stack = load_stack(
            scenes,
            grid,
            bands,
            chunk_px=params.chunk_px,
            rules=rules,
            resampling=params.resampling,
            region=region_id,
            period=period,
        )
    except Exception as err:
        log.error("%s", err)
        raise
    log.info(
        "%s: %d scenes, bands %s, chunks of %d px, %d threads",
        where,
        len(scenes),
        ",".join(bands),
        params.chunk_px,
        threads,
    )

    composite, count = median_composite(stack["reflectance"], stack["clear"])
    tags = {"period": f"{period.start}/{period.end}", "scenes": len(scenes), "source": source.name}
    tally = ClearCountTally()
    write_streamed(
        {
            output.composite: (
                composite,
                {"dtype": "float32", "nodata": float("nan"), "band_names": bands, "tags": tags},
            ),
            output.clear_count: (
                count,
                {"dtype": "uint16", "nodata": 65535, "band_names": ["clear_count"], "tags": tags},
            ),
        },
        grid,
        on_block=lambda path, window, block: tally.add(block) if path == output.clear_count else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logged by composite_summary
        summary = composite_summary(
            pixels=tally.pixels,
            pixels_with_clear=tally.pixels_with_clear,
            clear_count_sum=tally.clear_count_sum,
            clear_count_max=tally.clear_count_max,
            n_scenes=len(scenes),
            period=name,
            context=where,
        )
    summary.update(
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        source=source.name,
        bands=bands,
        dates=[s.date.isoformat() for s in scenes],
        processing_baselines=sorted(
            {str(s.meta.get("processing_baseline")) for s in scenes if s.meta.get("processing_baseline")}
        ),
    )
    manifest = Path(str(input.scenes[0])).parent / f"manifest_{name}.json"
    summary["bytes_pulled"] = int(read_json(manifest).get("bytes_pulled") or 0) if manifest.exists() else 0
    write_json(summary, output.summary)
    log.info(
        "%s: clear share %.3f, mean clear count %.2f",
        where,
        summary["clear_share"],
        summary["clear_count_mean"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
