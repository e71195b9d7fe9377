"""Entry script of rule services_habitat_half_saturation: the half-saturation constant k of
habitat quality, one number for the region and every service year.

With ``half_saturation: auto`` k is half the highest degradation D over every service
year's map of the whole region (InVEST user guide's advice), so the years share one k and
their quality maps compare; a k taken per tile would differ from tile to tile. Otherwise
k is the configured number. Rule services_habitat_quality (and its tiles) read it here.
"""

import logging

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_json
from karstflow.runtime import run_script
from karstflow.services import half_saturation_auto

log = logging.getLogger("karstflow.scripts.services_habitat_half_saturation")

KEY = "config key services.habitat_quality.half_saturation"


def main(input, output, params, wildcards, threads=1) -> None:
    paths = [str(p) for p in input.get("degradation", [])]
    if params.half_saturation == "auto":
        if not paths:
            raise ValueError(f"{KEY}: auto needs the degradation maps of the service years; the rule was given none")
        grid = RegionGrid.from_dict(read_json(input.grid))

        def maps():
            for path in paths:
                da = read_raster(path)
                grid.check(da, grid_source=input.grid, source=path)
                yield da.values

        k = half_saturation_auto(maps())
        method = f"auto: half the highest degradation of {len(paths)} year(s)"
    else:
        k = float(params.half_saturation)
        if not k > 0:
            raise ValueError(f"{KEY}: expected 'auto' or a number > 0, found {params.half_saturation!r}")
        method = "configured"
    write_json({"half_saturation": k, "method": method, "degradation_maps": paths}, output.half_saturation)
    log.info("habitat quality half-saturation k = %.6g (%s)", k, method)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
