"""Benchmark: ecosystem services (karstflow.services) on a synthetic region, beside InVEST.

    .venv/bin/python benchmarks/bench_services.py [--size 1000] [--repeat 2] [--invest-python PATH]

Times, on a ``size x size`` 30 m grid, karstflow's flow routing + LS factor (pysheds MFD,
Desmet-Govers), annual water yield and habitat degradation (two threats), and, when a
Python with natcap.invest is given (``--invest-python`` or ``KARSTFLOW_INVEST_PYTHON``),
InVEST SDR, Annual Water Yield and Habitat Quality on the same GeoTIFFs in that
interpreter, side by side, as a ratio. InVEST times are the ``execute()`` call measured
inside its process (imports excluded); InVEST SDR does more than the LS factor (sediment
delivery), so that ratio is an upper bound for routing + LS. Reports, never asserts;
results in benchmarks/results/services.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from karstflow.grid import RegionGrid  # noqa: E402
from karstflow.io import write_raster  # noqa: E402
from karstflow.services import (  # noqa: E402
    annual_water_yield,
    flow_routing,
    habitat_degradation,
    ls_factor,
    reclassify,
)
from karstflow.terrain import slope_aspect  # noqa: E402

RES = 30.0
THREATS = {
    "crop": {"weight": 0.7, "max_distance_m": 4000.0, "decay": "linear"},
    "town": {"weight": 1.0, "max_distance_m": 10000.0, "decay": "exponential"},
}
SENS = pd.DataFrame({
    "lulc": [1, 2, 5, 7, 8], "name": ["crop", "forest", "shrub", "water", "town"],
    "habitat": [0.4, 1.0, 0.8, 0.7, 0.0], "crop": [0.3, 0.7, 0.6, 0.65, 0.0], "town": [0.5, 0.85, 0.7, 0.8, 0.0],
})
BIO = pd.DataFrame({
    "lucode": [1, 2, 5, 7, 8], "lulc_desc": ["crop", "forest", "shrub", "water", "town"],
    "root_depth": [1500, 5000, 2500, 1, 1], "Kc": [0.8, 1.0, 0.8, 1.05, 0.3], "LULC_veg": [1, 1, 1, 0, 0],
    "usle_c": [0.23, 0.006, 0.03, 0.0, 0.0], "usle_p": [0.35, 1.0, 1.0, 1.0, 1.0],
})


def synthetic(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dem = sum(ndimage.gaussian_filter(rng.normal(size=(size, size)), s) * s * 20 for s in (4, 16, 64))
    dem = 800 + (dem - dem.min())
    patch = ndimage.gaussian_filter(rng.normal(size=(size, size)), 10)
    q = np.quantile(patch, [0.1, 0.45, 0.9, 0.97])
    lc = np.select([patch < q[0], patch < q[1], patch < q[2], patch < q[3]], [7, 2, 5, 1], 8).astype(np.int32)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    return {
        "dem": dem.astype(np.float32),
        "lulc": lc,
        "precip": (1100 + 0.2 * xx).astype(np.float32),
        "eto": (900 + 0.1 * yy).astype(np.float32),
        "depth": np.where(lc == 5, 350.0, 900.0).astype(np.float32),
        "pawc": np.where(lc == 5, 0.11, 0.16).astype(np.float32),
    }


def best_of(repeat: int, fn) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def ours(d: dict[str, np.ndarray], grid: RegionGrid, repeat: int) -> dict[str, dict[str, float]]:
    dem = grid.data_array(d["dem"].astype(np.float64))

    def routing_ls():
        r = flow_routing(dem)
        slope, aspect = slope_aspect(grid.data_array(r.filled_dem))
        ls_factor(np.asarray(slope.values), np.asarray(aspect.values), r.flow_accumulation, cell_size_m=RES)

    bio = BIO.set_index("lucode")

    def lookup(col):
        return reclassify(d["lulc"], bio[col].to_dict(), what=col, table_source="bio")

    def water():
        annual_water_yield(
            d["precip"], d["eto"], lookup("Kc"), lookup("root_depth"), d["depth"], d["pawc"], 5.0, lookup("LULC_veg")
        )

    sens = {int(r.lulc): {"crop": r.crop, "town": r.town} for r in SENS.itertuples()}

    def habitat():
        habitat_degradation(
            d["lulc"], {"crop": d["lulc"] == 1, "town": d["lulc"] == 8}, THREATS, sens, resolution_m=RES
        )

    routing_ls()  # numba compile / cache load outside the timing
    out = {}
    for name, fn in (("routing_ls", routing_ls), ("water_yield", water), ("habitat_degradation", habitat)):
        wall, cpu = best_of(repeat, fn)
        out[name] = {"wall_s": wall, "cpu_s": cpu}
    return out


INVEST_DRIVER = textwrap.dedent("""
    import json, sys, time, logging
    logging.basicConfig(level=logging.ERROR)
    from natcap.invest import annual_water_yield, habitat_quality
    from natcap.invest.sdr import sdr
    jobs = json.loads(sys.argv[1])
    times = {}
    modules = (("routing_ls", sdr), ("water_yield", annual_water_yield), ("habitat_degradation", habitat_quality))
    for name, module in modules:
        t0 = time.perf_counter()
        module.execute(jobs[name])
        times[name] = time.perf_counter() - t0
    print(json.dumps(times))
""")


def invest(python: str, d: dict[str, np.ndarray], grid: RegionGrid, work: Path) -> dict[str, float]:
    import geopandas as gpd
    import shapely

    paths = {}
    for name in ("dem", "lulc", "precip", "eto", "depth", "pawc"):
        paths[name] = str(work / f"{name}.tif")
        write_raster(grid.data_array(d[name]), paths[name], nodata=-9999 if name == "lulc" else None)
    for name, value in (("erosivity", 4000.0), ("erodibility", 0.03)):
        paths[name] = str(work / f"{name}.tif")
        write_raster(grid.data_array(np.full(grid.shape, value, np.float32)), paths[name])
    for t, code in (("crop", 1), ("town", 8)):
        write_raster(grid.data_array((d["lulc"] == code).astype(np.float32)), work / f"threat_{t}.tif", nodata=-1.0)
    pd.DataFrame(
        {
            "threat": list(THREATS),
            "max_dist": [v["max_distance_m"] / 1000 for v in THREATS.values()],
            "weight": [v["weight"] for v in THREATS.values()],
            "decay": [v["decay"] for v in THREATS.values()],
            "cur_path": [f"threat_{t}.tif" for t in THREATS],
            "fut_path": "",
            "base_path": "",
        }
    ).to_csv(work / "threats.csv", index=False)
    SENS.to_csv(work / "sens.csv", index=False)
    BIO.to_csv(work / "bio.csv", index=False)
    gpd.GeoDataFrame({"ws_id": [1]}, geometry=[shapely.box(*grid.bounds)], crs=grid.crs).to_file(work / "ws.gpkg")
    jobs = {
        "routing_ls": {
            "workspace_dir": str(work / "sdr"),
            "dem_path": paths["dem"],
            "erosivity_path": paths["erosivity"],
            "erodibility_path": paths["erodibility"],
            "lulc_path": paths["lulc"],
            "watersheds_path": str(work / "ws.gpkg"),
            "biophysical_table_path": str(work / "bio.csv"),
            "threshold_flow_accumulation": 1000,
            "k_param": 2,
            "ic_0_param": 0.5,
            "sdr_max": 0.8,
            "l_max": 122,
            "n_workers": -1,
        },
        "water_yield": {
            "workspace_dir": str(work / "awy"),
            "lulc_path": paths["lulc"],
            "depth_to_root_rest_layer_path": paths["depth"],
            "precipitation_path": paths["precip"],
            "pawc_path": paths["pawc"],
            "eto_path": paths["eto"],
            "watersheds_path": str(work / "ws.gpkg"),
            "biophysical_table_path": str(work / "bio.csv"),
            "seasonality_constant": 5.0,
            "n_workers": -1,
        },
        "habitat_degradation": {
            "workspace_dir": str(work / "hq"),
            "lulc_cur_path": paths["lulc"],
            "threats_table_path": str(work / "threats.csv"),
            "sensitivity_table_path": str(work / "sens.csv"),
            "half_saturation_constant": 0.3,
            "n_workers": -1,
        },
    }
    proc = subprocess.run(
        [python, "-c", INVEST_DRIVER, json.dumps(jobs)], cwd=work, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--invest-python", default=os.environ.get("KARSTFLOW_INVEST_PYTHON"))
    args = ap.parse_args()
    grid = RegionGrid.from_bounds(
        "EPSG:32648", RES, (600000, 2799990, 600000 + args.size * RES, 2799990 + args.size * RES)
    )
    d = synthetic(args.size)
    result = {"size": args.size, "pixels": args.size**2, "karstflow": ours(d, grid, args.repeat)}
    if args.invest_python:
        with tempfile.TemporaryDirectory() as tmp:
            result["invest"] = invest(args.invest_python, d, grid, Path(tmp))
    print(f"{args.size} x {args.size} px at {RES:g} m")
    print(f"{'step':22s} {'karstflow s':>12s} {'CPU s':>8s} {'InVEST s':>10s} {'ratio':>7s}")
    for name, t in result["karstflow"].items():
        inv = result.get("invest", {}).get(name)
        ratio = f"{inv / t['wall_s']:.1f}x" if inv else "-"
        print(
            f"{name:22s} {t['wall_s']:12.2f} {t['cpu_s']:8.2f} {inv if inv is not None else float('nan'):10.2f} "
            f"{ratio:>7s}"
        )
    out = ROOT / "benchmarks" / "results" / "services.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
