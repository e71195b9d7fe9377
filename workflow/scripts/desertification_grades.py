"""Entry script of rule desertification_grades: FVC and RD grades of every year, areas."""

import logging

from karstflow.desertification import fvc_dimidiate, grade_area_table, rd_grade
from karstflow.greening import check_same_grid, on_grid, percentile_endmembers, select_years
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_csv, write_netcdf
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_grades")


def main(input, output, params, wildcards, threads=1) -> None:
    chunks = {"year": -1, "y": params.chunk_px, "x": params.chunk_px}
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube_path = str(input.cube)

    cube = read_cube(cube_path, chunks=chunks)
    grid.check(cube, grid_source=input.grid, source=cube_path)
    ndvi = cube["ndvi"]
    years = [int(y) for y in cube["year"].values]

    soil, veg = percentile_endmembers(ndvi, *params.fvc_percentiles)
    log.info(
        "FVC end-members: NDVI_soil %.4f (P%g), NDVI_veg %.4f (P%g), all years pooled",
        soil,
        params.fvc_percentiles[0],
        veg,
        params.fvc_percentiles[1],
    )
    fvc = fvc_dimidiate(ndvi, soil, veg)

    carbonate = read_raster(input.carbonate, chunks={"y": params.chunk_px, "x": params.chunk_px})
    check_same_grid(cube, carbonate, cube_path, str(input.carbonate))
    carbonate = carbonate.assign_coords(y=cube["y"], x=cube["x"])

    if "exposure" in input:
        exposure_source = str(input.exposure)
        expo = read_cube(exposure_source, chunks=chunks)
        check_same_grid(cube, expo, cube_path, exposure_source)
        if "bedrock_exposure" not in expo.data_vars:
            raise ValueError(
                f"{exposure_source}: expected a variable 'bedrock_exposure', found {sorted(expo.data_vars)}"
            )
        exposure = select_years(expo, years, source=exposure_source)["bedrock_exposure"]
        exposure = exposure.assign_coords(y=cube["y"], x=cube["x"])
    else:
        exposure_source = "1 - FVC (no bedrock exposure layer)"
        log.info(
            "no bedrock exposure layer for %s: using 1 - FVC as the exposure index",
            wildcards.region,
        )
        exposure = (1.0 - fvc).rename("bedrock_exposure")

    slope = None
    if "slope" in input:
        slope = read_raster(input.slope, chunks={"y": params.chunk_px, "x": params.chunk_px})
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
    ds = on_grid(
        grades.to_dataset()
        .assign(fvc=fvc.drop_vars("spatial_ref", errors="ignore"))
        .drop_vars("spatial_ref", errors="ignore"),
        grid,
    )
    ds.attrs.update(
        ndvi_soil=soil,
        ndvi_veg=veg,
        fvc_percentiles=list(params.fvc_percentiles),
        exposure_source=exposure_source,
        indicators=",".join(params.indicators),
        combine=params.combine,
    )
    write_netcdf(ds, output.grades, chunks={"year": 1, "y": params.chunk_px, "x": params.chunk_px})

    written = read_cube(output.grades, chunks={"year": 1})
    area = grade_area_table(written["rd_grade"], grid.pixel_area_m2 / 1e6)
    write_csv(area, output.area, index=False)
    rd = area[area["grade_code"] >= 2].groupby("year")["area_km2"].sum()
    log.info(
        "RD (light or worse): %.3f km2 in %d, %.3f km2 in %d",
        rd.iloc[0],
        years[0],
        rd.iloc[-1],
        years[-1],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
