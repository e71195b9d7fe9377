"""Entry script of rule services_habitat_degradation: InVEST total threat D of one year.

Threat maps come from land cover (configured codes, e.g. built-up and cultivated land)
or from vector inputs of the region (e.g. roads, burnt in along every pixel a line
touches); a configured threat whose vector the region lacks is "not evaluated" and left
out of the weight normalisation (logged and recorded in habitat_threats_{year}.json).
"""

import logging

import numpy as np
from rasterio import features

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_json, write_raster
from karstflow.runtime import run_script
from karstflow.services import habitat_degradation

log = logging.getLogger("karstflow.scripts.services_habitat_degradation")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc_path = str(input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    lc = np.asarray(landcover.values)
    masks, record = {}, {}
    for name, spec in params.threats.items():
        if spec.get("landcover_codes"):
            masks[name] = np.isin(lc, list(spec["landcover_codes"]))
            record[name] = {
                "evaluated": True,
                "source": f"land cover codes {list(spec['landcover_codes'])}",
            }
        elif name in params.vectors:
            path = str(input[name])
            layer = read_vector(path).to_crs(grid.crs)
            geoms = [g for g in layer.geometry if g is not None and not g.is_empty]
            masks[name] = (
                features.rasterize(
                    ((g, 1) for g in geoms),
                    out_shape=grid.shape,
                    transform=grid.transform,
                    fill=0,
                    all_touched=True,
                    dtype="uint8",
                ).astype(bool)
                if geoms
                else np.zeros(grid.shape, bool)
            )
            record[name] = {"evaluated": True, "source": path}
        else:
            record[name] = {
                "evaluated": False,
                "reason": f"region has no {spec.get('vector_input')!r} input",
            }
            log.warning(
                "threat %s not evaluated: the region has no %s input",
                name,
                spec.get("vector_input"),
            )
            continue
        record[name].update(
            pixels=int(masks[name].sum()),
            weight=float(spec["weight"]),
            max_distance_m=float(spec["max_distance_m"]),
            decay=spec["decay"],
        )
    if not masks:
        raise ValueError("config key services.habitat_quality.threats: no threat could be evaluated for this region")
    sensitivity = {int(code): dict(row["sensitivity"]) for code, row in params.habitat.items()}
    degradation = habitat_degradation(
        lc,
        masks,
        params.threats,
        sensitivity,
        resolution_m=grid.resolution,
        source=lc_path,
        table_source="config key services.habitat_quality.habitat",
    )
    write_raster(
        grid.data_array(degradation.astype(np.float32), name="habitat_degradation", units="1"),
        output.degradation,
    )
    write_json(
        {
            "year": int(wildcards.year),
            "threats": record,
            "degradation_max": float(np.nanmax(degradation)),
            "degradation_mean": float(np.nanmean(degradation)),
        },
        output.threats,
    )
    log.info(
        "habitat degradation %s: mean %.4f, max %.4f; threats %s",
        wildcards.year,
        float(np.nanmean(degradation)),
        float(np.nanmax(degradation)),
        {k: v.get("pixels", "not evaluated") for k, v in record.items()},
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
