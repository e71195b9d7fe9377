"""karstflow.resources: the fit, the estimates, the benchmark tables, and the memory check of a
finished run (issue 14: no job needs more memory than its mem_mb, from the benchmark's max_rss)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from karstflow.grid import RegionGrid
from karstflow.resources import (
    FALLBACK_RULE,
    Calibration,
    RuleModel,
    benchmark_jobs,
    benchmark_rule,
    estimate,
    fit_envelope,
    fit_line,
    job_layers,
    job_pixels,
    load_calibration,
    memory_excess,
    memory_pixels,
    workflow_rule_names,
    write_calibration,
)

ROOT = Path(__file__).resolve().parents[1]
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _calibration(**rules: RuleModel) -> Calibration:
    return Calibration(rules=rules, mem_safety=1.2, runtime_safety=2.0, mem_floor_mb=500, runtime_floor_min=1)


RULE_X = RuleModel(mem_base_mb=300, mem_mb_per_mpx=200, time_base_s=30, time_s_per_mpx=120)


# --- the fit ---


def test_fit_line_recovers_exact_coefficients():
    assert fit_line([0.0, 1.0, 2.0, 4.0], [100.0, 150.0, 200.0, 300.0]) == pytest.approx((100.0, 50.0))


def test_fit_line_least_squares_by_hand():
    # x = 0, 1, 2; y = 1, 3, 2: slope = Sxy / Sxx = 1 / 2, base = 2 - 0.5 x 1
    assert fit_line([0, 1, 2], [1, 3, 2]) == pytest.approx((1.5, 0.5))


def test_fit_envelope_covers_every_point():
    # residuals of the least-squares line: -0.5, +1, -0.5: the line moves up by 1
    base, slope = fit_envelope([0, 1, 2], [1, 3, 2])
    assert (base, slope) == pytest.approx((2.5, 0.5))


def test_fit_envelope_cover_points_raise_the_base_not_the_slope():
    # the fitted points lie on 1 + 2 x; (0, 4) must be covered: the line moves up by 3
    assert fit_envelope([0, 1, 2], [1, 3, 5], cover=[(0, 4)]) == pytest.approx((4.0, 2.0))
    assert fit_envelope([0, 1, 2], [1, 3, 5], cover=[(2, 4)]) == pytest.approx((1.0, 2.0))


def test_fit_envelope_with_a_given_slope():
    # slope 10 kept: the lowest base covering (0, 1), (1, 30), (2, 5) is 30 - 10 = 20
    assert fit_envelope([0, 1, 2], [1, 30, 5], slope=10.0) == pytest.approx((20.0, 10.0))


def test_fit_envelope_negative_slope_and_one_size():
    assert fit_envelope([1, 2], [300, 280]) == pytest.approx((300.0, 0.0))
    assert fit_envelope([1, 1], [300, 280]) == pytest.approx((300.0, 0.0))
    # least squares through (1, 1), (2, 3): 2 x - 1; the base is kept at 0
    assert fit_envelope([1, 2], [1, 3]) == pytest.approx((0.0, 2.0))
    with pytest.raises(ValueError, match="as many values"):
        fit_line([1, 2], [1])


# --- estimates ---


def test_estimate_by_hand():
    cal = _calibration(x=RULE_X)
    # 2 Mpx: mem 1.2 x (300 + 200 x 2) = 840 MB; time 2.0 x (30 + 120 x 2) s = 540 s = 9 min
    assert estimate("x", 2_000_000, calibration=cal) == (1240, 9)
    # 1 Mpx x 3 layers = 3 Mpx-layers: 1.2 x 900 = 1080 MB; 2 x 390 s = 13 min
    assert estimate("x", 1_000_000, layers=3, calibration=cal) == (1480, 13)
    # a retry asks for twice as much
    assert estimate("x", 2_000_000, attempt=2, calibration=cal) == (2480, 18)


def test_estimate_floors_and_attempt():
    cal = _calibration(x=RULE_X)
    # nothing to read: 1.2 x 300 = 360 < 500 MB floor; 2 x 30 s = 1 min
    assert estimate("x", 0, calibration=cal) == (900, 1)
    assert estimate("x", 0, attempt=3, calibration=cal) == (2700, 3)
    # 0.1 Mpx: 2 x 42 s = 1.4 min -> 2 (rounded up)
    assert estimate("x", 100_000, calibration=cal)[1] == 2
    with pytest.raises(ValueError, match="attempt"):
        estimate("x", 0, attempt=0, calibration=cal)


def test_estimate_threads_add_per_thread_memory_only():
    rule = RuleModel(300, 200, 30, 120, mem_mb_per_thread=100)
    cal = _calibration(x=rule)
    # 1.2 x (300 + 200 + 100 x 3) = 960 MB; the wall time is not divided by the threads
    assert estimate("x", 1_000_000, threads=4, calibration=cal) == (1360, 5)


def test_unknown_rule_gets_the_default_and_tiles_their_rule():
    cal = _calibration(x=RULE_X, tile_mosaic=RuleModel(100, 1000, 10, 60))
    # FALLBACK_RULE: 4000 MB + 2000 MB/Mpx, 300 s + 600 s/Mpx: 1.2 x 6000, 2 x 900 s / 60
    assert FALLBACK_RULE.mem_base_mb == 4000
    assert estimate("nobody", 1_000_000, calibration=cal) == (7600, 30)
    # a tile job of x is x's model; the mosaic of any rule the template's
    assert estimate("x_tile", 2_000_000, calibration=cal) == (1240, 9)
    assert estimate("greening_trend_mosaic", 1_000_000, calibration=cal) == (1720, 3)
    assert cal.model("greening_trend_mosaic").layers == "years"
    assert cal.model("terrain_derivatives_mosaic").layers == "1"


def test_job_pixels_tile_windows_with_halo():
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 3000, 3000))  # 100 x 100 px
    assert job_pixels(grid) == 10_000
    assert job_pixels(grid, 64, "r000c000") == 64 * 64
    assert job_pixels(grid, 64, "r000c000", halo_px=1) == 65 * 65  # halo only inside the grid
    assert job_pixels(grid, 64, "r001c001", halo_px=1) == 37 * 37  # edge tile 36 px + 1 px halo
    with pytest.raises(ValueError, match="tile_px"):
        job_pixels(grid, None, "r000c000")
    assert job_layers("greening_trend", 24) == 24
    assert job_layers("greening_trend_tile", 24) == 24
    assert job_layers("terrain_derivatives", 24) == 1


def test_a_mosaic_holds_one_tile_and_takes_the_region_s_time():
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 3000, 3000))  # 100 x 100 px
    assert memory_pixels("greening_cube_mosaic", grid, 64) == 64 * 64  # the largest tile
    assert memory_pixels("greening_cube_mosaic", grid, 256) == 100 * 100  # one tile is the region
    assert memory_pixels("greening_cube_tile", grid, 64, "r001c001", halo_px=1) == 37 * 37
    assert memory_pixels("greening_cube", grid) == 10_000
    cal = _calibration(x_mosaic=RULE_X)
    # 100 Mpx read, 1 Mpx held: mem 1.2 x (300 + 200 x 1) + 400 = 1000 MB;
    # time 2.0 x (30 + 120 x 100) s = 401 min
    assert estimate("x_mosaic", 100_000_000, mem_pixels=1_000_000, calibration=cal) == (1000, 401)
    # layers count for both: 1 Mpx x 3 held, 1.2 x (300 + 600) + 400
    assert estimate("x_mosaic", 100_000_000, 3, mem_pixels=1_000_000, calibration=cal)[0] == 1480


# --- the calibration file ---


def test_calibration_round_trip_and_errors(tmp_path):
    cal = _calibration(x=RULE_X)
    path = tmp_path / "resources.yaml"
    write_calibration(cal, path, "# header\n")
    back = load_calibration(path)
    assert back.rules["x"].mem_mb_per_mpx == 200
    assert estimate("x", 2_000_000, calibration=back) == (1240, 9)
    # the Snakemake process of a cluster job, as the file gives it: 840 + 800 MB
    write_calibration(Calibration(rules={"x": RULE_X}, job_process_mb=800), path)
    assert estimate("x", 2_000_000, calibration=load_calibration(path)) == (1640, 9)
    path.write_text(yaml.safe_dump({"rules": {"x": {"mem_base_mb": 1}}}))
    with pytest.raises(ValueError, match=r"resources.yaml: rules.x: expected mem_base_mb"):
        load_calibration(path)
    path.write_text(yaml.safe_dump({"mem_safety": 0.5, "rules": {}}))
    with pytest.raises(ValueError, match=r"mem_safety: expected a number >= 1.0, found 0.5"):
        load_calibration(path)
    with pytest.raises(FileNotFoundError, match="calibration not found"):
        load_calibration(tmp_path / "missing.yaml")


def test_workflow_calibration_names_rules_of_the_workflow():
    cal = load_calibration(ROOT / "workflow" / "resources.yaml")
    names = workflow_rule_names(ROOT)
    assert {"terrain_dem", "greening_trend", "tile_mosaic", "terrain_derivatives_tile", "region_grid"} <= names
    assert cal.rules, "workflow/resources.yaml has no fitted rules"
    assert set(cal.rules) <= names
    # a line that gives every job some memory: a rule measured at one size only (the mosaics,
    # from the 16-tile benchmark run) gets the prior slope, and its base may clamp to 0
    assert all(m.mem_base_mb >= 0 and m.mem_mb_per_mpx >= 0 for m in cal.rules.values())
    assert all(m.mem_base_mb > 0 or m.mem_mb_per_mpx > 0 for m in cal.rules.values())


# --- benchmark tables ---


def test_benchmark_rule_names():
    rules = {"carbon_storage", "services_carbon_storage", "terrain_derivatives", "terrain_derivatives_mosaic"}
    assert benchmark_rule("carbon_storage_2000", rules) == "carbon_storage"
    assert benchmark_rule("services_carbon_storage_2000", rules) == "services_carbon_storage"
    assert benchmark_rule("terrain_derivatives_mosaic", rules) == "terrain_derivatives_mosaic"
    assert benchmark_rule("terrain_derivatives", rules, tile=True) == "terrain_derivatives_tile"
    assert benchmark_rule("unknown", rules) is None


def _fake_run(root: Path, size_px: int, measured: dict[str, tuple[float, float]], tile_px: int | None = None) -> Path:
    """A finished-run directory: config, grid.json and one benchmark table per entry of
    ``measured`` (relative path under logs/benchmarks/r -> (wall s, max_rss MB))."""
    (root / "config").mkdir(parents=True)
    region = {"years": {"first": 2001, "last": 2004}, "tiling": {"tile_px": tile_px} if tile_px else False}
    (root / "config" / "config.yaml").write_text(yaml.safe_dump({"regions": {"r": region}}))
    grid = RegionGrid.from_bounds("EPSG:32648", 10, (0, 0, 10 * size_px, 10 * size_px))
    (root / "results" / "r").mkdir(parents=True)
    (root / "results" / "r" / "grid.json").write_text(json.dumps(grid.to_dict()))
    (root / "workflow" / "rules").mkdir(parents=True)
    (root / "workflow" / "rules" / "x.smk").write_text(
        "rule terrain_dem:\n    output: 'a'\n\nrule greening_trend:\n    output: 'b'\n\n"
        "rule terrain_derivatives:\n    output: 'c'\n\n"
        "use rule terrain_derivatives as terrain_derivatives_tile with:\n    output: 'd'\n\n"
        "rule greening_cube_mosaic:\n    output: 'e'\n"
    )
    for rel, (wall, rss) in measured.items():
        path = root / "logs" / "benchmarks" / "r" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BENCH_HEADER + f"{wall}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t1\n")
    return root


def _calibrate_module():
    spec = importlib.util.spec_from_file_location("calibrate_resources", ROOT / "benchmarks" / "calibrate_resources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibrate_script_fits_two_runs_exactly(tmp_path):
    # terrain_dem: 1 Mpx -> 400 MB, 110 s; 4 Mpx -> 1000 MB, 410 s: 200 MB + 200 MB/Mpx, 10 s + 100 s/Mpx.
    # greening_trend counts the 4 years: 4 and 16 Mpx-layers, 300 and 900 MB: 100 + 50/Mpx-layer;
    # its time rises by 60 s, inside the 100 s spread, over 12 Mpx-layers where the prior 60 s/Mpx-layer
    # would have shown 720 s: the bound 100 / 12 s/Mpx-layer, base 0 (30 - 33.3 < 0).
    small = _fake_run(tmp_path / "a", 1000, {"terrain_dem.tsv": (110, 400), "greening_trend.tsv": (30, 300)})
    large = _fake_run(tmp_path / "b", 2000, {"terrain_dem.tsv": (410, 1000), "greening_trend.tsv": (90, 900)})
    module = _calibrate_module()
    cal, points = module.calibrate([small, large], mem_safety=1.2, runtime_safety=2.0)
    dem = cal.rules["terrain_dem"]
    assert (dem.mem_base_mb, dem.mem_mb_per_mpx) == pytest.approx((200.0, 200.0))
    assert (dem.time_base_s, dem.time_s_per_mpx) == pytest.approx((10.0, 100.0))
    trend = cal.rules["greening_trend"]
    assert trend.layers == "years"
    assert (trend.mem_base_mb, trend.mem_mb_per_mpx) == pytest.approx((100.0, 50.0))
    assert (trend.time_base_s, trend.time_s_per_mpx, trend.time_slope_from) == (0.0, pytest.approx(100 / 12), "bound")
    assert (cal.default.mem_base_mb, cal.default.mem_mb_per_mpx) == pytest.approx((200.0, 200.0))
    assert [r["regions"]["r"]["width"] for r in cal.fitted_from] == [1000, 2000]
    out = tmp_path / "resources.yaml"
    assert module.main([str(small), str(large), "--out", str(out)]) == 0
    assert load_calibration(out).rules["terrain_dem"].mem_mb_per_mpx == pytest.approx(200.0)
    # a cover run (numba compiling: 1000 MB at 1 Mpx) raises the base by 600 MB, keeps the slope
    cold = _fake_run(tmp_path / "c", 1000, {"terrain_dem.tsv": (15, 1000)})
    cal, _ = module.calibrate([small, large], cover=[(cold, ["r"])])
    assert (cal.rules["terrain_dem"].mem_base_mb, cal.rules["terrain_dem"].mem_mb_per_mpx) == pytest.approx((800, 200))
    assert [r["role"] for r in cal.fitted_from] == ["fit", "fit", "cover"]


def test_calibrate_script_fits_a_mosaic_s_memory_on_one_tile_and_its_time_on_the_region(tmp_path):
    # 1000 px in 500 px tiles, 2000 px in 1000 px tiles, 4 years: a mosaic holds 1 and 4
    # Mpx-layers (300, 900 MB: 100 + 200/Mpx-layer) and reads 4 and 16 (130, 490 s: 10 + 30/Mpx-layer)
    small = _fake_run(tmp_path / "a", 1000, {"greening_cube_mosaic.tsv": (130, 300)}, tile_px=500)
    large = _fake_run(tmp_path / "b", 2000, {"greening_cube_mosaic.tsv": (490, 900)}, tile_px=1000)
    module = _calibrate_module()
    cal, _ = module.calibrate([small, large])
    m = cal.rules["greening_cube_mosaic"]
    assert (m.mem_base_mb, m.mem_mb_per_mpx, m.mem_slope_from) == (pytest.approx(100.0), pytest.approx(200.0), "fit")
    assert (m.time_base_s, m.time_s_per_mpx, m.time_slope_from) == (pytest.approx(10.0), pytest.approx(30.0), "fit")
    # --only: the mosaic refitted from these runs, terrain_dem and the default kept from --out
    out = tmp_path / "resources.yaml"
    kept = RuleModel(mem_base_mb=123, mem_mb_per_mpx=4, time_base_s=5, time_s_per_mpx=6)
    write_calibration(Calibration(rules={"terrain_dem": kept}, default=RULE_X, fitted_from=[{"run": "old"}]), out)
    assert module.main([str(small), str(large), "--out", str(out), "--only", "*_mosaic"]) == 0
    merged = load_calibration(out)
    assert merged.rules["terrain_dem"] == kept and merged.default == RULE_X
    assert merged.rules["greening_cube_mosaic"].mem_mb_per_mpx == pytest.approx(200.0)
    assert [r.get("rules") for r in merged.fitted_from] == [None, ["*_mosaic"], ["*_mosaic"]]


def test_calibrate_script_uses_the_prior_slope_it_cannot_measure(tmp_path):
    # 100 and 200 px regions (0.01 and 0.04 Mpx), 300 and 330 MB: the fitted 1000 MB/Mpx rises by
    # 30 MB, inside the 250 MB baseline spread: the prior 100 MB/Mpx, the base covering both jobs
    # (330 - 100 x 0.04 = 326)
    small = _fake_run(tmp_path / "a", 100, {"terrain_dem.tsv": (15, 300)})
    large = _fake_run(tmp_path / "b", 200, {"terrain_dem.tsv": (30, 330)})
    cal, _ = _calibrate_module().calibrate([small, large])
    dem = cal.rules["terrain_dem"]
    assert (dem.mem_base_mb, dem.mem_mb_per_mpx) == pytest.approx((326.0, 100.0))
    assert dem.to_dict()["mem_slope_from"] == "prior"


def test_calibrate_script_bounds_a_flat_slope_over_a_long_range(tmp_path):
    # 1 and 64 Mpx, 300 and 320 MB: the rise of 20 MB is inside the 250 MB spread, but the prior
    # 100 MB/Mpx would have risen by 6,300 MB over that range: the slope is at most 250 / 63 MB/Mpx,
    # and that bound is used, the base covering both jobs (300 - 3.968 x 1 = 296.03)
    small = _fake_run(tmp_path / "a", 1000, {"terrain_dem.tsv": (15, 300)})
    large = _fake_run(tmp_path / "b", 8000, {"terrain_dem.tsv": (30, 320)})
    cal, _ = _calibrate_module().calibrate([small, large])
    dem = cal.rules["terrain_dem"]
    assert dem.mem_mb_per_mpx == pytest.approx(250.0 / 63.0)
    assert dem.mem_base_mb == pytest.approx(300.0 - 250.0 / 63.0)
    assert dem.mem_slope_from == "bound"
    # time: 15 s to 30 s is inside the 100 s spread; 60 s/Mpx would have shown: 100 / 63 s/Mpx
    assert (dem.time_s_per_mpx, dem.time_slope_from) == (pytest.approx(100.0 / 63.0), "bound")


def test_memory_excess_flags_exactly_the_jobs_over_their_mem_mb(tmp_path):
    # 1000 x 1000 px, 4 years, tiles of 512 px; every job gets JOB_PROCESS_MB (400) more for
    # Snakemake's process. terrain_dem gets 1.2 x (300 + 200 x 1) + 400 = 1000 MB;
    # greening_trend 1.2 x (300 + 200 x 4) + 400 = 1720 MB; a corner tile of terrain_derivatives
    # (its rule's model, 512 x 512 px without halo) 1.2 x (300 + 200 x 0.262144) = 423 -> 500 + 400 MB.
    run = _fake_run(
        tmp_path / "run",
        1000,
        {
            "terrain_dem.tsv": (1, 999.0),
            "greening_trend.tsv": (1, 1800.0),
            "tiles/r000c000/terrain_derivatives.tsv": (1, 880.0),
            "tiles/r001c001/terrain_derivatives.tsv": (1, 901.0),
        },
        tile_px=512,
    )
    cal = _calibration(terrain_dem=RULE_X, greening_trend=RULE_X, terrain_derivatives=RULE_X)
    jobs = benchmark_jobs(run, workflow_rule_names(run))
    assert sorted((j.rule, j.tile) for j in jobs) == [
        ("greening_trend", None),
        ("terrain_dem", None),
        ("terrain_derivatives_tile", "r000c000"),
        ("terrain_derivatives_tile", "r001c001"),
    ]
    excess = memory_excess(run, cal)
    assert sorted((job.rule, job.tile, mem) for job, mem in excess) == [
        ("greening_trend", None, 1720),
        ("terrain_derivatives_tile", "r001c001", 900),
    ]


def check_run_memory(workdir: Path) -> None:
    """Every job of the finished run in ``workdir`` stayed within the mem_mb the workflow's
    calibration gives it (the benchmark's max_rss against karstflow.resources.estimate)."""
    cal = load_calibration(ROOT / "workflow" / "resources.yaml")
    excess = memory_excess(workdir, cal)
    assert not excess, "jobs above their mem_mb: " + "; ".join(
        f"{job.path.relative_to(workdir)}: max_rss {job.max_rss_mb:.0f} MB > mem_mb {mem}" for job, mem in excess
    )


@pytest.mark.e2e
def test_demo_run_jobs_stay_within_their_mem_mb(demo_run):
    check_run_memory(demo_run)


# --- workflow/rules/functions/resources.smk (plain Python: run here with the workflow's globals) ---


def _resources_smk(tmp_path, monkeypatch, calibration: dict, tile_params=None):
    """The namespace resources.smk defines, given the workflow globals it reads (config,
    TILE_PX, region_years, parse_time_grid_px, demo_size_px, rules, workflow.basedir)."""
    from types import SimpleNamespace

    (tmp_path / "workflow").mkdir()
    (tmp_path / "workflow" / "resources.yaml").write_text(yaml.safe_dump(calibration))
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 3000, 3000))  # 100 x 100 px
    (tmp_path / "results" / "r").mkdir(parents=True)
    (tmp_path / "results" / "r" / "grid.json").write_text(json.dumps(grid.to_dict()))
    monkeypatch.chdir(tmp_path)
    namespace = {
        "workflow": SimpleNamespace(basedir=str(tmp_path)),
        "config": {
            "regions": {
                "r": {"years": {"first": 2000, "last": 2003}},
                "s": {"years": {"first": 2000, "last": 2000}, "demo": {"kind": "karst"}},
            }
        },
        "TILE_PX": {"r": 64, "s": None},
        "region_years": lambda region: list(range(region["years"]["first"], region["years"]["last"] + 1)),
        "parse_time_grid_px": lambda region: None,
        "demo_size_px": lambda region: 50,
        "rules": SimpleNamespace(x_tile=SimpleNamespace(params={"tile": tile_params})),
    }
    path = ROOT / "workflow" / "rules" / "functions" / "resources.smk"
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def test_resources_smk_callables(tmp_path, monkeypatch):
    cal = {
        "mem_safety": 1.0,
        "runtime_safety": 1.0,
        "rules": {
            "x": {"mem_base_mb": 1000, "mem_mb_per_mpx": 1e6, "time_base_s": 60, "time_s_per_mpx": 6000},
            "greening_trend": {"mem_base_mb": 1000, "mem_mb_per_mpx": 1e5, "time_base_s": 60, "time_s_per_mpx": 0},
        },
    }
    ns = _resources_smk(tmp_path, monkeypatch, cal, tile_params=lambda w: {"tile_px": 64, "halo_px": 2})
    from types import SimpleNamespace

    mem_mb, runtime = ns["mem_mb"], ns["runtime"]
    region = SimpleNamespace(region="r")
    # the grid from results/r/grid.json: 10,000 px = 0.01 Mpx: 1000 + 10,000 MB + 400; 60 + 60 s
    assert mem_mb("x")(region, 1) == 11400
    assert runtime("x")(region, 1) == 2
    assert mem_mb("x")(region, 2) == 22800 and runtime("x")(region, 3) == 6
    # a cube rule counts the region's 4 years: 1000 + 1e5 x 0.04, + 400 for Snakemake's process
    assert mem_mb("greening_trend")(region, 1) == 5400
    # a tile job (the inherited callable learns its own rule name): tile r001c001 is 36 x 36 px,
    # with the rule's 2 px halo 38 x 38 = 1,444 px
    tile = SimpleNamespace(region="r", tile="r001c001")
    assert mem_mb("x")(tile, 1, threads=1, rulename="x_tile") == 2844
    # before its grid exists: the demo size (50 x 50 px)
    assert mem_mb("x")(SimpleNamespace(region="s"), 1) == 3900
    # a job over every region collects: the base
    assert mem_mb("x")(SimpleNamespace(), 1) == 1400


def test_sacct_memory_figures_in_mb():
    from karstflow.resources import slurm_mb

    assert slurm_mb("473704K") == pytest.approx(473704 / 1024)
    assert (slurm_mb("4000M"), slurm_mb("4Gn"), slurm_mb("1.5G"), slurm_mb("2000"), slurm_mb("")) == (
        4000.0,
        4096.0,
        1536.0,
        2000.0,
        0.0,
    )
    with pytest.raises(ValueError, match="not a sacct memory figure"):
        slurm_mb("lots")
