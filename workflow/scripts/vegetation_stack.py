"""Entry script of rule vegetation_stack: the annual stack of the vegetation record, every
year on the reference sensor's scale (fitted on the overlap years or configured), with the
sensor of each year recorded; and the record's summary."""

import dataclasses
import logging
import math
from pathlib import Path

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json, write_netcdf_blocks
from karstflow.runtime import run_script
from karstflow.sources.rasters import limit_gdal_cache
from karstflow.vegetation import BANDS, Calibration, annual_cube, calibration_from_config, fit_calibration

log = logging.getLogger("karstflow.scripts.vegetation_stack")


def _composite(path: str, chunk_px: int | None = None):
    """A composite GeoTIFF as a Dataset: the index bands, then any reflectance bands, named
    by the band descriptions vegetation_composite wrote."""
    import rasterio

    chunks = {"band": -1, "y": chunk_px, "x": chunk_px} if chunk_px else None
    da = read_raster(path, chunks=chunks)
    with rasterio.open(path) as src:
        names = [d or "" for d in src.descriptions]
    if len(names) == len(BANDS) or names[: len(BANDS)] != list(BANDS):
        names = list(BANDS)  # composites written before the bands were named
    if len(names) != da.sizes["band"]:
        raise ValueError(f"{path}: {da.sizes['band']} bands, expected {len(names)} ({names})")
    return da.assign_coords(band=names).to_dataset("band")


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


def main(input, output, params, wildcards, threads=1) -> None:
    limit_gdal_cache(params.gdal_cache_mb)  # else GDAL's cache (5 % of RAM) sets the peak
    grid = RegionGrid.from_dict(read_json(input.grid))
    # an odd window of at least calibration_window_m (1 px: every pixel)
    window_px = max(1, 2 * math.ceil(params.window_m / grid.resolution / 2) + 1) if params.window_m else 1
    record = params.record
    reference = record["reference_sensor"]
    sensor_of_year = {int(y): s for y, s in record["sensor_of_year"].items()}
    path_of = {key: str(getattr(input, key)) for key in input.keys() if key != "grid"}
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
            ref = _composite(path_of[f"{earlier}_{year}"])["ndvi"]
            other = _composite(path_of[f"{later}_{year}"])["ndvi"]
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
    composites = {y: _composite(path_of[f"{s}_{y}"], params.chunk_px) for y, s in sensor_of_year.items()}
    cube = annual_cube(composites, sensor_of_year, calibrations, reference=reference)
    cube.attrs.update(source="vegetation stage (karstflow.vegetation)", reference_sensor=reference)
    write_netcdf_blocks(cube, output.stack, block_px=params.chunk_px)  # memory follows chunk_px
    write_json(
        {"reference_sensor": reference, "calibrations": [dataclasses.asdict(c) for c in calibrations]},
        output.calibration,
    )
    per = {key: read_json(Path(p).with_suffix(".json")) for key, p in path_of.items()}  # every composite's figures
    years = [per[f"{s}_{y}"] for y, s in sorted(sensor_of_year.items())]
    pulled = {key: int(body.get("bytes_pulled") or 0) for key, body in per.items()}
    write_json(
        {
            "reference_sensor": reference,
            "sensor_of_year": {str(y): s for y, s in sorted(sensor_of_year.items())},
            "calibrations": [dataclasses.asdict(c) for c in calibrations],
            "years": years,
            "bytes_pulled": pulled,
            "bytes_pulled_total": sum(pulled.values()),
        },
        output.summary,
    )
    read_cube(output.stack)  # fails loudly if the file cannot be read back


def _invert(c: Calibration) -> Calibration:
    """reference = offset + gain * other  ->  other = (reference - offset) / gain."""
    return dataclasses.replace(
        c, source_sensor=c.target_sensor, target_sensor=c.source_sensor, gain=1.0 / c.gain, offset=-c.offset / c.gain
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
