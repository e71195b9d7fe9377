"""Entry script of rule imagery_period_summary: the headline figures of one period's composite
(period_<period>.json) from the region's clear count and the composite's tags (after the
tiles, if any, are put together).

The clear count is read block by block (memory is one block, whatever the region size); the
figures are karstflow.composite.composite_summary's, as the compositing rule wrote them
before its summary became a rule of its own.
"""

import logging
import warnings

import rasterio

from karstflow.composite import ClearCountTally, composite_summary
from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.sources import context

log = logging.getLogger("karstflow.scripts.imagery_period_summary")


def _listed(text: str) -> list[str]:
    return [v for v in str(text).split(",") if v]


def main(input, output, params, wildcards, threads=1) -> None:
    name = wildcards.period
    where = context(wildcards.region, name)
    tally = ClearCountTally()
    with rasterio.open(input.clear_count) as ds:
        for _, window in ds.block_windows(1):
            tally.add(ds.read(1, window=window))
    with rasterio.open(input.composite) as ds:
        tags = ds.tags()
        bands = [str(d) for d in ds.descriptions]
    missing = [k for k in ("period", "scenes", "source", "dates") if k not in tags]
    if missing:
        raise ValueError(
            f"{input.composite}: the composite lacks the tag(s) {missing} rule imagery_composite writes; "
            "rerun it (snakemake --forcerun imagery_composite)"
        )
    start, end = tags["period"].split("/")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logged by composite_summary
        summary = composite_summary(
            pixels=tally.pixels,
            pixels_with_clear=tally.pixels_with_clear,
            clear_count_sum=tally.clear_count_sum,
            clear_count_max=tally.clear_count_max,
            n_scenes=int(tags["scenes"]),
            period=name,
            context=where,
        )
    summary.update(
        start=start,
        end=end,
        source=tags["source"],
        bands=bands,
        dates=_listed(tags["dates"]),
        processing_baselines=_listed(tags.get("processing_baselines", "")),
    )
    manifest = input.get("manifest")
    summary["bytes_pulled"] = int(read_json(manifest).get("bytes_pulled") or 0) if manifest else 0
    write_json(summary, output.summary)
    log.info("%s: clear share %.3f, mean clear count %.2f", where, summary["clear_share"], summary["clear_count_mean"])


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
