# Resources that follow the work: every rule's `mem_mb` and `runtime` (minutes) from the
# pixels and layers of its job, calibrated on measured runs (karstflow.resources,
# workflow/resources.yaml, benchmarks/calibrate_resources.py). In the resources of a step:
#     resources:
#         mem_mb=mem_mb("<rule>"),
#         runtime=runtime("<rule>"),

import json
from pathlib import Path

from karstflow.grid import RegionGrid
from karstflow.resources import (
    FALLBACK_PIXELS,
    estimate,
    holds_one_tile,
    job_layers,
    job_pixels,
    load_calibration,
    memory_pixels,
)
from karstflow.tiling import halo_px as tile_halo_px

RESOURCE_CALIBRATION = load_calibration(
    Path(workflow.basedir) / "workflow" / "resources.yaml"
)


def _region_grid_now(region_id):
    """The region grid from results/<region>/grid.json once region_grid (a checkpoint) has
    written it, None before."""
    path = Path("results") / region_id / "grid.json"
    if not path.exists():
        return None
    return RegionGrid.from_dict(json.loads(path.read_text()))


def _parse_time_pixels(region_id):
    """The region's pixels before its grid exists: AOI bounds or grid_like raster, the demo
    size of a generated region, else karstflow.resources.FALLBACK_PIXELS."""
    region = config["regions"][region_id]
    px = parse_time_grid_px(region)
    if px is None and region.get("demo"):
        px = demo_size_px(region) ** 2
    return px if px is not None else FALLBACK_PIXELS


def _tile_halo(rule_name, wildcards, grid):
    """The halo (px) of a tile job: from the rule's `tile` param (functions/tiling.smk tile_spec)."""
    params = getattr(rules, rule_name).params if hasattr(rules, rule_name) else None
    spec = params.get("tile") if params is not None else None
    if callable(spec):
        spec = spec(wildcards)
    return tile_halo_px(grid, spec) if spec else 0


def job_size(rule_name, wildcards):
    """(pixels, pixels held at once, layers) of a job: its region grid, or its tile's window
    with the halo; a mosaic holds one tile (karstflow.resources.memory_pixels)."""
    region_id = getattr(wildcards, "region", None)
    if region_id is None or region_id not in config["regions"]:
        # a job over all regions (summary_table): collects, does not scale
        return 0, 0, 1
    layers = job_layers(rule_name, len(region_years(config["regions"][region_id])))
    tile = getattr(wildcards, "tile", None)
    tile_px = TILE_PX[region_id]
    grid = _region_grid_now(region_id)
    if grid is not None:
        halo = _tile_halo(rule_name, wildcards, grid) if tile else 0
        return (
            job_pixels(grid, tile_px, tile, halo),
            memory_pixels(rule_name, grid, tile_px, tile, halo),
            layers,
        )
    pixels = _parse_time_pixels(region_id)
    if tile:
        pixels = min(pixels, tile_px**2)
    held = min(pixels, tile_px**2) if tile_px and holds_one_tile(rule_name) else pixels
    return pixels, held, layers


def _estimate(rule_name, wildcards, attempt, threads, rulename):
    # a step made by inheritance (`use ... as <name>`) shares the callable: the job's own rule name decides
    name = rulename or rule_name
    pixels, held, layers = job_size(name, wildcards)
    return estimate(
        name,
        pixels,
        layers,
        threads or 1,
        attempt=attempt,
        calibration=RESOURCE_CALIBRATION,
        mem_pixels=held,
    )


def mem_mb(rule_name):
    """`resources: mem_mb=mem_mb("<rule>")`: the job's memory in MB, more on a retry."""

    def resource(wildcards, attempt=1, threads=1, rulename=None):
        return _estimate(rule_name, wildcards, attempt, threads, rulename)[0]

    return resource


def runtime(rule_name):
    """`resources: runtime=runtime("<rule>")`: the job's wall time in minutes, more on a retry."""

    def resource(wildcards, attempt=1, threads=1, rulename=None):
        return _estimate(rule_name, wildcards, attempt, threads, rulename)[1]

    return resource
