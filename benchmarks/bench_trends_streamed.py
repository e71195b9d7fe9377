"""Streamed trends benchmark: theil_sen_mk on a NetCDF cube larger than the memory allowed.

Writes a synthetic ``(years, size, size)`` float32 cube (per-pixel linear trend + noise +
~3 % NaN, as ``bench_trends.py``) to a chunked NetCDF file block by block (never whole in
memory), then runs, in a fresh subprocess, ``karstflow.trends.theil_sen_mk`` over it
with dask (chunks of ``years x chunk x chunk``, ``--threads`` workers) and streams all
outputs to a NetCDF file on disk, chunk by chunk. The subprocess's peak resident memory
is read from the kernel (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits; the same
figure ``/usr/bin/time -v`` reports as "Maximum resident set size"). A random sample of
pixels is then checked against ``mann_kendall_1d`` on the series read back from the cube.
The cube and the outputs are deleted at the end (also on failure).

    .venv/bin/python benchmarks/bench_trends_streamed.py [--size 6000] [--years 24]
        [--chunk 500] [--threads 2] [--budget-mb 1024] [--workdir DIR] [--keep]

The default cube is 24 x 6000 x 6000 float32 = 3.46 GB (plus ~1 GB of outputs) and
needs ~4.5 GB of free disk in ``--workdir`` (default: a temporary folder under
benchmarks/results/). ``--budget-mb`` is the memory the run is allowed; the report
compares the peak RSS with it and with the cube size. The script reports; it does not
assert. Results go to ``benchmarks/results/trends_streamed.json``.
"""

from __future__ import annotations

import argparse
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


# --------------------------------------------------------------------------------------
# the cube on disk
# --------------------------------------------------------------------------------------


def write_cube(path: Path, size: int, years: int, chunk: int, seed: int = 0, complevel: int = 0) -> float:
    """Write the synthetic cube block by block; returns the seconds it took."""
    import netCDF4

    t0 = time.perf_counter()
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("year", years)
        nc.createDimension("y", size)
        nc.createDimension("x", size)
        nc.createVariable("year", "i4", ("year",))[:] = np.arange(2000, 2000 + years)
        nc.createVariable("y", "f8", ("y",))[:] = np.arange(size, dtype=np.float64)
        nc.createVariable("x", "f8", ("x",))[:] = np.arange(size, dtype=np.float64)
        var = nc.createVariable(
            "ndvi", "f4", ("year", "y", "x"), chunksizes=(years, chunk, chunk),
            zlib=complevel > 0, complevel=complevel or 1, fill_value=np.float32(np.nan),
        )
        t = np.arange(years, dtype=np.float32)[:, None, None]
        for iy in range(0, size, chunk):
            for ix in range(0, size, chunk):
                ny, nx = min(chunk, size - iy), min(chunk, size - ix)
                rng = np.random.default_rng([seed, iy, ix])
                trend = rng.uniform(-0.01, 0.01, (1, ny, nx)).astype(np.float32)
                block = 0.5 + trend * t + rng.normal(0.0, 0.03, (years, ny, nx)).astype(np.float32)
                block[rng.random((years, ny, nx)) < 0.03] = np.nan
                var[:, iy : iy + ny, ix : ix + nx] = block
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# the measured run (a fresh process, so its peak RSS is its own)
# --------------------------------------------------------------------------------------


def child(
    cube_path: str, out_path: str, chunk: int, threads: int, autocorrelation: str | None, cache_mb: float
) -> None:
    t_start = time.perf_counter()
    import dask
    import netCDF4
    import xarray as xr

    # HDF5 keeps a chunk cache per open variable (netCDF-C default: 16-64 MB each); with 7
    # output variables that alone is ~0.4 GB that grows with the cube until full. Chunks
    # are written whole and read once, so a small cache costs nothing.
    netCDF4.set_chunk_cache(size=cache_mb * 2**20)

    from karstflow.trends import theil_sen_mk

    t_import = time.perf_counter() - t_start
    ds = xr.open_dataset(cube_path, engine="netcdf4", chunks={"year": -1, "y": chunk, "x": chunk})
    t0, c0 = time.perf_counter(), time.process_time()
    trend = theil_sen_mk(ds["ndvi"], dim="year", autocorrelation=autocorrelation)
    encoding = {v: {"chunksizes": (chunk, chunk)} for v in trend.data_vars}
    with dask.config.set(scheduler="threads", num_workers=threads):
        trend.to_netcdf(out_path, engine="netcdf4", encoding=encoding)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"import_s": t_import, "compute_write_s": wall, "cpu_s": cpu, "peak_rss_self_mb": peak_self_kb / 1024}
        )
    )


def run_child(args: argparse.Namespace, cube: Path, out: Path) -> dict:
    cmd = [
        sys.executable, __file__, "--child", str(cube), str(out),
        "--chunk", str(args.chunk), "--threads", str(args.threads),
        "--autocorrelation", args.autocorrelation, "--cache-mb", str(args.cache_mb),
    ]
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    if timer:
        cmd = ["/usr/bin/time", "-v", *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"streamed run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = total
    # ru_maxrss of the children: the largest of them (the child; /usr/bin/time is tiny)
    result["peak_rss_mb"] = max(after, before) / 1024
    if timer:
        for line in proc.stderr.splitlines():
            if "Maximum resident set size" in line:
                result["time_v_max_rss_mb"] = int(line.split(":")[-1]) / 1024
    return result


def check_sample(cube: Path, out: Path, n: int = 200, seed: int = 5, autocorrelation: str | None = None) -> float:
    """Largest |difference| of slope and p between the streamed output and mann_kendall_1d."""
    import xarray as xr

    from karstflow.trends import default_min_valid, mann_kendall_1d

    rng = np.random.default_rng(seed)
    with xr.open_dataset(cube) as c, xr.open_dataset(out) as o:
        size = c.sizes["y"]
        worst = 0.0
        years = c["year"].values
        for iy, ix in rng.integers(0, size, (n, 2)):
            y = c["ndvi"][:, iy, ix].values
            ref = mann_kendall_1d(y, years, autocorrelation=autocorrelation, min_valid=default_min_valid(len(years)))
            for key in ("slope", "p"):
                got = float(o[key][iy, ix])
                if np.isnan(ref[key]) and np.isnan(got):
                    continue
                worst = max(worst, abs(got - ref[key]) / max(1.0, abs(ref[key])))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=6000, help="cube is size x size pixels")
    ap.add_argument("--years", type=int, default=24)
    ap.add_argument("--chunk", type=int, default=500, help="spatial chunk edge, on disk and in dask")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-mb", type=float, default=1024.0, help="memory the run is allowed (MB)")
    ap.add_argument("--autocorrelation", default="none", choices=["none", "hamed_rao"])
    ap.add_argument("--complevel", type=int, default=0, help="zlib level of the cube (0: none)")
    ap.add_argument("--cache-mb", type=float, default=1.0, help="HDF5 chunk cache per variable (MB)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the cube and outputs")
    ap.add_argument("--out", type=Path, default=RESULTS / "trends_streamed.json")
    ap.add_argument("--child", nargs=2, metavar=("CUBE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    autocorrelation = None if args.autocorrelation == "none" else args.autocorrelation
    if args.child:
        child(args.child[0], args.child[1], args.chunk, args.threads, autocorrelation, args.cache_mb)
        return

    cube_bytes = args.years * args.size**2 * 4
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="streamed-", dir=args.workdir or RESULTS))
    need = cube_bytes * 1.4
    free = shutil.disk_usage(work).free
    if free < need:
        shutil.rmtree(work)
        sys.exit(f"not enough free disk in {work.parent}: need ~{need / 1e9:.1f} GB, have {free / 1e9:.1f} GB")
    cube, out = work / "cube.nc", work / "trend.nc"
    try:
        print(
            f"writing a {args.years} x {args.size} x {args.size} float32 cube ({cube_bytes / 2**30:.2f} GiB) to "
            f"{cube} ..."
        )
        write_s = write_cube(cube, args.size, args.years, args.chunk, complevel=args.complevel)
        print(f"  {write_s:.1f} s, {cube.stat().st_size / 2**30:.2f} GiB on disk")
        # compile the numba kernel (or load its cache) before the measured run
        from karstflow.trends import mann_kendall_1d

        mann_kendall_1d(np.arange(24.0), autocorrelation=autocorrelation)
        print(
            f"theil_sen_mk over it in a subprocess ({args.threads} threads, chunks {args.years} x {args.chunk} x "
            f"{args.chunk}) ..."
        )
        res = run_child(args, cube, out)
        worst = check_sample(cube, out, autocorrelation=autocorrelation)
        npix = args.size**2
        result = {
            "size": args.size,
            "years": args.years,
            "chunk": args.chunk,
            "threads": args.threads,
            "autocorrelation": args.autocorrelation,
            "cube_gib": cube_bytes / 2**30,
            "cube_file_gib": cube.stat().st_size / 2**30,
            "output_file_gib": out.stat().st_size / 2**30,
            "chunk_mib": args.years * args.chunk**2 * 4 / 2**20,
            "budget_mb": args.budget_mb,
            "hdf5_chunk_cache_mb": args.cache_mb,
            "write_cube_s": write_s,
            **res,
            "us_per_pixel": res["compute_write_s"] / npix * 1e6,
            "cpu_us_per_pixel": res["cpu_s"] / npix * 1e6,
            "peak_rss_share_of_cube": res["peak_rss_mb"] * 2**20 / cube_bytes,
            "within_budget": res["peak_rss_mb"] <= args.budget_mb,
            "sample_max_rel_diff_vs_mann_kendall_1d": worst,
            "cpu_count": os.cpu_count(),
            "load_avg_1min": os.getloadavg()[0],
            "python": platform.python_version(),
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\ncube {result['cube_gib']:.2f} GiB on disk ({result['cube_file_gib']:.2f} GiB file), "
        f"chunks {result['chunk_mib']:.0f} MiB, {args.threads} threads"
    )
    print(
        f"compute + write: {res['compute_write_s']:.1f} s wall ({result['us_per_pixel']:.2f} us/pixel), "
        f"{res['cpu_s']:.1f} s CPU ({result['cpu_us_per_pixel']:.2f} us/pixel); process total {res['process_s']:.1f} s"
    )
    print(f"peak RSS {res['peak_rss_mb']:.0f} MB = {100 * result['peak_rss_share_of_cube']:.1f} % of the cube; "
          f"budget {args.budget_mb:.0f} MB: {'within' if result['within_budget'] else 'EXCEEDED'}"
          + (f" (/usr/bin/time -v: {res['time_v_max_rss_mb']:.0f} MB)" if "time_v_max_rss_mb" in res else ""))
    print(f"sample of 200 pixels vs mann_kendall_1d: max relative difference {worst:.2e}")
    print(f"{'kept' if args.keep else 'deleted'} {work}")
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
