"""Entry script of rule desertification_grades: FVC, bedrock exposure and RD grades of every year, areas.

The exposure method (karstflow.desertification.exposure_method) is recorded in the
cube's attributes (exposure_method, exposure_source), which the summary and the maps
carry on.
"""

import json
import logging

from karstflow.desertification import (
    ENDMEMBERS,
    exposure_method,
    fvc_dimidiate,
    fvc_endmember_mask,
    fvc_endmembers,
    grade_area_table,
    image_endmembers,
    rd_grade,
    unmix,
    unmixing_bands,
)
from karstflow.greening import check_same_grid, on_grid, select_years
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_csv, write_netcdf
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.desertification_grades")

#: What exposure_source says for each method (the layer's and the stack's file are added).
METHOD_LABEL = {
    "layer": "bedrock exposure layer",
    "unmixing": "linear spectral unmixing (vegetation, soil, rock) of the annual reflectance",
    "one_minus_fvc": "1 - FVC (desertification.exposure_method: one_minus_fvc; not an independent exposure estimate)",
}


def _configured_endmembers(unmixing, bands):
    """The configured end-members over the stack's bands, or None (image-derived)."""
    given = (unmixing or {}).get("endmembers")
    if not given:
        return None, bands
    missing = [em for em in ENDMEMBERS if em not in given]
    if missing:
        raise ValueError(
            f"config key desertification.unmixing.endmembers: missing end-member(s) {missing}; "
            f"expected {list(ENDMEMBERS)}, each band -> reflectance"
        )
    common = [b for b in bands if all(b in given[em] for em in ENDMEMBERS)]
    if not unmixing_bands(common):
        raise ValueError(
            "config key desertification.unmixing.endmembers: the end-members must give the reflectance of at "
            f"least three of the stack's bands {bands} including swir1 or swir2; they give "
            f"{ {em: sorted(given[em]) for em in ENDMEMBERS} }"
        )
    return {em: {b: float(given[em][b]) for b in common} for em in ENDMEMBERS}, common


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
    fvc = fvc_dimidiate(ndvi, soil, veg)

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
    extra = {}
    if method == "layer":
        exposure_source = str(input.exposure)
        expo = read_cube(exposure_source, chunks=chunks)
        check_same_grid(cube, expo, cube_path, exposure_source)
        if "bedrock_exposure" not in expo.data_vars:
            raise ValueError(
                f"{exposure_source}: expected a variable 'bedrock_exposure', found {sorted(expo.data_vars)}"
            )
        exposure = select_years(expo, years, source=exposure_source)["bedrock_exposure"]
        exposure = exposure.assign_coords(y=cube["y"], x=cube["x"])
    elif method == "unmixing":
        exposure_source = str(input.stack)
        check_same_grid(cube, stack, cube_path, exposure_source)
        stack = select_years(stack, years, source=exposure_source).assign_coords(y=cube["y"], x=cube["x"])
        usable = unmixing_bands(bands)
        endmembers, usable = _configured_endmembers(params.unmixing, usable)
        refl = stack[usable]
        origin = "desertification.unmixing.endmembers"
        if endmembers is None:
            origin = "image (maximum simplex volume over carbonate land without water and built-up)"
            endmembers = image_endmembers(
                refl,
                mask=land & (carbonate.fillna(0) > 0),
                max_samples=params.unmixing["max_samples"],
                vertex_px=params.unmixing["vertex_px"],
            )
        fractions = unmix(refl, endmembers)
        exposure = fractions["bedrock_exposure"]
        extra = {
            "unmixing_bands": ",".join(usable),
            "unmixing_endmembers": json.dumps(endmembers),
            "unmixing_endmember_source": origin,
        }
        log.info("unmixing %s over %s, end-members from %s: %s", exposure_source, usable, origin, endmembers)
    else:
        exposure_source = "1 - FVC"
        log.warning(
            "%s: exposure = 1 - FVC (desertification.exposure_method: one_minus_fvc): the grade is the FVC grade",
            wildcards.region,
        )
        exposure = 1.0 - fvc
    exposure = exposure.astype("float32").rename("bedrock_exposure")
    exposure.attrs = {"long_name": f"bedrock exposure ({METHOD_LABEL[method]})", "units": "1"}

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
    ds.attrs.update(
        ndvi_soil=soil,
        ndvi_veg=veg,
        fvc_percentiles=list(params.fvc_percentiles),
        fvc_endmember_exclusion=exclusion,
        exposure_method=method,
        exposure_source=f"{METHOD_LABEL[method]}: {exposure_source}",
        indicators=",".join(params.indicators),
        combine=params.combine,
        **extra,
    )
    write_netcdf(ds, output.grades, chunks={"year": 1, "y": params.chunk_px, "x": params.chunk_px})

    written = read_cube(output.grades, chunks={"year": 1})
    area = grade_area_table(written["rd_grade"], grid.pixel_area_m2 / 1e6)
    write_csv(area, output.area, index=False)
    rd = area[area["grade_code"] >= 2].groupby("year")["area_km2"].sum()
    log.info(
        "RD (light or worse, exposure by %s): %.3f km2 in %d, %.3f km2 in %d",
        method,
        rd.iloc[0],
        years[0],
        rd.iloc[-1],
        years[-1],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
