"""Entry script of rule services_habitat_threats: the record of one year's threat table
(habitat_threats_{year}.json), on the whole region after the degradation map is put together.

Per threat of the table: the source of its map (land-cover codes or the vector layer), its
pixels on the region grid, weight, weight normalised over the whole table (InVEST's
``weight_sum``), max distance and decay; each threat the config takes out, with the reason;
the access layer's mean and minimum; the highest and mean degradation D of the region map
(services_summary's "auto" half-saturation reads ``degradation_max``). The maps are built
by the same functions as rule services_habitat_degradation (karstflow.services).
"""

import logging

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_json
from karstflow.runtime import run_script
from karstflow.services import access_raster, threat_masks

log = logging.getLogger("karstflow.scripts.services_habitat_threats")

THREATS_KEY = "config key services.habitat_quality.threats"


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc_path = str(input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    lc = np.asarray(landcover.values)
    layers = {
        name: read_vector(str(input[name])).to_crs(grid.crs)
        for name in params.vectors
        if name in params.threats and name in input.keys()
    }
    masks = threat_masks(lc, params.threats, layers, grid, region=wildcards.region, threats_key=THREATS_KEY)
    weight_sum = sum(float(spec["weight"]) for spec in params.threats.values())
    record: dict = {}
    for name, spec in params.threats.items():
        codes = spec.get("landcover_codes")
        record[name] = {
            "evaluated": True,
            "source": f"land cover codes {list(codes)}" if codes else str(input[name]),
            "pixels": int(masks[name].sum()),
            "weight": float(spec["weight"]),
            "max_distance_m": float(spec["max_distance_m"]),
            "decay": spec["decay"],
            "normalised_weight": float(spec["weight"]) / weight_sum,
        }
    for name, reason in dict(params.dropped).items():
        record[name] = {"evaluated": False, "reason": reason}
        log.warning("threat %s not part of the threat table: %s", name, reason)

    access_record: dict = {"source": None, "mean": 1.0}
    if "access" in input.keys():
        access_path = str(input.access)
        access = access_raster(read_vector(access_path).to_crs(grid.crs), grid, source=access_path)
        access_record = {"source": access_path, "mean": float(access.mean()), "min": float(access.min())}

    deg_path = str(input.degradation)
    degradation = read_raster(deg_path)
    grid.check(degradation, grid_source=input.grid, source=deg_path)
    d = np.asarray(degradation.values, dtype=np.float64)
    write_json(
        {
            "year": int(wildcards.year),
            "threats": record,
            "weight_sum": weight_sum,
            "access": access_record,
            "degradation_max": float(np.nanmax(d)),
            "degradation_mean": float(np.nanmean(d)),
        },
        output.threats,
    )
    log.info(
        "habitat degradation %s: mean %.4f, max %.4f; weight sum %.3f; threats %s; access %s",
        wildcards.year,
        float(np.nanmean(d)),
        float(np.nanmax(d)),
        weight_sum,
        {k: v.get("pixels", "not in the table") for k, v in record.items()},
        access_record["source"] or "none (1 everywhere)",
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
