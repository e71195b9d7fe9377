"""Benchmark karstflow.trends.theil_sen_mk against a pymannkendall per-pixel loop.

Builds a synthetic (years, size, size) float32 cube (per-pixel linear trend + noise +
~3 % missing values), computes theil_sen_mk with the dask threaded scheduler on
``--threads`` workers (numba compile time measured separately on a tiny cube first),
times ``pymannkendall.original_test`` (and ``hamed_rao_modification_test``) on a random
sample of pixels and scales to the whole cube, prints a table and writes
``benchmarks/results/trends.json``.

    .venv/bin/python benchmarks/bench_trends.py [--size 1000] [--years 24] [--threads 2]
                                                 [--sample 2000] [--chunk 250]

Targets (see benchmarks/README.md): <= 3 us per pixel (wall) on 2 threads and >= 300x
faster than the pymannkendall loop. Wall times are best of ``--repeat``; the CPU time of
all threads is printed too, as it is less sensitive to other load on a shared machine.
The script reports; it does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import dask
import numpy as np
import xarray as xr

RESULTS = Path(__file__).resolve().parent / "results" / "trends.json"


def make_cube(size: int, years: int, chunk: int, seed: int = 0) -> xr.DataArray:
    """Synthetic NDVI-like cube: trend in [-0.01, 0.01]/yr + N(0, 0.03) noise + 3 % NaN."""
    rng = np.random.default_rng(seed)
    yrs = np.arange(2000, 2000 + years)
    trend = rng.uniform(-0.01, 0.01, size=(size, size)).astype(np.float32)
    data = np.empty((years, size, size), dtype=np.float32)
    for i in range(years):
        data[i] = 0.5 + trend * i + rng.normal(0.0, 0.03, size=(size, size)).astype(np.float32)
        data[i][rng.random((size, size)) < 0.03] = np.nan
    da = xr.DataArray(
        data,
        dims=("year", "y", "x"),
        coords={"year": yrs, "y": np.arange(size), "x": np.arange(size)},
        name="ndvi",
    )
    return da.chunk({"year": -1, "y": chunk, "x": chunk})


def time_theil_sen(da: xr.DataArray, threads: int, autocorrelation: str | None, repeat: int):
    from karstflow.trends import theil_sen_mk

    best, best_cpu = np.inf, np.inf
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ds = theil_sen_mk(da, dim="year", autocorrelation=autocorrelation)
        with dask.config.set(scheduler="threads", num_workers=threads):
            ds = ds.compute()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)  # all threads of this process
    return best, best_cpu, ds


def time_pymannkendall(da: xr.DataArray, sample: int, seed: int = 1) -> dict[str, float]:
    import pymannkendall as mk

    rng = np.random.default_rng(seed)
    ny, nx = da.sizes["y"], da.sizes["x"]
    flat = rng.choice(ny * nx, size=min(sample, ny * nx), replace=False)
    iy, ix = np.unravel_index(flat, (ny, nx))
    series = da.isel(y=xr.DataArray(iy), x=xr.DataArray(ix)).transpose(..., "year").values
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, func in (
            ("original_test", mk.original_test),
            ("hamed_rao", mk.hamed_rao_modification_test),
        ):
            t0 = time.perf_counter()
            for s in series:
                func(s)
            out[name] = (time.perf_counter() - t0) / len(series)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1000, help="cube is size x size pixels")
    ap.add_argument("--years", type=int, default=24, help="length of the time axis")
    ap.add_argument("--threads", type=int, default=2, help="dask threaded workers")
    ap.add_argument("--sample", type=int, default=2000, help="pixels for the pymannkendall loop")
    ap.add_argument("--chunk", type=int, default=250, help="spatial chunk edge (pixels)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N timed runs")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    # compile (or load the numba cache) on a tiny cube, both variants, float32
    t0 = time.perf_counter()
    from karstflow.trends import theil_sen_mk

    import_s = time.perf_counter() - t0
    tiny = make_cube(8, args.years, 8, seed=99)
    t0 = time.perf_counter()
    theil_sen_mk(tiny).compute(scheduler="synchronous")
    theil_sen_mk(tiny, autocorrelation="hamed_rao").compute(scheduler="synchronous")
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    da = make_cube(args.size, args.years, args.chunk).persist()
    build_s = time.perf_counter() - t0
    npix = args.size * args.size

    ts_s, ts_cpu, ds = time_theil_sen(da, args.threads, None, args.repeat)
    hr_s, hr_cpu, ds_hr = time_theil_sen(da, args.threads, "hamed_rao", args.repeat)
    pmk = time_pymannkendall(da, args.sample)

    us = lambda s: s / npix * 1e6  # noqa: E731
    rows = [
        ("theil_sen_mk (original)", ts_s, us(ts_s), pmk["original_test"] * npix / ts_s),
        ("theil_sen_mk (hamed_rao)", hr_s, us(hr_s), pmk["hamed_rao"] * npix / hr_s),
        ("pymannkendall original_test (scaled)", pmk["original_test"] * npix,
         pmk["original_test"] * 1e6, 1.0),
        ("pymannkendall hamed_rao (scaled)", pmk["hamed_rao"] * npix, pmk["hamed_rao"] * 1e6,
         1.0),
    ]
    print(
        f"\ncube {args.years} x {args.size} x {args.size} float32, "
        f"chunks {args.chunk}x{args.chunk}, {args.threads} dask threads, "
        f"cpu_count {os.cpu_count()}"
    )
    print(f"import {import_s:.2f} s, numba compile/cache-load {compile_s:.2f} s, "
          f"cube build {build_s:.2f} s")
    print(f"{'method':40s} {'total s':>10s} {'us/pixel':>10s} {'speed-up':>10s}")
    for name, total, per, ratio in rows:
        print(f"{name:40s} {total:10.2f} {per:10.3f} {ratio:10.0f}x")
    print(
        f"CPU time (all threads, insensitive to other load on the machine): "
        f"{us(ts_cpu):.3f} us/pixel original, {us(hr_cpu):.3f} us/pixel hamed_rao"
    )
    classes = np.bincount(ds["trend_class"].values.ravel(), minlength=256)
    print("trend_class counts:", {k: int(v) for k, v in enumerate(classes) if v})
    nan_p_hr = float(np.isnan(ds_hr["p"].values).mean())
    print(f"hamed_rao: fraction of tested pixels with undefined p (variance <= 0): {nan_p_hr:.4f}")

    result = {
        "size": args.size,
        "years": args.years,
        "threads": args.threads,
        "chunk": args.chunk,
        "pixels": npix,
        "sample": args.sample,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numba_compile_s": compile_s,
        "theil_sen_mk_s": ts_s,
        "theil_sen_mk_us_per_pixel": us(ts_s),
        "theil_sen_mk_cpu_us_per_pixel": us(ts_cpu),
        "theil_sen_mk_hamed_rao_s": hr_s,
        "theil_sen_mk_hamed_rao_cpu_us_per_pixel": us(hr_cpu),
        "theil_sen_mk_hamed_rao_us_per_pixel": us(hr_s),
        "pymannkendall_original_us_per_pixel": pmk["original_test"] * 1e6,
        "pymannkendall_hamed_rao_us_per_pixel": pmk["hamed_rao"] * 1e6,
        "speedup_original": pmk["original_test"] * npix / ts_s,
        "speedup_hamed_rao": pmk["hamed_rao"] * npix / hr_s,
        "target_us_per_pixel": 3.0,
        "target_speedup": 300.0,
        "trend_class_counts": {str(k): int(v) for k, v in enumerate(classes) if v},
        "hamed_rao_undefined_p_fraction": nan_p_hr,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
