"""Entry script of rule services_habitat_degradation: InVEST total threat D of one year.

Threat maps come from land cover (configured codes, e.g. built-up and cultivated land)
or from vector inputs of the region (e.g. roads, burnt in along every pixel a line
touches). As InVEST's habitat_quality.py, the weights are normalised over every threat of
the region's table (``params.threats``: the configured threats less those the config takes
out, ``params.dropped``), and a threat of the table without its layer stops the rule naming
the threat; a region without roads takes the threat out explicitly
(``services.habitat_quality.drop_threats`` or ``threats.<name>.enabled: false``). The
access layer (input ``access``: polygons with ``access`` 0-1) scales every threat's impact
like InVEST's ACCESS field, 1 where no polygon covers a pixel. What was used is recorded in
habitat_threats_{year}.json.
"""

import logging

import numpy as np
from rasterio import features

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_json, write_raster
from karstflow.runtime import run_script
from karstflow.services import habitat_degradation

log = logging.getLogger("karstflow.scripts.services_habitat_degradation")

THREATS_KEY = "config key services.habitat_quality.threats"


def access_layer(path: str, grid: RegionGrid) -> np.ndarray:
    """InVEST's access raster: 1.0 everywhere, then each polygon's ``access`` burnt in at the
    pixels whose centre it covers (pygeoprocessing.rasterize with ATTRIBUTE=ACCESS: GDAL's
    default, not all-touched; a later polygon overwrites an earlier one)."""
    layer = read_vector(path).to_crs(grid.crs)
    if "access" not in layer.columns:
        raise ValueError(f"{path}: the access layer has no column 'access'; found {list(layer.columns)}")
    values = layer["access"].astype(float)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise ValueError(
            f"{path}: column access must be 0-1 (0 inaccessible, 1 fully accessible to threats); "
            f"{int(bad.sum())} polygon(s) have {values[bad].tolist()[:5]}"
        )
    shapes = [(g, float(v)) for g, v in zip(layer.geometry, values, strict=True) if g is not None and not g.is_empty]
    if not shapes:
        return np.ones(grid.shape)
    return features.rasterize(
        shapes, out_shape=grid.shape, transform=grid.transform, fill=1.0, all_touched=False, dtype="float64"
    )


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
        elif name in params.vectors and name in input.keys():
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
            # InVEST stops for a threat of the table without its raster; renormalising over
            # the others would raise every other threat's weight (by 2.5 / 1.7 for roads)
            raise ValueError(
                f"{THREATS_KEY}.{name}: threat {name!r} reads the region's {spec.get('vector_input')!r} input, "
                f"which region {wildcards.region} does not give; give the layer (regions.{wildcards.region}.inputs."
                f"{spec.get('vector_input')}), or take the threat out of this region's table "
                f"(services.habitat_quality.drop_threats: {{{wildcards.region}: [{name}]}}) or of every region's "
                f"({THREATS_KEY}.{name}.enabled: false)"
            )
        record[name].update(
            pixels=int(masks[name].sum()),
            weight=float(spec["weight"]),
            max_distance_m=float(spec["max_distance_m"]),
            decay=spec["decay"],
        )
    weight_sum = sum(float(spec["weight"]) for spec in params.threats.values())
    for name in record:
        record[name]["normalised_weight"] = record[name]["weight"] / weight_sum
    for name, reason in dict(params.dropped).items():
        record[name] = {"evaluated": False, "reason": reason}
        log.warning("threat %s not part of the threat table: %s", name, reason)

    access = None
    access_record: dict = {"source": None, "mean": 1.0}
    if "access" in input.keys():
        access_path = str(input.access)
        access = access_layer(access_path, grid)
        access_record = {"source": access_path, "mean": float(access.mean()), "min": float(access.min())}

    sensitivity = {int(code): dict(row["sensitivity"]) for code, row in params.habitat.items()}
    degradation = habitat_degradation(
        lc,
        masks,
        params.threats,
        sensitivity,
        resolution_m=grid.resolution,
        source=lc_path,
        table_source="config key services.habitat_quality.habitat",
        access=access,
        access_source=str(input.access) if access is not None else "access layer",
        threats_source=THREATS_KEY,
    )
    write_raster(
        grid.data_array(degradation.astype(np.float32), name="habitat_degradation", units="1"),
        output.degradation,
    )
    write_json(
        {
            "year": int(wildcards.year),
            "threats": record,
            "weight_sum": weight_sum,
            "access": access_record,
            "degradation_max": float(np.nanmax(degradation)),
            "degradation_mean": float(np.nanmean(degradation)),
        },
        output.threats,
    )
    log.info(
        "habitat degradation %s: mean %.4f, max %.4f; weight sum %.3f; threats %s; access %s",
        wildcards.year,
        float(np.nanmean(degradation)),
        float(np.nanmax(degradation)),
        weight_sum,
        {k: v.get("pixels", "not in the table") for k, v in record.items()},
        access_record["source"] or "none (1 everywhere)",
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
