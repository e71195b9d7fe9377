"""Entry script of rule public_landcover: one year of a public land-cover product on the
region grid, crosswalked to the legend (karstflow.crosswalk)."""

import logging

import numpy as np

from karstflow.crosswalk import apply_crosswalk, load_crosswalk
from karstflow.grid import RegionGrid
from karstflow.harmonise import raster_to_grid
from karstflow.io import read_json, read_raster, write_json, write_raster
from karstflow.runtime import run_script
from karstflow.sources import get_source

log = logging.getLogger("karstflow.scripts.public_landcover")


def main(input, output, params, wildcards, threads=1) -> None:
    region_id, year = wildcards.region, int(wildcards.year)
    grid = RegionGrid.from_dict(read_json(input.grid))
    legend = {int(k): v for k, v in params.classes.items()}
    table = load_crosswalk(params.crosswalk, params.product, legend, key="landcover.public.crosswalk")
    if "product" in input.keys():
        codes = read_raster(input.product, masked=False).values
        origin = f"input landcover_product ({input.product})"
    else:
        source = get_source(region_id, params.region, params.imagery)
        if params.region["source"] == "earthengine":
            files = source.landcover(params.product, year, grid)
        else:
            collection = ((params.region.get("stac") or {}).get("collections") or {}).get("landcover", "esa-worldcover")
            files = source.landcover(year, grid, collection=collection)
        codes = raster_to_grid(files, grid, resampling="nearest", source=f"{params.product} {year}", nodata=0).values
        origin = f"{params.product} via {params.region['source']}"
    codes = np.nan_to_num(np.asarray(codes, dtype=float), nan=0).astype(np.int64)
    mapped = apply_crosswalk(codes, table, source=f"{origin}, {year}")
    colours = {int(k): tuple(v) for k, v in params.colours.items()}
    da = grid.data_array(mapped, name="landcover")
    write_raster(da, output.landcover, dtype="uint8", nodata=0, colormap=colours)
    present, counts = np.unique(mapped[mapped > 0], return_counts=True)
    total = int(counts.sum())
    write_json(
        {
            "year": year,
            "product": params.product,
            "origin": origin,
            "no_data_share": float(np.mean(mapped == 0)),
            "class_share": {legend[int(c)]: int(n) / total for c, n in zip(present, counts, strict=True)}
            if total
            else {},
        },
        output.summary,
    )
    log.info("%s %d: %s crosswalked to %d legend classes", region_id, year, origin, len(present))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
