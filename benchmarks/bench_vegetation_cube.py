"""Vegetation cube benchmark: 24 yearly Landsat composites from local scenes, then the annual stack.

Times what the workflow does for a region whose vegetation record comes from local Landsat
Collection 2 Level-2 scenes (rules ``vegetation_composite`` and ``vegetation_stack``):

* per year (``workflow/scripts/vegetation_composite.py``): the scenes of the growing season
  from the date table (``read_date_table(..., encoding="as-is")``, ``select_period``),
  ``karstflow.vegetation.composite_year(scenes, grid, "landsat", rules=SensorRules(),
  method="median", chunk_px=..., resampling="bilinear")``, written with
  ``karstflow.sources.rasters.write_streamed`` as a 4-band float32 GeoTIFF (ndvi, evi,
  kndvi, clear_count), then ``composite_summary_of_year`` and its JSON;
* then (``workflow/scripts/vegetation_stack.py``): every composite read back with
  ``karstflow.io.read_raster``, stacked by ``karstflow.vegetation.annual_cube`` (one sensor,
  ``landsat``, so no cross-calibration) and written by ``karstflow.io.write_netcdf``
  chunked ``years x 512 x 512`` (``greening.chunk_px``), and read back with ``read_cube``.

The scenes are synthetic but shaped like USGS C2 L2 products: one 4-band uint16 GeoTIFF per
scene (band descriptions blue, red, nir, qa_pixel; tiled 256, deflate; nodata 0), surface
reflectance DN = (SR + 0.2) / 2.75e-05, QA_PIXEL values of the Product Guides (clear 5440 on
TM/ETM+ and 21824 on OLI, high-confidence cloud 5896 / 22280, dilated cloud 5442 / 21826,
fill 1), two scenes per growing season (June and August), Landsat 7 2000-2002, Landsat 5
2003-2011, Landsat 7 SLC-off (fill stripes) 2012, Landsat 8 2013-2023. The planted NDVI is
``0.55 + 0.1 sin(3 * 2 pi x / W) cos(2 * 2 pi y / H) + 0.006 * (year - first)`` plus
N(0, 0.03) per scene and pixel, turned into OLI reflectance (red 0.05, nir from the NDVI)
and stored on the TM/ETM+ scale for those platforms (the inverse of Roy et al. 2016's OLS
functions, which ``decode`` applies), so the composite's NDVI should be the planted one.
Clouds are smooth random blobs (~18 % of a scene, bright, NDVI ~0.08) flagged in QA_PIXEL.
The scenes cover the largest region plus a 64 px margin on every side, in EPSG:32648 at
30 m on the region grid's lattice, so every read is a window read of a larger file; the
smaller regions are centred windows of the same scenes. Generation is not timed.

Each configuration (region size, chunk_px) runs in a fresh subprocess with the dask threaded
scheduler on ``--threads`` workers (``karstflow.runtime.set_threads``, what ``run_script``
does); its wall and CPU time and peak RSS (``getrusage(RUSAGE_CHILDREN)`` after it exits,
and ``/usr/bin/time -v``; the peak after the composites is recorded inside it) are reported.
The cube is then checked: its sizes, and on a strided sample the mean NDVI of each year
against the planted values (difference within 4 standard errors of the sample's residuals).

    .venv/bin/python benchmarks/bench_vegetation_cube.py [--sizes 1000 2000] [--years 24]
        [--chunk 512] [--threads 2] [--also-chunks 256] [--also-at 1000] [--workdir DIR] [--keep]

Results: ``benchmarks/results/vegetation_cube.json``. Scene files and outputs are deleted
at the end unless ``--keep``. The script reports; it does not assert.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
CRS = "EPSG:32648"
RES = 30.0
#: Lower-left corner of the scene extent (UTM 48N, Guizhou karst), a multiple of 30 m.
ORIGIN = (560010.0, 2830020.0)
MARGIN = 64
FIRST_YEAR = 2000
BASE, AMPLITUDE, SLOPE, NOISE = 0.55, 0.10, 0.006, 0.03
RED_OLI, BLUE_OLI = 0.05, 0.03
SCALE, OFFSET = 2.75e-05, -0.2
#: QA_PIXEL values (Landsat C2 L2 Science Product Guides, LSDS-1618 / LSDS-1619).
QA = {
    "tm": {"clear": 5440, "cloud": 5896, "dilated": 5442, "fill": 1},
    "etm": {"clear": 5440, "cloud": 5896, "dilated": 5442, "fill": 1},
    "oli": {"clear": 21824, "cloud": 22280, "dilated": 21826, "fill": 1},
}
#: Roy et al. (2016) Table 2 OLS, OLI = intercept + slope * ETM+ (as karstflow.sensors).
ROY = {"blue": (0.8474, 0.0003), "red": (0.9047, 0.0061), "nir": (0.8462, 0.0412)}


# --------------------------------------------------------------------------------------
# synthetic scenes (not timed)
# --------------------------------------------------------------------------------------


def platform_of(year: int) -> str:
    """Platform of a year's scenes: L7 2000-2002, L5 2003-2011, L7 SLC-off 2012, L8 2013-."""
    if year <= 2002:
        return "landsat-7"
    if year <= 2011:
        return "landsat-5"
    if year == 2012:
        return "landsat-7"
    return "landsat-8"


def planted_ndvi(year: int, rows: np.ndarray, cols: np.ndarray, extent: int) -> np.ndarray:
    """The noise-free NDVI of ``year`` at scene pixel (rows, cols) of an ``extent`` x ``extent`` scene."""
    x = (cols + 0.5) / extent
    y = (rows + 0.5) / extent
    pattern = AMPLITUDE * np.sin(3 * 2 * np.pi * x) * np.cos(2 * 2 * np.pi * y)
    return (BASE + pattern + SLOPE * (year - FIRST_YEAR)).astype(np.float32)


def _cloud_field(rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth random field in [0, 1) on n x n pixels (blobs a few km across)."""
    from scipy import ndimage

    coarse = rng.random((n // 48 + 2, n // 48 + 2)).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, 0.8)
    return ndimage.zoom(coarse, n / coarse.shape[0], order=1)[:n, :n]


def write_scene(path: Path, year: int, k: int, extent: int, seed: int) -> None:
    """One scene: 4-band uint16 GeoTIFF (blue, red, nir, qa_pixel)."""
    import rasterio
    from rasterio.transform import from_origin

    plat = platform_of(year)
    inst = {"landsat-5": "tm", "landsat-7": "etm", "landsat-8": "oli"}[plat]
    rng = np.random.default_rng([seed, year, k])
    rows, cols = np.mgrid[0:extent, 0:extent]
    nd = planted_ndvi(year, rows, cols, extent)
    nd = np.clip(nd + rng.normal(0.0, NOISE, nd.shape).astype(np.float32), 0.05, 0.95)
    red = np.full(nd.shape, RED_OLI, np.float32)
    nir = red * (1 + nd) / (1 - nd)
    blue = np.full(nd.shape, BLUE_OLI, np.float32)
    field = _cloud_field(rng, extent)
    cloud = field > np.quantile(field, 0.82)
    dilated = (field > np.quantile(field, 0.78)) & ~cloud
    red[cloud], nir[cloud], blue[cloud] = 0.30, 0.35, 0.32  # bright clouds, NDVI ~0.08
    sr = {"blue": blue, "red": red, "nir": nir}
    if inst != "oli":  # stored on the TM/ETM+ scale; decode maps it back to OLI
        sr = {b: (v - ROY[b][1]) / ROY[b][0] for b, v in sr.items()}
    dn = {b: np.clip(np.round((v - OFFSET) / SCALE), 1, 65535).astype(np.uint16) for b, v in sr.items()}
    qa = np.full(nd.shape, QA[inst]["clear"], np.uint16)
    qa[dilated] = QA[inst]["dilated"]
    qa[cloud] = QA[inst]["cloud"]
    if plat == "landsat-7" and year >= 2003:  # SLC-off: diagonal fill stripes, ~22 % of the scene
        stripes = ((rows + cols // 8 + 5 * k) % 36) < 8
        for b in dn:
            dn[b][stripes] = 0
        qa[stripes] = QA[inst]["fill"]
    transform = from_origin(ORIGIN[0], ORIGIN[1] + extent * RES, RES, RES)
    profile = {
        "driver": "GTiff", "width": extent, "height": extent, "count": 4, "dtype": "uint16", "crs": CRS,
        "transform": transform, "nodata": 0, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate", "predictor": 2,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        bands = (("blue", dn["blue"]), ("red", dn["red"]), ("nir", dn["nir"]), ("qa_pixel", qa))
        for i, (name, band) in enumerate(bands, 1):
            dst.write(band, i)
            dst.set_band_description(i, name)


def generate(folder: Path, years: int, extent: int, seed: int = 7) -> Path:
    """All scenes and their date table (columns date, file, sensor, platform); returns the table."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for year in range(FIRST_YEAR, FIRST_YEAR + years):
        for k, (month, day) in enumerate(((6, 10), (8, 20))):
            date = dt.date(year, month, day) + dt.timedelta(days=year % 9)
            name = f"LC2L2_{platform_of(year).replace('-', '')}_{date:%Y%m%d}.tif"
            write_scene(folder / name, year, k, extent, seed)
            rows.append(f"{date.isoformat()},{name},landsat,{platform_of(year)}")
    table = folder / "scenes.csv"
    table.write_text("date,file,sensor,platform\n" + "\n".join(rows) + "\n")
    return table


# --------------------------------------------------------------------------------------
# the measured run (a fresh process, so its peak RSS is its own)
# --------------------------------------------------------------------------------------


def region_grid(size: int, extent: int):
    """The size x size region centred in the scenes' extent (on their 30 m lattice)."""
    from karstflow.grid import RegionGrid

    off = (extent - size) // 2
    x0 = ORIGIN[0] + off * RES
    y0 = ORIGIN[1] + (extent - off - size) * RES
    return RegionGrid(crs=CRS, resolution=RES, bounds=(x0, y0, x0 + size * RES, y0 + size * RES)), off


def child(table: str, out_dir: str, size: int, extent: int, years: int, chunk: int, threads: int) -> None:
    t_start = time.perf_counter()
    import xarray as xr

    from karstflow.io import read_cube, read_json, read_raster, write_json, write_netcdf_blocks
    from karstflow.runtime import set_threads
    from karstflow.sensors import SensorRules
    from karstflow.sources import select_period
    from karstflow.sources.local import read_date_table
    from karstflow.sources.rasters import limit_gdal_cache, write_streamed
    from karstflow.vegetation import BANDS, annual_cube, composite_summary_of_year, composite_year, season_period

    set_threads(threads)
    limit_gdal_cache(64)  # as the rules do (imagery.gdal_cache_mb, default 64)
    t_import = time.perf_counter() - t_start
    grid, _ = region_grid(size, extent)
    out = Path(out_dir)
    per_year = []
    t0, c0 = time.perf_counter(), time.process_time()
    for year in range(FIRST_YEAR, FIRST_YEAR + years):
        ty = time.perf_counter()
        period = season_period(year, [4, 5, 6, 7, 8, 9, 10])
        scenes = [s for s in read_date_table(table, encoding="as-is") if str(s.meta.get("sensor")) == "landsat"]
        scenes = select_period(scenes, period, "bench")
        ds = composite_year(
            scenes, grid, "landsat", rules=SensorRules(), method="median", chunk_px=chunk, resampling="bilinear"
        )
        stacked = xr.concat([ds[b].astype(np.float32) for b in BANDS], dim="band")
        path = out / f"landsat_{year}.tif"
        write_streamed(
            {
                str(path): (
                    stacked,
                    {
                        "dtype": "float32",
                        "nodata": float("nan"),
                        "band_names": list(BANDS),
                        "tags": {"sensor": "landsat", "year": year, "season": f"{period.start}/{period.end}"},
                    },
                )
            },
            grid,
        )
        tw = time.perf_counter()
        # as the script: the summary from the clear_count band just written
        written = read_raster(path, masked=False).values[BANDS.index("clear_count")]
        summary = composite_summary_of_year(xr.Dataset({"clear_count": (("y", "x"), written)}, attrs=ds.attrs))
        summary.update(sensor="landsat", year=year, season=[period.start.isoformat(), period.end.isoformat()])
        write_json(summary, path.with_suffix(".json"))
        per_year.append(
            {"year": year, "scenes": len(scenes), "composite_write_s": tw - ty, "summary_s": time.perf_counter() - tw}
        )
    composites_s, composites_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_after_composites = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t1, c1 = time.perf_counter(), time.process_time()
    sensor_of_year = {y: "landsat" for y in range(FIRST_YEAR, FIRST_YEAR + years)}

    def _composite(p: Path) -> xr.Dataset:
        # as the script: each composite read in dask blocks of chunk_px
        return read_raster(p, chunks={"band": -1, "y": chunk, "x": chunk}).assign_coords(band=list(BANDS)).to_dataset(
            "band"
        )

    composites = {y: _composite(out / f"{s}_{y}.tif") for y, s in sensor_of_year.items()}
    cube = annual_cube(composites, sensor_of_year, [], reference="landsat")
    cube.attrs.update(source="vegetation stage (karstflow.vegetation)", reference_sensor="landsat")
    stack = out / "annual_stack.nc"
    write_netcdf_blocks(cube, stack, block_px=chunk)
    for y in sorted(sensor_of_year):
        read_json(out / f"landsat_{y}.json")
    read_cube(stack).close()
    stack_s, stack_cpu = time.perf_counter() - t1, time.process_time() - c1
    print(
        json.dumps(
            {
                "import_s": t_import,
                "composites_s": composites_s,
                "composites_cpu_s": composites_cpu,
                "stack_s": stack_s,
                "stack_cpu_s": stack_cpu,
                "build_s": composites_s + stack_s,
                "build_cpu_s": composites_cpu + stack_cpu,
                "peak_rss_after_composites_mb": peak_after_composites,
                "peak_rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "per_year": per_year,
            }
        )
    )


def run_child(table: Path, out_dir: Path, size: int, extent: int, args: argparse.Namespace, chunk: int) -> dict:
    cmd = [
        sys.executable, __file__, "--child", str(table), str(out_dir), "--child-size", str(size),
        "--child-extent", str(extent), "--years", str(args.years), "--chunk", str(chunk),
        "--threads", str(args.threads),
    ]  # fmt: skip
    timer = Path("/usr/bin/time").exists()
    if timer:
        cmd = ["/usr/bin/time", "-v", *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"run {size} px / chunk {chunk} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = total
    result["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of the children is the largest so far; the runs are ordered by size, and the
    # child's own figure (RUSAGE_SELF) is kept too
    result["peak_rss_children_mb"] = after.ru_maxrss / 1024
    result["load_avg_1min_start"] = load0
    result["load_avg_1min_end"] = os.getloadavg()[0]
    if timer:
        for line in proc.stderr.splitlines():
            if "Maximum resident set size" in line:
                result["time_v_max_rss_mb"] = int(line.split(":")[-1]) / 1024
    return result


def check_cube(stack: Path, size: int, extent: int, years: int, stride: int = 7) -> dict:
    """Sizes of the cube and, on a strided sample, each year's mean NDVI against the planted one."""
    import xarray as xr

    _, off = region_grid(size, extent)
    with xr.open_dataset(stack) as ds:
        sizes = {k: int(v) for k, v in ds.sizes.items()}
        variables = {k: str(v.dtype) for k, v in ds.data_vars.items()}
        nd = ds["ndvi"][:, ::stride, ::stride].values.astype(np.float64)
        cc = ds["clear_count"][:, ::stride, ::stride].values.astype(np.float64)
        year_values = [int(y) for y in ds["year"].values]
        sensors = [str(s) for s in ds["sensor"].values]
    rr, cols = np.meshgrid(np.arange(0, size, stride) + off, np.arange(0, size, stride) + off, indexing="ij")
    per_year = []
    worst_z = 0.0
    for i, year in enumerate(year_values):
        truth = planted_ndvi(year, rr, cols, extent).astype(np.float64)
        ok = np.isfinite(nd[i])
        diff = nd[i][ok] - truth[ok]
        se = diff.std() / np.sqrt(diff.size)
        z = abs(diff.mean()) / se if se > 0 else float("inf")
        worst_z = max(worst_z, z)
        per_year.append(
            {
                "year": year,
                "sensor": sensors[i],
                "mean_ndvi": float(nd[i][ok].mean()),
                "planted_mean_ndvi": float(truth[ok].mean()),
                "mean_diff": float(diff.mean()),
                "std_err": float(se),
                "z": float(z),
                "residual_std": float(diff.std()),
                "no_clear_share": float(1 - ok.mean()),
                "clear_count_mean": float(cc[i].mean()),
            }
        )
    means = np.array([p["mean_ndvi"] for p in per_year])
    planted = np.array([p["planted_mean_ndvi"] for p in per_year])
    t = np.array(year_values, dtype=np.float64)
    slope = float(np.polyfit(t, means, 1)[0])
    return {
        "sizes": sizes,
        "variables": variables,
        "expected_sizes": {"year": years, "y": size, "x": size},
        "sizes_ok": sizes.get("year") == years and sizes.get("y") == size and sizes.get("x") == size,
        "sample_pixels_per_year": int(rr.size),
        "worst_z": worst_z,
        "means_within_4_se": bool(worst_z <= 4.0),
        "max_abs_mean_diff": float(np.max(np.abs(means - planted))),
        "fitted_slope_per_year": slope,
        "planted_slope_per_year": SLOPE,
        "per_year": per_year,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000], help="region edges (px)")
    ap.add_argument("--years", type=int, default=24)
    ap.add_argument("--chunk", type=int, default=512, help="vegetation.chunk_px of every size")
    ap.add_argument("--also-chunks", type=int, nargs="*", default=[256], help="extra chunk_px runs at --also-at")
    ap.add_argument("--also-at", type=int, default=1000, help="region size of the extra chunk runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep scenes, composites and cubes")
    ap.add_argument("--out", type=Path, default=RESULTS / "vegetation_cube.json")
    ap.add_argument("--child", nargs=2, metavar=("TABLE", "OUTDIR"), help=argparse.SUPPRESS)
    ap.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-extent", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(
            args.child[0], args.child[1], args.child_size, args.child_extent, args.years, args.chunk, args.threads,
        )  # fmt: skip
        return

    sizes = sorted(set(args.sizes))
    extent = max(sizes) + 2 * MARGIN
    # the largest size last: the others are done (and saved) should it run long
    configs = [(s, args.chunk) for s in sizes[:-1]]
    if args.also_at in sizes:
        configs += [(args.also_at, c) for c in args.also_chunks if c != args.chunk]
    configs.append((sizes[-1], args.chunk))
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vegcube-", dir=args.workdir or RESULTS))
    need = 2 * args.years * extent**2 * 8 * 0.5 + args.years * max(sizes) ** 2 * 16 * 1.5
    free = shutil.disk_usage(work).free
    if free < need:
        shutil.rmtree(work)
        sys.exit(f"not enough free disk in {work.parent}: need ~{need / 1e9:.1f} GB, have {free / 1e9:.1f} GB")
    runs: list[dict] = []
    result: dict = {
        "runs": runs,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        print(f"generating {2 * args.years} scenes of {extent} x {extent} px (4 bands uint16) in {work} ...")
        tg = time.perf_counter()
        table = generate(work / "scenes", args.years, extent)
        gen_s = time.perf_counter() - tg
        scene_bytes = sum(p.stat().st_size for p in (work / "scenes").glob("*.tif"))
        print(f"  {gen_s:.0f} s, {scene_bytes / 1e6:.0f} MB on disk")
        result.update(scene_extent_px=extent, scenes=2 * args.years, scene_files_mb=scene_bytes / 1e6, generate_s=gen_s)
        # compile the numba median (or load its cache) before the measured runs
        from karstflow.composite import nanmedian_time

        nanmedian_time(np.ones((2, 4, 4), np.float32))
        for size, chunk in configs:
            out_dir = work / f"run-{size}-{chunk}"
            out_dir.mkdir()
            print(f"build {size} x {size} px, chunk {chunk}, {args.threads} threads ...", flush=True)
            res = run_child(table, out_dir, size, extent, args, chunk)
            check = check_cube(out_dir / "annual_stack.nc", size, extent, args.years)
            mpx_years = size**2 / 1e6 * args.years
            comp_files = sum(p.stat().st_size for p in out_dir.glob("landsat_*.tif"))
            run = {
                "size": size,
                "chunk_px": chunk,
                "threads": args.threads,
                "years": args.years,
                "scenes": 2 * args.years,
                **{k: v for k, v in res.items() if k != "per_year"},
                "summary_s_total": sum(p["summary_s"] for p in res["per_year"]),
                "s_per_mpx_year": res["build_s"] / mpx_years,
                "cpu_s_per_mpx_year": res["build_cpu_s"] / mpx_years,
                "composite_files_mb": comp_files / 1e6,
                "stack_file_mb": (out_dir / "annual_stack.nc").stat().st_size / 1e6,
                "check": check,
                "per_year": res["per_year"],
            }
            runs.append(run)
            args.out.write_text(json.dumps(result, indent=2) + "\n")  # saved after every run
            print(
                f"  build {res['build_s']:.1f} s wall ({res['composites_s']:.1f} composites incl. "
                f"{run['summary_s_total']:.1f} summaries + {res['stack_s']:.1f} stack), CPU {res['build_cpu_s']:.1f} s "
                f"(process {res['process_cpu_s']:.1f} s); {run['s_per_mpx_year']:.3f} s/Mpx-year; peak RSS "
                f"{res['peak_rss_self_mb']:.0f} MB (after composites {res['peak_rss_after_composites_mb']:.0f} MB"
                + (f"; time -v {res['time_v_max_rss_mb']:.0f} MB" if "time_v_max_rss_mb" in res else "")
                + f"); load {res['load_avg_1min_start']:.1f} -> {res['load_avg_1min_end']:.1f}",
                flush=True,
            )
            print(
                f"  cube {check['sizes']} sizes {'ok' if check['sizes_ok'] else 'WRONG'}; yearly mean NDVI vs "
                f"planted: max |diff| {check['max_abs_mean_diff']:.4f}, worst z {check['worst_z']:.2f} "
                f"({'within' if check['means_within_4_se'] else 'OUTSIDE'} 4 SE); slope "
                f"{check['fitted_slope_per_year']:.5f}/yr (planted {SLOPE})",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(out_dir, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| region px | chunk | wall s | CPU s | s / Mpx-year | peak RSS MB | after composites MB |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r['size']} x {r['size']} | {r['chunk_px']} | {r['build_s']:.1f} | {r['build_cpu_s']:.1f} | "
            f"{r['s_per_mpx_year']:.3f} | {r['peak_rss_self_mb']:.0f} | {r['peak_rss_after_composites_mb']:.0f} |"
        )
    print(f"{'kept' if args.keep else 'deleted'} {work}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
