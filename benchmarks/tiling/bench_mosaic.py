"""Benchmark: peak memory of a NetCDF cube mosaic (karstflow.tiling.mosaic) against the size of
its tiles and of the region.

    python benchmarks/tiling/bench_mosaic.py --size 4000 --years 4 --variables 3 --tiles 4 16 64

Writes a synthetic cube of ``--size`` x ``--size`` px (``--variables`` float32 variables over
``--years`` years, zlib as the stages write them) cut into each tile count, then puts each set
of tiles together in its own process under ``/usr/bin/time -v`` and prints the wall time and
peak RSS. A mosaic that streams tile by tile peaks at the interpreter's imports plus about one
tile (and the HDF5 chunk caches, 64 MB a variable); one that holds the region grows with it.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_tiling import time_figures  # the script's folder is on sys.path

ORIGIN = (600000.0, 2800000.0)  # UTM 48N, in the karst demo's area
RESOLUTION = 30.0


def region_grid(size: int):
    from karstflow.grid import RegionGrid

    x0, y1 = ORIGIN
    bounds = (x0, y1 - RESOLUTION * size, x0 + RESOLUTION * size, y1)
    return RegionGrid(crs="EPSG:32648", resolution=RESOLUTION, bounds=bounds)


def write_tiles(folder: Path, size: int, tiles: int, years: int, variables: int) -> None:
    """The tiles of a random cube, as karstflow.tiling.cut writes a stage's tiles."""
    import numpy as np
    import rioxarray  # noqa: F401
    import xarray as xr

    from karstflow import tiling

    grid = region_grid(size)
    rng = np.random.default_rng(0)
    names = [f"v{i}" for i in range(variables)]
    folder.mkdir(parents=True, exist_ok=True)
    for i, tile in enumerate(tiling.plan_tiles(grid, math.ceil(size / math.isqrt(tiles)))):
        shape = (years, tile.window.height, tile.window.width)
        data = {name: (("year", "y", "x"), rng.random(shape, dtype=np.float32)) for name in names}
        coords = {"year": np.arange(2020, 2020 + years), **tiling.window_grid(grid, tile.window).coords()}
        ds = xr.Dataset(data, coords=coords).rio.write_crs(grid.crs)
        ds.to_netcdf(folder / f"{i:04d}.nc", encoding={name: {"zlib": True, "complevel": 4} for name in names})


def put_together(folder: Path, size: int, tiles: int) -> None:
    """The mosaic of the tiles in ``folder`` (the part that is measured)."""
    from karstflow import tiling

    grid = region_grid(size)
    plan = tiling.plan_tiles(grid, math.ceil(size / math.isqrt(tiles)))
    paths = [folder / f"{i:04d}.nc" for i in range(len(plan))]
    tiling.mosaic(paths, plan, grid, folder / "mosaic.nc")


def measure(folder: Path, size: int, tiles: int) -> tuple[float, float]:
    """(wall s, peak RSS MB) of putting the tiles together, in a process of its own."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_mosaic as b; "
    code += f"b.put_together(__import__('pathlib').Path({str(folder)!r}), {size}, {tiles})"
    log = folder / "time.log"
    with log.open("w") as out:
        proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"mosaic of {tiles} tiles failed:\n{log.read_text()[-2000:]}")
    figures = time_figures(log)
    return figures["wall_s"], figures["max_rss_kb"] / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000, help="region edge in px")
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--variables", type=int, default=3)
    parser.add_argument("--tiles", type=int, nargs="+", default=[4, 16, 64], help="tile counts (squares)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the tiles (default: a temporary one)")
    args = parser.parse_args(argv)
    cube_mb = args.size**2 * args.years * args.variables * 4 / 2**20
    print(f"cube: {args.size} x {args.size} px x {args.years} years x {args.variables} float32 = {cube_mb:.0f} MB")
    print("| tiles | tile (px) | tile (MB) | wall (s) | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for tiles in args.tiles:
            folder = Path(tmp) / f"{tiles}tiles"
            write_tiles(folder, args.size, tiles, args.years, args.variables)
            wall, rss = measure(folder, args.size, tiles)
            edge = math.ceil(args.size / math.isqrt(tiles))
            print(f"| {tiles} | {edge} | {cube_mb / tiles:.1f} | {wall:.1f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
