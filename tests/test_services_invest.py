"""karstflow.services against natcap.invest on the same small inputs.

natcap.invest does not install from PyPI into the project's environment (it builds
pygeoprocessing from source, which needs GDAL's development files and gdal-config), so
these tests run InVEST in the interpreter named by ``KARSTFLOW_INVEST_PYTHON`` (or in this
one when ``natcap.invest`` imports here) and skip with that reason otherwise. A separate
environment for them: ``apt-get install python3-gdal libgdal-dev g++``, then a venv of the
system Python with ``--system-site-packages`` and ``pip install "numpy<2" "cython<3.1"
"natcap.invest==3.14.2"`` (with PIP_CONSTRAINT pinning cython<3.1 for the builds).

* Annual water yield and habitat quality implement InVEST's equations exactly, so the
  maps must agree to float32 precision.
* The LS factor uses the same equation but a different router (pysheds vs
  pygeoprocessing, both MFD with slope-proportional weights) and Horn's slope, so it is
  compared by correlation and the median ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from karstflow.grid import RegionGrid
from karstflow.io import read_raster, write_raster

RES = 30.0
SHAPE = (40, 50)


def _invest_python() -> str:
    env = os.environ.get("KARSTFLOW_INVEST_PYTHON")
    if env:
        return env
    try:
        import natcap.invest  # noqa: F401
    except ImportError:
        pytest.skip(
            "natcap.invest is not installed: it does not build from PyPI here (pygeoprocessing needs "
            "GDAL's gdal-config); set KARSTFLOW_INVEST_PYTHON to a Python that has it"
        )
    return sys.executable


def _run_invest(python: str, model: str, args: dict, workdir: Path) -> None:
    code = textwrap.dedent(f"""
        import importlib, json, logging, sys
        logging.basicConfig(level=logging.WARNING)
        importlib.import_module("natcap.invest.{model}").execute(json.loads(sys.argv[1]))
    """)
    proc = subprocess.run(
        [python, "-c", code, json.dumps(args)], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise AssertionError(f"InVEST {model} failed:\n{proc.stderr[-4000:]}")


def _inputs(tmp_path: Path):
    """A small region: a valley DEM, land cover with forest, crops, shrub and a town."""
    grid = RegionGrid.from_bounds(
        "EPSG:32648", RES, (600000, 2799990, 600000 + SHAPE[1] * RES, 2799990 + SHAPE[0] * RES)
    )
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    dem = 900 + 4.0 * np.abs(yy - 20) + 2.5 * xx + 3 * np.sin(xx / 3) * np.cos(yy / 4) + rng.normal(0, 0.3, SHAPE)
    lc = np.full(SHAPE, 2, np.int32)  # forested land
    lc[:, 30:] = 5  # shrub
    lc[15:25, 5:20] = 1  # cultivated
    lc[2:6, 40:46] = 8  # built-up
    lc[19:21, :] = 7  # a river
    precip = 1100 + 3.0 * xx + rng.normal(0, 5, SHAPE)
    eto = 900 + 2.0 * yy
    depth = np.where(lc == 5, 350.0, 900.0)
    pawc = np.where(lc == 5, 0.11, 0.16)
    paths = {}
    for name, arr, dtype in (("dem", dem, "float32"), ("lulc", lc, "int32"), ("precip", precip, "float32"),
                             ("eto", eto, "float32"), ("depth", depth, "float32"), ("pawc", pawc, "float32")):
        paths[name] = tmp_path / f"{name}.tif"
        write_raster(grid.data_array(arr.astype(dtype)), paths[name], nodata=-9999 if dtype == "int32" else None)
    import geopandas as gpd
    import shapely

    ws = gpd.GeoDataFrame({"ws_id": [1]}, geometry=[shapely.box(*grid.bounds)], crs=grid.crs)
    paths["watersheds"] = tmp_path / "watersheds.gpkg"
    ws.to_file(paths["watersheds"], driver="GPKG")
    bio = pd.DataFrame({
        "lucode": [1, 2, 5, 7, 8], "lulc_desc": ["crop", "forest", "shrub", "water", "town"],
        "root_depth": [1500, 5000, 2500, 1, 1], "Kc": [0.8, 1.0, 0.8, 1.05, 0.3], "LULC_veg": [1, 1, 1, 0, 0],
        "usle_c": [0.23, 0.006, 0.03, 0.0, 0.0], "usle_p": [0.35, 1.0, 1.0, 1.0, 1.0],
    })
    paths["bio"] = tmp_path / "biophysical.csv"
    bio.to_csv(paths["bio"], index=False)
    return grid, paths, {"dem": dem, "lc": lc, "precip": precip, "eto": eto, "depth": depth, "pawc": pawc, "bio": bio}


def test_water_yield_matches_invest(tmp_path):
    python = _invest_python()
    from karstflow.services import annual_water_yield, reclassify

    grid, paths, d = _inputs(tmp_path)
    ws = tmp_path / "awy"
    _run_invest(python, "annual_water_yield", {
        "workspace_dir": str(ws), "lulc_path": str(paths["lulc"]), "depth_to_root_rest_layer_path": str(paths["depth"]),
        "precipitation_path": str(paths["precip"]), "pawc_path": str(paths["pawc"]), "eto_path": str(paths["eto"]),
        "watersheds_path": str(paths["watersheds"]), "biophysical_table_path": str(paths["bio"]),
        "seasonality_constant": 5.0, "n_workers": -1,
    }, tmp_path)
    invest = read_raster(ws / "output" / "per_pixel" / "wyield.tif").values
    bio = d["bio"].set_index("lucode")

    def lookup(col):
        return reclassify(d["lc"], bio[col].to_dict(), what=col, table_source="bio")

    ours = annual_water_yield(
        d["precip"], d["eto"], lookup("Kc"), lookup("root_depth"), d["depth"], d["pawc"], 5.0, lookup("LULC_veg")
    )
    assert np.isfinite(invest).all()
    np.testing.assert_allclose(ours.water_yield_mm, invest, rtol=1e-4, atol=0.05)


def test_habitat_quality_matches_invest(tmp_path):
    python = _invest_python()
    from karstflow.services import habitat_degradation, habitat_quality, reclassify

    grid, paths, d = _inputs(tmp_path)
    lc = d["lc"]
    threats = {
        "crop": {"weight": 0.7, "max_distance_m": 600.0, "decay": "linear"},
        "town": {"weight": 1.0, "max_distance_m": 900.0, "decay": "exponential"},
    }
    masks = {"crop": lc == 1, "town": lc == 8}
    for name, mask in masks.items():
        write_raster(grid.data_array(mask.astype("float32")), tmp_path / f"threat_{name}.tif", nodata=-1.0)
    pd.DataFrame({
        "threat": list(threats), "max_dist": [t["max_distance_m"] / 1000 for t in threats.values()],
        "weight": [t["weight"] for t in threats.values()], "decay": [t["decay"] for t in threats.values()],
        "cur_path": [f"threat_{n}.tif" for n in threats], "fut_path": ["", ""], "base_path": ["", ""],
    }).to_csv(tmp_path / "threats.csv", index=False)
    sens = pd.DataFrame({
        "lulc": [1, 2, 5, 7, 8], "name": ["crop", "forest", "shrub", "water", "town"],
        "habitat": [0.4, 1.0, 0.8, 0.7, 0.0], "crop": [0.3, 0.7, 0.6, 0.65, 0.0], "town": [0.5, 0.85, 0.7, 0.8, 0.0],
    })
    sens.to_csv(tmp_path / "sensitivity.csv", index=False)
    ws = tmp_path / "hq"
    _run_invest(
        python,
        "habitat_quality",
        {
            "workspace_dir": str(ws),
            "lulc_cur_path": str(paths["lulc"]),
            "threats_table_path": str(tmp_path / "threats.csv"),
            "sensitivity_table_path": str(tmp_path / "sensitivity.csv"),
            "half_saturation_constant": 0.3,
            "n_workers": -1,
        },
        tmp_path,
    )
    deg_invest = read_raster(ws / "deg_sum_c.tif").values
    q_invest = read_raster(ws / "quality_c.tif").values
    table = sens.set_index("lulc")
    sensitivity = {int(c): {"crop": float(r["crop"]), "town": float(r["town"])} for c, r in table.iterrows()}
    deg = habitat_degradation(lc, masks, threats, sensitivity, resolution_m=RES)
    h = reclassify(lc, table["habitat"].to_dict(), what="habitat", table_source="sens")
    q = habitat_quality(h, deg, half_saturation=0.3)
    np.testing.assert_allclose(deg, deg_invest, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(q, q_invest, rtol=1e-4, atol=1e-6)


def test_ls_factor_agrees_with_invest_sdr(tmp_path):
    python = _invest_python()
    from karstflow.services import flow_routing, ls_factor
    from karstflow.terrain import slope_aspect

    grid, paths, d = _inputs(tmp_path)
    for name, value in (("erosivity", 4000.0), ("erodibility", 0.03)):
        paths[name] = tmp_path / f"{name}.tif"
        write_raster(grid.data_array(np.full(SHAPE, value, np.float32)), paths[name])
    ws = tmp_path / "sdr"
    _run_invest(
        python,
        "sdr.sdr",
        {
            "workspace_dir": str(ws),
            "dem_path": str(paths["dem"]),
            "erosivity_path": str(paths["erosivity"]),
            "erodibility_path": str(paths["erodibility"]),
            "lulc_path": str(paths["lulc"]),
            "watersheds_path": str(paths["watersheds"]),
            "biophysical_table_path": str(paths["bio"]),
            "threshold_flow_accumulation": 1000,
            "k_param": 2,
            "ic_0_param": 0.5,
            "sdr_max": 0.8,
            "l_max": 122,
            "n_workers": -1,
        },
        tmp_path,
    )
    invest = read_raster(ws / "intermediate_outputs" / "ls.tif").values
    dem = grid.data_array(d["dem"].astype(np.float64))
    routing = flow_routing(dem)
    slope, aspect = slope_aspect(grid.data_array(routing.filled_dem))
    ours = ls_factor(np.asarray(slope.values), np.asarray(aspect.values), routing.flow_accumulation, cell_size_m=RES)
    inner = np.zeros(SHAPE, bool)
    inner[2:-2, 2:-2] = True  # edges differ by construction (slope edge handling, outlets)
    ok = inner & np.isfinite(invest) & np.isfinite(ours)
    assert ok.sum() > 0.8 * inner.sum()
    r = np.corrcoef(np.log(ours[ok]), np.log(invest[ok]))[0, 1]
    ratio = np.median(ours[ok] / invest[ok])
    print(f"LS vs InVEST SDR: log-correlation {r:.3f}, median ratio {ratio:.3f}, n {ok.sum()}")
    assert r > 0.9
    assert 0.8 < ratio < 1.25
