"""Benchmark karstflow.zonal.class_fractions against rasterstats (and exactextract).

Data: the county demo at 3200 x 3200 px (10 m, seed 42, karstflow.demo.generate) --
its true land cover and its reclaimed parcels -- generated once into ``--cache``
(default /tmp/karstflow-bench/county-3200, outside the repository) and reused. The
first ``--parcels`` parcels (default 10,000) are used.

Compared side by side in one run, all reading the same in-memory uint8 raster:

* ``class_fractions(..., method="centre")`` vs ``rasterstats.zonal_stats(...,
  categorical=True)``: both count the pixels whose centre lies inside each parcel (GDAL's
  rasterize rule), so their counts are compared exactly (like with like);
* ``class_fractions(..., method="exact")`` (what the workflow uses): exact area weights;
  compared with ``exactextract``'s ``frac`` (the maintained library for exact weights;
  they must agree to 1e-6) and timed against rasterstats too.

    .venv/bin/python benchmarks/bench_class_fractions.py [--parcels 10000] [--repeat 3]
        [--threads 2] [--rasterstats-sample 0] [--cache DIR]

Target (benchmarks/README.md): class_fractions >= 20x faster than rasterstats, equal
counts. ``--rasterstats-sample N`` times rasterstats on N parcels only and scales (for a
quick look); the default 0 runs it on all of them. The numba compile (or cache load) is
timed separately first. Writes ``benchmarks/results/class_fractions.json``. The script
reports; it does not assert.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)

RESULTS = Path(__file__).resolve().parent / "results" / "class_fractions.json"
CODES = list(range(1, 10))


def county_data(cache: Path):
    from karstflow.io import read_raster, read_vector

    lc_path, parcels_path = cache / "landcover.tif", cache / "parcels.gpkg"
    if not (lc_path.exists() and parcels_path.exists()):
        from karstflow import io
        from karstflow.demo import generate
        from karstflow.grid import RegionGrid, demo_bounds

        print(f"generating the 3200 x 3200 px county demo into {cache} (once; a few minutes) ...", flush=True)
        grid = RegionGrid.from_bounds("EPSG:32650", 10, demo_bounds((500000, 2904000), 3200, 10))
        bundle = generate("county", grid, 42)
        da, kwargs = bundle.rasters["landcover.tif"]
        io.write_raster(da, lc_path, **kwargs)
        io.write_vector(bundle.vectors["parcels.gpkg"], parcels_path)
    return read_raster(lc_path, masked=False), read_vector(parcels_path)


def best_of(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parcels", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rasterstats-sample", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/karstflow-bench/county-3200"))
    args = ap.parse_args()

    from karstflow.runtime import set_threads
    from karstflow.zonal import coverage_fractions

    set_threads(args.threads)
    landcover, parcels = county_data(args.cache)
    if len(parcels) < args.parcels:
        raise SystemExit(f"the demo has {len(parcels)} parcels, fewer than --parcels {args.parcels}")
    parcels = parcels.iloc[: args.parcels].reset_index(drop=True)
    values = np.ascontiguousarray(landcover.values)
    landcover = landcover.copy(data=values)
    print(
        f"{len(parcels)} parcels (mean {parcels.area.mean() / 1e4:.2f} ha) on {values.shape[1]} x {values.shape[0]} px"
    )

    tiny = parcels.iloc[:2]
    t0 = time.perf_counter()
    coverage_fractions(tiny, landcover, CODES, method="exact")
    coverage_fractions(tiny, landcover, CODES, method="centre")
    compile_s = time.perf_counter() - t0

    t_exact, exact = best_of(lambda: coverage_fractions(parcels, landcover, CODES, method="exact"), args.repeat)
    t_centre, centre = best_of(lambda: coverage_fractions(parcels, landcover, CODES, method="centre"), args.repeat)

    from rasterstats import zonal_stats

    rs_parcels = parcels if not args.rasterstats_sample else parcels.iloc[: args.rasterstats_sample]
    t0 = time.perf_counter()
    stats = zonal_stats(
        list(rs_parcels.geometry), values, affine=landcover.rio.transform(), nodata=255, categorical=True
    )
    t_rs = (time.perf_counter() - t0) * len(parcels) / len(rs_parcels)
    rs = pd.DataFrame(stats).reindex(columns=CODES).fillna(0).to_numpy()
    ours = centre[[f"frac_{c}" for c in CODES]].to_numpy()[: len(rs_parcels)]
    centre_equal = bool(np.array_equal(rs, ours))
    centre_mismatch = int((rs != ours).any(axis=1).sum())

    ee = {}
    try:
        from exactextract import exact_extract
        from exactextract.raster import NumPyRasterSource

        xmin, ymin, xmax, ymax = landcover.rio.bounds()
        src = NumPyRasterSource(values, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, nodata=255)
        t0 = time.perf_counter()
        out = exact_extract(src, parcels, ["unique", "frac"], output="pandas", strategy="raster-sequential")
        t_ee = time.perf_counter() - t0
        frac_ee = np.zeros((len(parcels), len(CODES)))
        for i, (u, f) in enumerate(zip(out["unique"], out["frac"], strict=True)):
            for code, share in zip(u, f, strict=True):
                frac_ee[i, int(code) - 1] = share
        weights = exact[[f"frac_{c}" for c in CODES]].to_numpy()
        frac_ours = weights / weights.sum(axis=1, keepdims=True)
        ee = {"exactextract_s": t_ee, "exactextract_max_abs_diff": float(np.abs(frac_ee - frac_ours).max())}
    except ImportError:
        print("exactextract not installed: skipped")

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads",
        "parcels": len(parcels),
        "raster_px": list(values.shape),
        "numba_compile_or_cache_s": compile_s,
        "class_fractions_exact_s": t_exact,
        "class_fractions_centre_s": t_centre,
        "rasterstats_s": t_rs,
        "rasterstats_timed_parcels": len(rs_parcels),
        "speedup_centre_vs_rasterstats": t_rs / t_centre,
        "speedup_exact_vs_rasterstats": t_rs / t_exact,
        "centre_counts_equal_rasterstats": centre_equal,
        "centre_parcels_differing": centre_mismatch,
        **ee,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"numba compile / cache load: {compile_s:.2f} s")
    print(f"{'':32} {'s':>8} {'us/parcel':>10} {'x rasterstats':>14}")
    for name, t in (
        ("class_fractions exact", t_exact),
        ("class_fractions centre", t_centre),
        ("rasterstats categorical", t_rs),
    ):
        print(f"{name:32} {t:8.3f} {1e6 * t / len(parcels):10.1f} {t_rs / t:14.1f}")
    if ee:
        print(
            f"{'exactextract frac':32} {ee['exactextract_s']:8.3f} {1e6 * ee['exactextract_s'] / len(parcels):10.1f} "
            f"{t_rs / ee['exactextract_s']:14.1f}   (max |diff| of exact fractions "
            f"{ee['exactextract_max_abs_diff']:.1e})"
        )
    print(f"centre counts equal to rasterstats: {centre_equal} ({centre_mismatch} parcels differ)")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
