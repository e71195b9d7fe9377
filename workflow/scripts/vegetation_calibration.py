"""Entry script of rule vegetation_calibration: every sensor of the vegetation record mapped
onto the reference sensor's scale (calibration.json), fitted on the overlap years' composites
or taken from the configuration.

A fit is a region-wide figure (least squares over every pixel both sensors see clear, on
homogeneous neighbourhoods), so it is one region step that rule vegetation_stack reads,
untiled or tile by tile alike.
"""

import dataclasses
import logging
import math

from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.vegetation import Calibration, calibration_from_config, fit_calibration, read_composite

log = logging.getLogger("karstflow.scripts.vegetation_calibration")


def compose(first: Calibration, then: Calibration) -> Calibration:
    """``then`` after ``first``: x -> then(first(x)), for a sensor two switches from the reference."""
    return dataclasses.replace(
        first,
        target_sensor=then.target_sensor,
        gain=first.gain * then.gain,
        offset=then.offset + then.gain * first.offset,
        method=f"{first.method} then {then.method}",
    )


def calibrations_to_reference(direct: list[Calibration], reference: str) -> list[Calibration]:
    """Each sensor mapped onto the reference, chaining direct calibrations where needed."""
    by_source = {c.source_sensor: c for c in direct}
    out = []
    for sensor, cal in by_source.items():
        seen = {sensor}
        while cal.target_sensor != reference:
            nxt = by_source.get(cal.target_sensor)
            if nxt is None or nxt.target_sensor in seen:
                raise ValueError(f"no calibration chain from {sensor} to the reference sensor {reference}")
            seen.add(cal.target_sensor)
            cal = compose(cal, nxt)
        out.append(cal)
    return out


def _invert(c: Calibration) -> Calibration:
    """reference = offset + gain * other  ->  other = (reference - offset) / gain."""
    return dataclasses.replace(
        c, source_sensor=c.target_sensor, target_sensor=c.source_sensor, gain=1.0 / c.gain, offset=-c.offset / c.gain
    )


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    # an odd window of at least calibration_window_m (1 px: every pixel)
    window_px = max(1, 2 * math.ceil(params.window_m / grid.resolution / 2) + 1) if params.window_m else 1
    record = params.record
    reference = record["reference_sensor"]
    direct: list[Calibration] = []
    if params.calibration == "coefficients":
        direct = [
            calibration_from_config(c, key=f"vegetation.coefficients[{i}]") for i, c in enumerate(params.coefficients)
        ]
    else:
        method = "offset" if params.calibration == "offset" else "ols"
        for pair in record["overlap_years"]:
            # the later sensor onto the earlier one's scale, on the pixels both see clear
            earlier, later, year = pair["to"], pair["from"], int(pair["year"])
            ref = read_composite(str(input[f"{earlier}_{year}"]))["ndvi"]
            other = read_composite(str(input[f"{later}_{year}"]))["ndvi"]
            cal = fit_calibration(
                ref,
                other,
                year=year,
                method=method,
                min_pixels=params.min_pixels,
                window_px=window_px,
                max_std=params.max_std,
            )
            direct.append(dataclasses.replace(cal, source_sensor=later, target_sensor=earlier))
            log.info("calibration %s -> %s on %d: %s", later, earlier, year, cal)
        # a chain built toward the earlier sensor; invert links that point away from the reference
        direct = [c if c.source_sensor != reference else _invert(c) for c in direct]
    calibrations = calibrations_to_reference(direct, reference)
    write_json(
        {"reference_sensor": reference, "calibrations": [dataclasses.asdict(c) for c in calibrations]},
        output.calibration,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
