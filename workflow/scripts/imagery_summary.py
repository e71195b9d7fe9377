"""Entry script of rule imagery_summary: headline imagery figures of a region, per period."""

import logging

from karstflow.io import read_json, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.imagery_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    periods = {name: read_json(path) for name, path in zip(params.periods, input.periods, strict=False)}
    keys = (
        "scenes",
        "clear_share",
        "clear_count_mean",
        "clear_count_max",
        "all_cloudy",
        "start",
        "end",
    )
    summary = {
        "source": next(iter(periods.values()))["source"] if periods else None,
        "periods": {
            name: {**{k: body[k] for k in keys}, "bytes_pulled": int(body.get("bytes_pulled", 0))}
            for name, body in periods.items()
        },
        "bytes_pulled_total": sum(int(body.get("bytes_pulled", 0)) for body in periods.values()),
        "scenes_total": sum(body["scenes"] for body in periods.values()),
        "clear_share_min": min((body["clear_share"] for body in periods.values()), default=None),
    }
    write_json(summary, output.summary)
    log.info(
        "imagery of %s: %d periods, %d scenes",
        wildcards.region,
        len(periods),
        summary["scenes_total"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
