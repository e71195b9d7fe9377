"""The entry scripts of workflow/scripts: one convention, and runnable without Snakemake.

Every script defines ``main(input, output, params, wildcards, threads=1)`` and ends with
``if "snakemake" in globals(): run_script(main, snakemake)``, the only line that reads
Snakemake's object; ``karstflow.runtime.call_script`` runs a script from plain dicts.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from karstflow.grid import RegionGrid
from karstflow.io import read_raster, write_raster
from karstflow.runtime import Files, Params, Paths, call_script, load_script, run_script

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.py"))
MAIN_ARGS = ["input", "output", "params", "wildcards", "threads"]
ADAPTER = 'if "snakemake" in globals():\n    run_script(main, snakemake)  # noqa: F821'


def test_there_are_scripts():
    assert len(SCRIPTS) >= 38


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_follows_the_convention(path):
    src = path.read_text()
    tree = ast.parse(src)
    assert ast.get_docstring(tree), f"{path.name}: no module docstring"

    mains = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "main"]
    assert len(mains) == 1, f"{path.name}: expected one module-level def main"
    args = mains[0].args
    assert [a.arg for a in args.args] == MAIN_ARGS, f"{path.name}: main{[a.arg for a in args.args]}"
    assert not (args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs)
    # threads may default (to 1); the files, params and wildcards may not
    assert len(args.defaults) <= 1

    last = tree.body[-1]
    assert isinstance(last, ast.If) and ast.unparse(last) == ADAPTER.split("  #")[0].replace(
        '"snakemake"', "'snakemake'"
    ), f"{path.name}: does not end with the adapter"
    assert src.rstrip("\n").endswith(ADAPTER), f"{path.name}: does not end with the adapter"

    # "snakemake" appears nowhere but in the adapter: no snakemake.input, .log[0], ...
    adapter_nodes = {id(n) for n in ast.walk(last)}
    stray = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id == "snakemake" and id(n) not in adapter_nodes
    ]
    assert not stray, f"{path.name}: 'snakemake' used outside the adapter, line(s) {stray}"
    assert src.count("snakemake.") == 0

    # the preamble lives in run_script alone
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "karstflow.runtime"
        for alias in node.names
    }
    assert imported == {"run_script"}, f"{path.name}: imports {imported} from karstflow.runtime"
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not called & {"configure_logging", "set_threads"}

    # the module logger is karstflow.scripts.<name>
    expected = f'log = logging.getLogger("karstflow.scripts.{path.stem}")'
    assert expected in src, f"{path.name}: no {expected}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_without_running(path, monkeypatch):
    calls = []
    monkeypatch.setattr("karstflow.runtime.run_script", lambda *a: calls.append(a))
    module = load_script(path)
    assert callable(module.main)
    assert module.__name__ == f"karstflow_script_{path.stem}"
    assert not calls


# --------------------------------------------------------------------------------------
# Files / Params / run_script
# --------------------------------------------------------------------------------------


def test_files_and_params_from_dicts():
    f = Files({"dem": Path("a/dem.tif"), "tiles": ["t1.tif", Path("t2.tif")]})
    assert f.dem == "a/dem.tif" and isinstance(f.dem, str)
    assert f.tiles == ["t1.tif", "t2.tif"] and isinstance(f.tiles, Paths)
    assert str(f.tiles) == "t1.tif t2.tif"  # as Snakemake prints a list of files
    assert f["dem"] == f.dem and "tiles" in f and "aoi" not in f
    assert f.positional == ["a/dem.tif", "t1.tif", "t2.tif"]
    with pytest.raises(AttributeError, match="aoi"):
        f.aoi  # noqa: B018
    p = Params({"alpha": 0.05, "classes": {1: "forest"}})
    assert p.alpha == 0.05 and p.classes == {1: "forest"}
    assert Params(None) == {} and Files(None).positional == []


def test_files_and_params_from_snakemake_namedlists():
    Namedlist = pytest.importorskip("snakemake.iocontainers").Namedlist

    files = Namedlist()
    files.append("grid.json")
    files._add_name("grid")
    files.extend(["p1.json", "p2.json"])
    files._set_name("periods", 1, end=3)
    files.append("unnamed.tif")
    f = Files(files)
    assert dict(f) == {"grid": "grid.json", "periods": ["p1.json", "p2.json"]}
    assert f.periods == ["p1.json", "p2.json"]
    assert str(f.periods) == str(files.periods)
    assert f.positional == list(files) == ["grid.json", "p1.json", "p2.json", "unnamed.tif"]
    assert f.positional[0] == files[0]

    params = Params(Namedlist(fromdict={"chunk_px": 256, "bands": ["B04", "B08"]}))
    assert params.chunk_px == 256 and params.bands == ["B04", "B08"]
    wildcards = Params(Namedlist(fromdict={"region": "demo_county", "year": "2020"}))
    assert wildcards.region == "demo_county" and wildcards.year == "2020"


def test_run_script_passes_the_rule_to_main(tmp_path):
    from types import SimpleNamespace

    Namedlist = pytest.importorskip("snakemake.iocontainers").Namedlist

    seen = {}

    def main(input, output, params, wildcards, threads=1):
        seen.update(input=input, output=output, params=params, wildcards=wildcards, threads=threads)
        logging.getLogger("karstflow.scripts.test").info("hello from main")

    log = tmp_path / "logs" / "rule.log"
    smk = SimpleNamespace(
        input=Namedlist(fromdict={"dem": "dem.tif"}),
        output=Namedlist(fromdict={"slope": "slope.tif"}),
        params=Namedlist(fromdict={"flat_max_deg": 2.0}),
        wildcards=Namedlist(fromdict={"region": "r1"}),
        threads=3,
        log=Namedlist(fromdict={"log": str(log)}),
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        run_script(main, smk)
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                h.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    assert seen["input"] == {"dem": "dem.tif"} and isinstance(seen["input"], Files)
    assert seen["output"].slope == "slope.tif"
    assert seen["params"].flat_max_deg == 2.0 and seen["wildcards"].region == "r1"
    assert seen["threads"] == 3
    assert "karstflow.scripts.test: hello from main" in log.read_text()


# --------------------------------------------------------------------------------------
# real scripts through call_script
# --------------------------------------------------------------------------------------


def test_summary_table_script(tmp_path):
    summaries = [
        {"region": "zeta", "grid": {"crs": "EPSG:32648", "width": 4}, "terrain": {"slope_mean_deg": 5.5}},
        {"region": "alpha", "grid": {"crs": "EPSG:32649", "width": 7}, "terrain": {"slope_mean_deg": 1.25}},
    ]
    paths = []
    for i, body in enumerate(summaries):
        path = tmp_path / f"r{i}" / "summary.json"
        path.parent.mkdir()
        path.write_text(json.dumps(body))
        paths.append(path)
    table_path = tmp_path / "results" / "summary.csv"
    call_script(
        SCRIPTS_DIR / "summary_table.py",
        input={"summaries": paths},
        output={"table": table_path},
        log=tmp_path / "logs" / "summary_table.log",
    )
    table = pd.read_csv(table_path)
    assert list(table.columns) == ["region", "grid.crs", "grid.width", "terrain.slope_mean_deg"]
    # one row per region, sorted by region; every value as in its JSON
    assert table["region"].tolist() == ["alpha", "zeta"]
    for body in summaries:
        row = table[table["region"] == body["region"]].iloc[0]
        assert row["grid.crs"] == body["grid"]["crs"]
        assert row["grid.width"] == body["grid"]["width"]
        assert row["terrain.slope_mean_deg"] == body["terrain"]["slope_mean_deg"]


@pytest.fixture
def tilted_dem(tmp_path):
    """A 20 x 24 px DEM rising 0.1 m per metre eastwards, on a 30 m UTM grid, and its grid.json."""
    grid = RegionGrid.from_bounds("EPSG:32648", 30.0, (499980.0, 2800020.0, 500700.0, 2800620.0))
    assert grid.shape == (20, 24)
    x = np.asarray(grid.coords()["x"], dtype=np.float64)
    z = np.broadcast_to(100.0 + 0.1 * (x - x[0]), grid.shape).astype(np.float32)
    dem_path = tmp_path / "inputs" / "dem.tif"
    dem_path.parent.mkdir()
    write_raster(grid.data_array(z.copy(), name="elevation"), dem_path)
    grid_path = tmp_path / "results" / "r1" / "grid.json"
    grid_path.parent.mkdir(parents=True)
    grid_path.write_text(json.dumps(grid.to_dict()))
    return grid, z, dem_path, grid_path


def test_terrain_dem_and_derivatives_scripts(tmp_path, tilted_dem):
    grid, z, dem_path, grid_path = tilted_dem
    out = tmp_path / "results" / "r1" / "terrain"
    call_script(
        SCRIPTS_DIR / "terrain_dem.py",
        input={"dem": dem_path, "grid": grid_path},
        output={"dem": out / "dem.tif"},
        params={"resampling": "bilinear"},
        wildcards={"region": "r1"},
        log=tmp_path / "logs" / "terrain_dem.log",
    )
    on_grid = read_raster(out / "dem.tif")
    assert grid.matches(on_grid)
    np.testing.assert_allclose(on_grid.values, z, rtol=0, atol=1e-3)
    assert (
        "karstflow.scripts.terrain_dem: DEM on the region grid" in (tmp_path / "logs" / "terrain_dem.log").read_text()
    )

    outputs = {
        "slope": out / "slope.tif",
        "aspect": out / "aspect.tif",
        "aspect_class": out / "aspect_class.tif",
    }
    call_script(
        SCRIPTS_DIR / "terrain_derivatives.py",
        input={"dem": out / "dem.tif"},
        output=outputs,
        params={"flat_max_deg": 2.0, "chunk_px": 8},
        wildcards={"region": "r1"},
        threads=2,
    )
    outputs["summary"] = out / "terrain.json"
    log = tmp_path / "logs" / "terrain_summary.log"
    call_script(
        SCRIPTS_DIR / "terrain_summary.py",
        input={"dem": out / "dem.tif", "slope": outputs["slope"], "aspect_class": outputs["aspect_class"]},
        output={"summary": outputs["summary"]},
        params={"flat_max_deg": 2.0},
        wildcards={"region": "r1"},
        log=log,
    )
    expected = math.degrees(math.atan(0.1))
    slope = read_raster(outputs["slope"]).values
    np.testing.assert_allclose(slope, expected, atol=1e-3)
    aspect = read_raster(outputs["aspect"]).values
    np.testing.assert_allclose(aspect, 270.0, atol=1e-3)  # rising eastwards: faces west
    summary = json.loads(outputs["summary"].read_text())
    assert summary["slope_mean_deg"] == pytest.approx(expected, abs=1e-3)
    assert f"terrain: mean slope {expected:.2f} deg" in log.read_text()


def test_call_script_leaves_logging_as_it_was(tmp_path):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hook = sys.excepthook
    missing = tmp_path / "no-such-summary.json"
    with pytest.raises(OSError, match="no-such-summary"):
        call_script(
            SCRIPTS_DIR / "summary_table.py",
            input={"summaries": [missing]},
            output={"table": tmp_path / "summary.csv"},
            log=tmp_path / "logs" / "summary_table.log",
        )
    assert root.handlers == handlers and root.level == level
    assert sys.excepthook is hook
    assert not (tmp_path / "summary.csv").exists()
