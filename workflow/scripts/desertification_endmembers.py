"""Entry script of rule desertification_endmembers: the region-wide figures every pixel's grade
shares, computed once on the whole region and written as JSON.

They are the FVC end-members (NDVI percentiles over the region's land, all years pooled),
the exposure method (karstflow.desertification.exposure_method) and, for unmixing, the
end-members (configured, or from the image by maximum simplex volume over the region's
carbonate land). Rule desertification_grades reads them, untiled or one tile at a time, so a
tile grades its pixels exactly as the whole region does (docs/tiling.md).
"""

import logging

from karstflow.desertification import (
    EXPOSURE_LABELS,
    check_grading_statistics,
    configured_endmembers,
    exposure_method,
    fvc_endmember_mask,
    fvc_endmembers,
    image_endmembers,
    unmixing_bands,
)
from karstflow.greening import check_same_grid, select_years
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_endmembers")


def main(input, output, params, wildcards, threads=1) -> None:
    chunks = {"year": -1, "y": params.chunk_px, "x": params.chunk_px}
    plane = {"y": params.chunk_px, "x": params.chunk_px}
    grid = RegionGrid.from_dict(read_json(input.grid))
    cube_path = str(input.cube)
    cube = read_cube(cube_path, chunks=chunks)
    grid.check(cube, grid_source=input.grid, source=cube_path)
    ndvi = cube["ndvi"]
    years = [int(y) for y in cube["year"].values]

    # FVC end-members on land only: no water or built-up (land-cover maps when the region
    # has them, and NDVI < 0 everywhere)
    lc_keys = sorted(k for k in input.keys() if k.startswith("landcover_"))
    landcover = []
    for key in lc_keys:
        lc = read_raster(input[key], masked=False, chunks=plane)
        check_same_grid(cube, lc, cube_path, str(input[key]))
        landcover.append(lc.assign_coords(y=cube["y"], x=cube["x"]))
    exclude = [int(c) for c in params.fvc_exclude_classes]
    land = fvc_endmember_mask(ndvi, landcover, exclude)
    exclusion = "NDVI < 0" + (
        f"; land-cover classes {exclude} in {', '.join(str(input[k]) for k in lc_keys)}" if lc_keys else ""
    )
    soil, veg = fvc_endmembers(ndvi, params.fvc_percentiles, mask=land)
    log.info(
        "FVC end-members: NDVI_soil %.4f (P%g), NDVI_veg %.4f (P%g), all years pooled, left out: %s",
        soil,
        params.fvc_percentiles[0],
        veg,
        params.fvc_percentiles[1],
        exclusion,
    )

    stack = None
    bands = []
    if "stack" in input:
        stack = read_cube(str(input.stack), chunks=chunks)
        bands = [b for b in stack.data_vars if b in ("blue", "red", "nir", "swir1", "swir2")]
    method = exposure_method(
        params.exposure_method,
        has_layer="exposure" in input,
        bands=bands,
        source=str(input.stack) if "stack" in input else cube_path,
    )
    unmixing = None
    if method == "layer":
        exposure_source = str(input.exposure)
    elif method == "unmixing":
        exposure_source = str(input.stack)
        check_same_grid(cube, stack, cube_path, exposure_source)
        usable = unmixing_bands(bands)
        endmembers, usable = configured_endmembers((params.unmixing or {}).get("endmembers"), usable)
        origin = "desertification.unmixing.endmembers"
        if endmembers is None:
            carbonate = read_raster(input.carbonate, chunks=plane)
            check_same_grid(cube, carbonate, cube_path, str(input.carbonate))
            carbonate = carbonate.assign_coords(y=cube["y"], x=cube["x"])
            refl = select_years(stack, years, source=exposure_source).assign_coords(y=cube["y"], x=cube["x"])[usable]
            origin = "image (maximum simplex volume over carbonate land without water and built-up)"
            endmembers = image_endmembers(
                refl,
                mask=land & (carbonate.fillna(0) > 0),
                max_samples=params.unmixing["max_samples"],
                vertex_px=params.unmixing["vertex_px"],
            )
        unmixing = {"bands": usable, "endmembers": endmembers, "endmember_source": origin}
        log.info("unmixing %s over %s, end-members from %s: %s", exposure_source, usable, origin, endmembers)
    else:
        exposure_source = "1 - FVC"
    stats = {
        "ndvi_soil": soil,
        "ndvi_veg": veg,
        "fvc_percentiles": list(params.fvc_percentiles),
        "fvc_endmember_exclusion": exclusion,
        "exposure_method": method,
        "exposure_source": f"{EXPOSURE_LABELS[method]}: {exposure_source}",
        "unmixing": unmixing,
    }
    write_json(check_grading_statistics(stats, str(output.endmembers)), output.endmembers)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
