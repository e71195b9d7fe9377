"""Entry script of rule report_maps: one PNG map per raster output of a region.

Each map has a legend (class patches or a colour bar with units), a scale bar and a north
arrow (karstflow.plotting.raster_map); rasters of one kind across years share colour
limits (karstflow.report.shared_limits). The maps go to results/{region}/maps/ as
{stage}-{name}.png, which the report lists.
"""

import logging
import shutil
from collections import defaultdict
from pathlib import Path

from karstflow.io import read_raster
from karstflow.plotting import raster_map, save_figure
from karstflow.report import map_key, map_style, rgb_band_indices, shared_limits
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.report_maps")


def main(input, output, params, wildcards, threads=1) -> None:
    region = wildcards.region
    out_dir = Path(output.maps)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    rasters = {key: read_raster(input[key]) for key in params.rasters}
    groups = defaultdict(dict)
    for key, da in rasters.items():
        stage, name = key.split("-", 1)
        groups[map_key(stage, name)[0]][key] = da
    for key, da in rasters.items():
        stage, name = key.split("-", 1)
        style = map_style(
            stage,
            name,
            region=region,
            landcover_legend={int(k): v for k, v in params.landcover_legend.items()},
            landcover_colours={int(k): v for k, v in params.landcover_colours.items()},
        )
        kwargs = {k: v for k, v in style.items() if k != "rgb"}
        if style.get("rgb"):
            names = da.attrs.get("long_name") or []
            names = [names] if isinstance(names, str) else list(names)
            kwargs["rgb_bands"] = rgb_band_indices(names or [str(b) for b in da["band"].values])
        elif "classes" not in style:
            group = groups[map_key(stage, name)[0]]
            kwargs["vmin"], kwargs["vmax"] = shared_limits({k: v.values for k, v in group.items()}, style)
        save_figure(raster_map(da, **kwargs), tmp_dir / f"{key}.png")
        log.info("map %s <- %s", key, input[key])
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_dir.rename(out_dir)
    log.info("%d maps of %s in %s", len(rasters), region, out_dir)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
