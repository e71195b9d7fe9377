# Helpers of tiling.smk and of the tiled form of each stage's per-pixel rules.

import json
from pathlib import Path

from karstflow.grid import RegionGrid, startup_pixels
from karstflow.tiling import plan_tiles

TILE_ID_PATTERN = r"r\d{3}c\d{3}"


def parse_time_grid_px(region):
    """The region grid's pixel count as far as it can be known before anything runs
    (karstflow.grid.startup_pixels); None when a rule makes the grid."""
    return startup_pixels(region)


def region_tile_px(region_id):
    """Tile edge of a region, None when it runs untiled (the region's `tiling`, else the
    top-level `tiling.auto_above_px` against its size at start-up)."""
    region = config["regions"][region_id]
    if "tiling" in region:
        return region["tiling"]["tile_px"] if region["tiling"] else None
    px = parse_time_grid_px(region)
    if px is None or px <= config["tiling"]["auto_above_px"]:
        return None
    logger.info(
        f"{region_id}: {px} px > tiling.auto_above_px {config['tiling']['auto_above_px']}, "
        f"tiled in {config['tiling']['tile_px']} px tiles"
    )
    return config["tiling"]["tile_px"]


TILE_PX = {rid: region_tile_px(rid) for rid in REGIONS}


def tiled_constraint(stage):
    """Wildcard constraint of a stage's `_tile` and `_mosaic` rules: its tiled regions."""
    return one_of([rid for rid in regions_with(stage) if TILE_PX[rid]])


def untiled_constraint(stage):
    """Wildcard constraint of a stage's region-wide per-pixel rules: its untiled regions."""
    return one_of([rid for rid in regions_with(stage) if not TILE_PX[rid]])


def tile_outputs(outputs):
    """A rule's region outputs as per-tile outputs (results/{region}/tiles/{tile}/...),
    temporary: the mosaic is what later stages read."""
    prefix = "results/{region}/"
    tiled = {}
    for key, path in outputs.items():
        if not path.startswith(prefix):
            raise WorkflowError(f"tiled output {path} is not under {prefix}")
        tiled[key] = temp(f"{prefix}tiles/{{tile}}/{path[len(prefix):]}")
    return tiled


def tile_spec(halo_px=0, halo_m=None):
    """The `tile` param of the per-tile form of a rule, for karstflow.tiling.run_tile: the
    tile edge and the halo; ``halo_m`` is a function of the wildcards giving metres."""

    def spec(wildcards):
        return {
            "tile_px": TILE_PX[wildcards.region],
            "halo_px": halo_px,
            "halo_m": halo_m(wildcards) if halo_m else 0.0,
        }

    return spec


def tile_log(rule_name):
    return f"logs/{{region}}/tiles/{{tile}}/{rule_name}.log"


def tile_benchmark(rule_name):
    return f"logs/benchmarks/{{region}}/tiles/{{tile}}/{rule_name}.tsv"


def region_tiles(region_id):
    """The tile ids of a region, once its grid exists (region_grid is a checkpoint)."""
    grid_file = checkpoints.region_grid.get(region=region_id).output.grid
    grid = RegionGrid.from_dict(json.loads(Path(grid_file).read_text()))
    return [t.id for t in plan_tiles(grid, TILE_PX[region_id])]


def mosaic_inputs(tile_rule):
    """Input function of a `_mosaic` rule: every tile of each output of ``tile_rule``, in
    tile order, its other wildcards ({year}, ...) filled in; and the region grid."""

    def inputs(wildcards):
        fixed = {k: v for k, v in wildcards.items() if k != "tile"}
        files = {
            key: [
                pattern.format(**fixed, tile=t) for t in region_tiles(fixed["region"])
            ]
            for key, pattern in getattr(rules, tile_rule).output.items()
        }
        files["grid"] = f"results/{fixed['region']}/grid.json"
        return files

    return inputs
