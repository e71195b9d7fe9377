"""End-to-end: the ecosystem-services stage on the tiny karst demo.

The session's demo run (conftest ``karst_demo_run``) builds every stage; these
tests check the services' outputs against the results contract, recompute pixels by hand
from the workflow's own inputs, compare the services with what the demo planted, and run
the bad-input cases in copies of that run (only the failing rule reruns there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_raster, write_netcdf

pytestmark = pytest.mark.e2e

REGION = "demo-karst"
YEARS = (2000, 2023)
SERVICE_MAPS = ("carbon_storage", "soil_retention", "water_yield", "habitat_quality")


def res(workdir: Path, rel: str) -> Path:
    return workdir / "results" / REGION / rel


def demo(workdir: Path, rel: str) -> Path:
    return workdir / "resources" / "demo" / REGION / rel


def raster(workdir: Path, rel: str) -> np.ndarray:
    return np.asarray(read_raster(res(workdir, rel)).values, dtype=np.float64)


def test_outputs_follow_the_results_contract(karst_demo_run):
    run = karst_demo_run
    grid = RegionGrid.from_dict(json.loads(res(run, "grid.json").read_text()))
    for service in SERVICE_MAPS:
        for year in YEARS:
            da = read_raster(res(run, f"services/{service}_{year}.tif"))
            assert grid.matches(da), f"{service}_{year}.tif is not on the region grid"
            assert np.isfinite(da.values).mean() > 0.9
    table = pd.read_csv(res(run, "services/services.csv"))
    assert table["year"].tolist() == list(YEARS)
    for col in (
        "carbon_storage_total_mg_c",
        "soil_retention_total_t_yr",
        "water_yield_total_m3",
        "habitat_quality_mean_index",
    ):
        assert col in table.columns and table[col].notna().all()
    # the totals restate the maps: water yield in m3 = sum(mm) / 1000 * 900 m2
    wy = raster(run, "services/water_yield_2023.tif")
    assert table.loc[1, "water_yield_total_m3"] == pytest.approx(np.nansum(wy) / 1000 * 900.0, rel=1e-5)
    assert table.loc[1, "habitat_quality_mean_index"] == pytest.approx(
        np.nanmean(raster(run, "services/habitat_quality_2023.tif")), rel=1e-5
    )
    summary = json.loads(res(run, "summary.json").read_text())
    services = summary["services"]
    assert services["years"] == list(YEARS)
    assert services["by_year"]["2023"]["water_yield_total_m3"] == pytest.approx(table.loc[1, "water_yield_total_m3"])
    assert set(services["tradeoffs"]["pairs"]) == {
        "carbon_storage~soil_retention",
        "carbon_storage~water_yield",
        "carbon_storage~habitat_quality",
        "soil_retention~water_yield",
        "soil_retention~habitat_quality",
        "water_yield~habitat_quality",
    }
    # roads are a configured threat the karst demo has no layer for: the config drops it
    # explicitly (drop_threats), and it is reported, the weights normalised over the two left
    assert services["method"]["habitat_threats"] == {"cultivated": True, "built_up": True, "roads": False}
    # the factor means behind soil retention are collected from their own rule's JSON
    factors = json.loads(res(run, "services/soil_factors_2023.json").read_text())
    assert services["method"]["soil_factors"]["2023"] == factors
    assert set(services["method"]["soil_factors"]) == {str(y) for y in YEARS}
    record = json.loads(res(run, "services/habitat_threats_2023.json").read_text())
    assert record["weight_sum"] == pytest.approx(1.7)
    assert "drop_threats" in record["threats"]["roads"]["reason"]
    row = pd.read_csv(run / "results" / "summary.csv").set_index("region").loc[REGION]
    assert row["services.by_year.2000.carbon_storage_total_mg_c"] == pytest.approx(
        table.loc[0, "carbon_storage_total_mg_c"]
    )
    assert "services.improvement.improvement_area_ha" in row.index
    zones = read_raster(res(run, "services/improvement_zones.tif"), masked=False).values
    assert set(np.unique(zones)) <= {0, 1, 2, 3, 255}
    townships = pd.read_csv(res(run, "services/improvement_townships.csv"))
    assert townships["area_ha"].sum() == pytest.approx(80 * 80 * 0.09, rel=0.02)
    assert sorted(townships["rank"]) == list(range(1, len(townships) + 1)) or townships["rank"].min() == 1
    for rule in ("services_water_yield_2000", "services_summary", "services_ls_factor"):
        assert (run / "logs" / REGION / f"{rule}.log").stat().st_size > 0
    assert (run / "logs" / "benchmarks" / REGION / "services_summary.tsv").exists()


def test_carbon_storage_is_the_carbon_stage_map(karst_demo_run):
    run = karst_demo_run
    pools = pd.read_csv(demo(run, "carbon_pools.csv")).set_index("lucode")
    totals = pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1)
    carbon = json.loads(res(run, "carbon/carbon.json").read_text())
    table = pd.read_csv(res(run, "services/services.csv")).set_index("year")
    for year in YEARS:
        ours = raster(run, f"services/carbon_storage_{year}.tif")
        assert np.array_equal(ours, raster(run, f"carbon/carbon_storage_{year}.tif"), equal_nan=True)
        lc = read_raster(demo(run, f"landcover_{year}.tif")).values
        assert np.allclose(ours, totals.reindex(lc.ravel()).to_numpy().reshape(lc.shape))
        assert table.at[year, "carbon_storage_total_mg_c"] == pytest.approx(
            carbon["carbon_storage_total_mg_c"][str(year)]
        )


def test_water_yield_by_hand_from_the_inputs(karst_demo_run):
    run = karst_demo_run
    climate = read_cube(demo(run, "climate.nc"))
    soil = read_cube(demo(run, "soil.nc"))
    bio = pd.read_csv(demo(run, "biophysical.csv")).set_index("lucode")
    z = 5.0  # the config default
    for year in YEARS:
        lc = read_raster(demo(run, f"landcover_{year}.tif")).values
        wy = raster(run, f"services/water_yield_{year}.tif")
        # one pixel of every land-cover class present
        for code in np.unique(lc[np.isfinite(lc)]).astype(int):
            i, j = (int(v[0]) for v in np.nonzero(lc == code))
            p = float(climate["precipitation_mm"].sel(year=year).values[i, j])
            pet = float(bio.at[code, "kc"]) * float(climate["eto_mm"].sel(year=year).values[i, j])
            if bio.at[code, "lulc_veg"] == 1:
                awc = min(float(bio.at[code, "root_depth_mm"]), float(soil["soil_depth_mm"].values[i, j])) * float(
                    soil["pawc"].values[i, j]
                )
                w = min(z * awc / p + 1.25, 5.0)
                aet = p * min(pet / p, 1 + pet / p - (1 + (pet / p) ** w) ** (1 / w))
            else:
                aet = min(pet, p)
            assert wy[i, j] == pytest.approx(p - aet, rel=1e-5), f"class {code} at {(i, j)} in {year}"


def _monthly_r(precip_months: np.ndarray) -> float:
    """Wischmeier & Smith's monthly form (the default R), US units x 17.02 to SI."""
    total = precip_months.sum()
    return 17.02 * sum(1.735 * 10 ** (1.5 * np.log10(p * p / total) - 0.8188) for p in precip_months if p > 0)


def test_soil_retention_by_hand_from_the_inputs(karst_demo_run):
    run = karst_demo_run
    monthly = read_cube(res(run, "climate/climate_monthly.nc"))
    months = monthly["precipitation_mm"].isel(time=np.nonzero(monthly["time"].dt.year.values == YEARS[-1])[0])
    assert months.sizes["time"] == 12 and monthly["precipitation_mm"].attrs["units"] == "mm month-1"
    soil = read_cube(demo(run, "soil.nc"))
    bio = pd.read_csv(demo(run, "biophysical.csv")).set_index("lucode")
    ls = raster(run, "services/ls_factor.tif")
    year = YEARS[-1]
    lc = read_raster(demo(run, f"landcover_{year}.tif")).values
    retention = raster(run, f"services/soil_retention_{year}.tif")
    loss = raster(run, f"services/soil_loss_{year}.tif")
    assert np.isnan(retention[np.isin(lc, (7, 8))]).all()  # water and built-up: no soil service
    for code in (1, 2, 5, 9):
        i, j = (int(v[0]) for v in np.nonzero(lc == code))
        r = _monthly_r(np.asarray(months.values[:, i, j], dtype=np.float64))
        san, sil, cla, oc = (
            float(soil[v].values[i, j]) for v in ("sand_pct", "silt_pct", "clay_pct", "organic_carbon_pct")
        )
        sn1 = 1 - san / 100
        k = (
            (0.2 + 0.3 * np.exp(-0.0256 * san * (1 - sil / 100)))
            * (sil / (cla + sil)) ** 0.3
            * (1 - 0.25 * oc / (oc + np.exp(3.72 - 2.95 * oc)))
            * (1 - 0.7 * sn1 / (sn1 + np.exp(-5.51 + 22.9 * sn1)))
            * 0.1317
        )
        cp = float(bio.at[code, "usle_c"]) * float(bio.at[code, "usle_p"])
        potential = r * k * ls[i, j]
        assert loss[i, j] == pytest.approx(potential * cp, rel=1e-4)
        assert retention[i, j] == pytest.approx(potential * (1 - cp), rel=1e-4)


def test_habitat_quality_follows_the_half_saturation_function(karst_demo_run):
    run = karst_demo_run
    d = {y: raster(run, f"services/habitat_degradation_{y}.tif") for y in YEARS}
    k = max(np.nanmax(v) for v in d.values()) / 2  # half_saturation: auto
    summary = json.loads(res(run, "services/services.json").read_text())
    assert summary["method"]["habitat_half_saturation"] == pytest.approx(k, rel=1e-6)
    suitability = {1: 0.4, 2: 1.0, 3: 0.9, 4: 0.8, 5: 0.8, 6: 0.7, 7: 0.7, 8: 0.0, 9: 0.1}  # config defaults
    for year in YEARS:
        lc = read_raster(demo(run, f"landcover_{year}.tif")).values
        h = np.vectorize(suitability.get)(lc.astype(int))
        q = raster(run, f"services/habitat_quality_{year}.tif")
        expected = h * (1 - d[year] ** 2.5 / (d[year] ** 2.5 + k**2.5))
        assert np.allclose(q, expected, rtol=1e-5, atol=1e-6)
        # the degradation falls with the distance from built-up land, which has D = 0 itself
        # (sensitivity 0) but a 1-pixel neighbour of built-up land is degraded more than the mean
        built = lc == 8
        from scipy import ndimage

        ring = ndimage.binary_dilation(built) & ~built & (lc != 1)
        assert np.nanmean(d[year][ring]) > np.nanmean(d[year][~built])


def test_services_follow_the_planted_land_cover_change(karst_demo_run):
    run = karst_demo_run
    zones = read_raster(demo(run, "trend_zones_truth.tif"), masked=False).values  # 0 stable, 1 greening, 2 browning
    lc0 = read_raster(demo(run, "landcover_2000.tif")).values
    lc1 = read_raster(demo(run, "landcover_2023.tif")).values
    changed = lc0 != lc1
    dc = raster(run, "services/carbon_storage_2023.tif") - raster(run, "services/carbon_storage_2000.tif")
    dq = raster(run, "services/habitat_quality_2023.tif") - raster(run, "services/habitat_quality_2000.tif")
    greening, browning = (zones == 1) & changed, (zones == 2) & changed
    assert greening.sum() > 100 and browning.sum() > 20
    # restoration and afforestation raise carbon storage; degradation and urban growth lower it
    assert dc[greening].mean() > 10.0 and (dc[greening] > 0).mean() > 0.9
    assert dc[browning].mean() < 0
    assert np.all(dc[~changed] == 0)  # carbon storage follows land cover alone
    # habitat quality rises where land was restored and falls where it was built on or degraded
    assert np.nanmean(dq[greening]) > np.nanmean(dq[browning])
    trade = pd.read_csv(res(run, "services/tradeoffs.csv")).set_index(["service_a", "service_b"])
    # restoration raises vegetation water use: carbon gains come with water-yield losses
    # (the karst trade-off between carbon sequestration and water yield)
    assert trade.loc[("carbon_storage", "water_yield"), "rho"] < 0
    assert trade.loc[("carbon_storage", "water_yield"), "relation"] == "trade-off"


def test_changing_z_reruns_only_water_yield_and_what_follows(karst_demo_run, workflow_runner, tmp_path):
    extra = tmp_path / "z.yaml"  # --config would pass the nested 8 as a string
    extra.write_text("services:\n  water_yield:\n    z: 8\n")
    plan = workflow_runner.plan(karst_demo_run, "--configfile", "config/config.yaml", str(extra))
    plan.pop("all", None)  # the default target is listed whenever anything reruns
    assert plan == {
        "services_water_yield": 2,
        "services_summary": 1,
        "report_maps": 1,
        # the coupling tables read the service maps (water yield change per township and cell)
        "coupling_units": 1,
        "coupling_statistics": 1,
        "region_summary": 1,
        "summary_table": 1,
    }


# --------------------------------------------------------------------------------------
# bad input: each case in a copy of the run, where only the rule reading the input reruns
# --------------------------------------------------------------------------------------
# (a lucode table missing a code and a climate variable out of its range are input checks
# now, in the inputs rules: tests/test_bad_inputs.py has those cases)


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _fails_without_output(workflow_runner, workdir: Path, target: str, log: str, *expected: str) -> None:
    out = workdir / target
    out.unlink()
    proc = workflow_runner.run(workdir, target, check=False)
    assert proc.returncode != 0
    text = (workdir / "logs" / REGION / log).read_text()
    for phrase in expected:
        assert phrase in text, f"{phrase!r} not in {log}:\n{text[-2000:]}"
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "a temporary file was left behind"


def _edit_climate(workdir: Path, variable: str, value: float) -> None:
    path = demo(workdir, "climate.nc")
    ds = read_cube(path).load()
    da = ds[variable].values.copy()
    da[ds["year"].values == 2000, 10:12, 20:23] = value  # 6 pixels of 2000
    ds[variable] = (ds[variable].dims, da, ds[variable].attrs)
    ds.close()
    write_netcdf(ds, path)


def test_zero_precipitation_fails_naming_file_and_pixels(karst_demo_run, workflow_runner, tmp_path):
    workdir = _copy_run(karst_demo_run, tmp_path / "run")
    _edit_climate(workdir, "precipitation_mm", 0.0)
    _fails_without_output(
        workflow_runner,
        workdir,
        f"results/{REGION}/services/water_yield_2000.tif",
        "services_water_yield_2000.log",
        "climate.nc: precipitation_mm 2000: expected values > 0",
        "found 6 of",
    )


# --------------------------------------------------------------------------------------
# configuration the karst demo cannot honour stops before anything runs, naming the key
# (a threat without its layer: tests/test_services.py, the degradation script)
# --------------------------------------------------------------------------------------


def _dry_run_error(workflow_runner, tmp_path: Path, edit, target: str) -> str:
    workdir = workflow_runner.copy(tmp_path / "wf", edit)
    proc = workflow_runner.run(workdir, "--dry-run", target, check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    return proc.stdout + proc.stderr


def test_monthly_erosivity_without_monthly_climate_stops_naming_the_key(workflow_runner, tmp_path):
    def annual_only(config):
        config["regions"] = {REGION: config["regions"][REGION]}
        config["regions"][REGION]["inputs"].pop("climate_monthly", None)
        if "time_step" in config.get("carbon", {}):
            config["carbon"]["time_step"] = "annual"  # monthly CASA would stop first

    text = _dry_run_error(workflow_runner, tmp_path, annual_only, f"results/{REGION}/services/soil_retention_2023.tif")
    assert "config key services.soil_conservation.r_factor.method: wischmeier_smith_monthly needs the monthly" in text
