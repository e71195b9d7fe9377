"""Entry script of rule vegetation_summary: the vegetation record's figures (vegetation.json:
the sensor of each year, the calibrations onto the reference sensor, each year's composite
figures and the bytes pulled) from calibration.json and the composites' summaries."""

import logging

from karstflow.io import read_json, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.vegetation_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    record = params.record
    calibration = read_json(input.calibration)
    sensor_of_year = {int(y): s for y, s in record["sensor_of_year"].items()}
    per = {key: read_json(str(input[key])) for key in input.keys() if key != "calibration"}
    years = [per[f"{s}_{y}"] for y, s in sorted(sensor_of_year.items())]
    pulled = {key: int(body.get("bytes_pulled") or 0) for key, body in per.items()}
    write_json(
        {
            "reference_sensor": calibration["reference_sensor"],
            "sensor_of_year": {str(y): s for y, s in sorted(sensor_of_year.items())},
            "calibrations": calibration["calibrations"],
            "years": years,
            "bytes_pulled": pulled,
            "bytes_pulled_total": sum(pulled.values()),
        },
        output.summary,
    )
    log.info("vegetation record of %s: %d years", wildcards.region, len(years))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
