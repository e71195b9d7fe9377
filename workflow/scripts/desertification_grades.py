"""Entry script of rule desertification_grades: FVC, bedrock exposure and RD grades of every year.

Per pixel only: the region-wide figures (FVC end-members, exposure method, unmixing
end-members) come from rule desertification_endmembers (input ``endmembers``), so the rule
runs one tile at a time as well (desertification_grades_tile) and the tiles agree. The
exposure method is recorded in the cube's attributes (exposure_method, exposure_source),
which the area table, the summary and the maps carry on; the areas are rule
desertification_area.
"""

import json
import logging

from karstflow.desertification import (
    EXPOSURE_LABELS,
    check_grading_statistics,
    fvc_dimidiate,
    rd_grade,
    unmix,
)
from karstflow.greening import check_same_grid, on_grid, select_years
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_netcdf
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_grades")


def _needs(input, key: str, method: str, source: str) -> str:
    if key not in input:
        raise ValueError(f"{source}: exposure_method {method!r} needs the rule's input {key!r}, which it lacks")
    return str(input[key])


def main(input, output, params, wildcards, threads=1) -> None:
    chunks = {"year": -1, "y": params.chunk_px, "x": params.chunk_px}
    plane = {"y": params.chunk_px, "x": params.chunk_px}
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube_path = str(input.cube)

    cube = read_cube(cube_path, chunks=chunks)
    grid.check(cube, grid_source=input.grid, source=cube_path)
    ndvi = cube["ndvi"]
    years = [int(y) for y in cube["year"].values]

    carbonate = read_raster(input.carbonate, chunks=plane)
    check_same_grid(cube, carbonate, cube_path, str(input.carbonate))
    carbonate = carbonate.assign_coords(y=cube["y"], x=cube["x"])

    stats_source = str(input.endmembers)
    stats = check_grading_statistics(read_json(stats_source), stats_source)
    soil, veg = float(stats["ndvi_soil"]), float(stats["ndvi_veg"])
    fvc = fvc_dimidiate(ndvi, soil, veg)

    method = stats["exposure_method"]
    extra = {}
    if method == "layer":
        exposure_source = _needs(input, "exposure", method, stats_source)
        expo = read_cube(exposure_source, chunks=chunks)
        check_same_grid(cube, expo, cube_path, exposure_source)
        if "bedrock_exposure" not in expo.data_vars:
            raise ValueError(
                f"{exposure_source}: expected a variable 'bedrock_exposure', found {sorted(expo.data_vars)}"
            )
        exposure = select_years(expo, years, source=exposure_source)["bedrock_exposure"]
        exposure = exposure.assign_coords(y=cube["y"], x=cube["x"])
    elif method == "unmixing":
        exposure_source = _needs(input, "stack", method, stats_source)
        stack = read_cube(exposure_source, chunks=chunks)
        check_same_grid(cube, stack, cube_path, exposure_source)
        stack = select_years(stack, years, source=exposure_source).assign_coords(y=cube["y"], x=cube["x"])
        spec = stats["unmixing"]
        usable, endmembers = list(spec["bands"]), spec["endmembers"]
        absent = [b for b in usable if b not in stack.data_vars]
        if absent:
            raise ValueError(
                f"{exposure_source}: no band(s) {absent} to unmix with the end-members of {stats_source}; "
                f"the stack has {sorted(stack.data_vars)}"
            )
        fractions = unmix(stack[usable], endmembers)
        exposure = fractions["bedrock_exposure"]
        extra = {
            "unmixing_bands": ",".join(usable),
            "unmixing_endmembers": json.dumps(endmembers),
            "unmixing_endmember_source": spec["endmember_source"],
        }
    else:
        log.warning(
            "%s: exposure = 1 - FVC (desertification.exposure_method: one_minus_fvc): the grade is the FVC grade",
            wildcards.region,
        )
        exposure = 1.0 - fvc
    exposure = exposure.astype("float32").rename("bedrock_exposure")
    exposure.attrs = {"long_name": f"bedrock exposure ({EXPOSURE_LABELS[method]})", "units": "1"}

    slope = None
    if "slope" in input:
        slope = read_raster(input.slope, chunks=plane)
        check_same_grid(cube, slope, cube_path, str(input.slope))
        slope = slope.assign_coords(y=cube["y"], x=cube["x"])

    grades = rd_grade(
        carbonate=carbonate,
        exposure=exposure,
        cover=fvc,
        slope=slope,
        indicators=params.indicators,
        combine=params.combine,
        thresholds={k: tuple(v) for k, v in params.thresholds.items()},
    )
    grades.attrs["exposure_method"] = method
    ds = on_grid(
        grades.to_dataset()
        .assign(
            fvc=fvc.drop_vars("spatial_ref", errors="ignore"),
            bedrock_exposure=exposure.drop_vars("spatial_ref", errors="ignore").transpose(*fvc.dims),
        )
        .drop_vars("spatial_ref", errors="ignore"),
        grid,
    )
    # every figure shared by the region (and by all its tiles) from the region's statistics
    ds.attrs.update(
        ndvi_soil=soil,
        ndvi_veg=veg,
        fvc_percentiles=list(stats["fvc_percentiles"]),
        fvc_endmember_exclusion=str(stats["fvc_endmember_exclusion"]),
        exposure_method=method,
        exposure_source=str(stats["exposure_source"]),
        indicators=",".join(params.indicators),
        combine=params.combine,
        **extra,
    )
    write_netcdf(ds, output.grades, chunks={"year": 1, "y": params.chunk_px, "x": params.chunk_px})
    log.info("RD grades (exposure by %s) of %d-%d -> %s", method, years[0], years[-1], output.grades)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
