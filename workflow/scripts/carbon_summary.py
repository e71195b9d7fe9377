"""Entry script of rule carbon_summary: sequestration map and headline carbon figures."""

import logging

from karstflow.carbon import carbon_summary
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.carbon_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    p = params
    grid = RegionGrid.from_dict(read_json(input.grid))
    npp = read_cube(input.npp).load()
    trend = read_cube(input.npp)[[]]  # coordinates only; filled below
    trend = trend.assign(
        slope=read_raster(input.slope).drop_vars("spatial_ref").assign_coords(y=npp["y"], x=npp["x"]),
        trend_class=read_raster(input.trend_class, masked=False)
        .drop_vars("spatial_ref")
        .assign_coords(y=npp["y"], x=npp["x"]),
    )
    storage = {int(year): read_raster(path) for year, path in zip(p.storage_years, input.storage, strict=True)}
    y0, y1 = p.sequestration_years
    seq = storage[y1] - storage[y0]
    write_raster(
        grid.data_array(seq.values.astype("float32"), name="carbon_sequestration", units="Mg C ha-1"),
        output.sequestration,
    )
    summary = carbon_summary(npp, trend, storage, pixel_area_m2=grid.pixel_area_m2, sequestration_years=(y0, y1))
    summary["sequestration"]["raster_units"] = "Mg C ha-1 (storage density difference)"
    summary["method"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in npp.attrs.items()}
    write_json(summary, output.summary)
    log.info(
        "carbon: NPP %.1f, Rh %.1f, NEP %.1f g C m-2 yr-1; storage %s Mg C; sequestration %.1f Mg C (%d-%d)",
        summary["npp_mean_g_c_m2_yr"],
        summary["rh_mean_g_c_m2_yr"],
        summary["nep_mean_g_c_m2_yr"],
        summary["carbon_storage_total_mg_c"],
        summary["sequestration"]["total_mg_c"],
        y0,
        y1,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
