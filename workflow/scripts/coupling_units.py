"""Entry script of rule coupling_units: the coupling indicators, scores and types per
township and per grid cell (karstflow.coupling_units, karstflow.coupling).

Population: per township from the population table when given (census figures are the
township's own), else the gridded series summed over the township's pixels; per cell from
the gridded series summed over the cell when given, else the township table distributed to
the cells by the area each cell shares with each township (areal weighting; a cell then
sees only township differences, which is recorded). Start and end are the first and last
year the population input has within the region's years.

Ecological layers whose stage does not run for the region are left out and recorded with
the reason (params ``not_evaluated``) in coupling_units.json, read by coupling_statistics.
"""

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from karstflow.coupling import FIVE_BANDS, TEN_BANDS
from karstflow.coupling_units import (
    INDICATOR_UNITS,
    add_coupling,
    cell_labels,
    cell_polygons,
    population_by_area,
    unit_indicators,
)
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, read_vector, write_csv, write_json, write_vector
from karstflow.runtime import run_script
from karstflow.tradeoffs import township_ids

log = logging.getLogger("karstflow.scripts.coupling_units")


def _read(grid, grid_source, path, dtype=np.float64):
    da = read_raster(path)
    grid.check(da, grid_source=grid_source, source=str(path))
    return np.asarray(da.values, dtype=dtype) if dtype is not None else np.asarray(da.values)


def _population_grid(path, grid, grid_source, years):
    """(first year, last year, first raster, last raster) of the gridded series within years."""
    with read_cube(path) as cube:
        grid.check(cube, grid_source=grid_source, source=str(path))
        have = [int(y) for y in cube["year"].values if years["first"] <= int(y) <= years["last"]]
        if len(have) < 2:
            raise ValueError(
                f"{path}, variable population: expected at least two years within the region's "
                f"{years['first']}..{years['last']}, found {have}"
            )
        first = np.asarray(cube["population"].sel(year=have[0]).values, dtype=np.float64)
        last = np.asarray(cube["population"].sel(year=have[-1]).values, dtype=np.float64)
    return have[0], have[-1], first, last


def _population_table(path, years):
    """Per township: start and end resident population and the last year's rural share."""
    table = pd.read_csv(path)
    table = table[(table["year"] >= years["first"]) & (table["year"] <= years["last"])]
    have = sorted(int(y) for y in table["year"].unique())
    if len(have) < 2:
        raise ValueError(f"{path}, column year: expected at least two years of the region's, found {have}")
    first, last = have[0], have[-1]
    by = table.set_index(["township_id", "year"])
    ids = sorted(int(t) for t in table["township_id"].unique())
    out = pd.DataFrame({"township_id": ids})
    out["population_start"] = [by["resident"].get((t, first), np.nan) for t in ids]
    out["population_end"] = [by["resident"].get((t, last), np.nan) for t in ids]
    if "rural_share" in table.columns and table["rural_share"].notna().any():
        out["rural_share"] = [by["rural_share"].get((t, last), np.nan) for t in ids]
    missing = out[out[["population_start", "population_end"]].isna().any(axis=1)]["township_id"].tolist()
    if missing:
        log.warning("%s: townships %s lack the first (%d) or last (%d) year", path, missing, first, last)
    return first, last, out


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    years = params.years
    area = grid.pixel_area_m2
    townships = read_vector(input.townships).to_crs(grid.crs)
    t_labels = township_ids(townships, grid.shape, grid.transform)
    t_ids = [int(i) for i in townships["township_id"]]
    c_labels, n_rows, n_cols = cell_labels(grid.shape, grid.resolution, params.cell_size_m)
    cells = cell_polygons(grid.bounds, params.cell_size_m, n_rows, n_cols, grid.crs)
    c_ids = cells["cell_id"].tolist()
    log.info("%d townships, %d cells of %g m", len(t_ids), len(c_ids), params.cell_size_m)

    layers = {"trend_slope": _read(grid, input.grid, input.trend_slope)}
    layers["trend_class"] = _read(grid, input.grid, input.trend_class, dtype=None)
    if "rd_first" in input:
        layers["rd_grades"] = (
            _read(grid, input.grid, input.rd_first, dtype=None),
            _read(grid, input.grid, input.rd_last, dtype=None),
        )
    if "npp_slope" in input:
        layers["npp_slope"] = _read(grid, input.grid, input.npp_slope)
    services = {}
    for key in input.keys():
        if key.startswith("service_") and key.endswith("_first"):
            name = key[len("service_") : -len("_first")]
            services[name] = (
                _read(grid, input.grid, input[key]),
                _read(grid, input.grid, input[f"service_{name}_last"]),
            )
    if services:
        layers["services"] = services
    if "zones" in input:
        layers["zones"] = _read(grid, input.grid, input.zones, dtype=None)
    if "slope" in input:
        layers["slope"] = _read(grid, input.grid, input.slope)
    reasons = dict(params.not_evaluated)
    layers["greening_classes"] = params.greening_classes
    layers["improvement_codes"] = params.improvement_codes

    pop_record = {}
    grid_pop = table_pop = None
    if "population" in input:
        g_first, g_last, p_first, p_last = _population_grid(input.population, grid, input.grid, years)
        grid_pop = (p_first, p_last)
        pop_record["grid"] = {"file": str(input.population), "first_year": g_first, "last_year": g_last}
    if "population_table" in input:
        tab_first, tab_last, table_pop = _population_table(input.population_table, years)
        pop_record["table"] = {"file": str(input.population_table), "first_year": tab_first, "last_year": tab_last}

    # townships: the table when given, else the grid summed per township
    if table_pop is not None:
        t_pop = table_pop.rename(columns={"township_id": "unit_id"})
        t_table, t_eval = unit_indicators(
            t_labels, t_ids, pixel_area_m2=area, population_table=t_pop, reasons=reasons, **layers
        )
        pop_record["townships_from"] = "table"
    else:
        t_table, t_eval = unit_indicators(
            t_labels, t_ids, pixel_area_m2=area, population=grid_pop, reasons=reasons, **layers
        )
        pop_record["townships_from"] = "grid"
    # cells: the grid when given, else the table distributed by area
    if grid_pop is not None:
        rural = None
        if table_pop is not None and "rural_share" in table_pop.columns:
            shares = _cell_table_population(cells, townships, table_pop)
            rural = shares.set_index("unit_id")["rural_share"].reindex(c_ids).to_numpy(dtype=float)
        c_table, c_eval = unit_indicators(
            c_labels, c_ids, pixel_area_m2=area, population=grid_pop, rural_share=rural, reasons=reasons, **layers
        )
        pop_record["cells_from"] = "grid (persons per pixel summed per cell)"
    else:
        c_pop = _cell_table_population(cells, townships, table_pop)
        c_table, c_eval = unit_indicators(
            c_labels, c_ids, pixel_area_m2=area, population_table=c_pop, reasons=reasons, **layers
        )
        pop_record["cells_from"] = (
            "township table distributed by area (uniform density within a township: cells see only "
            "township differences)"
        )

    edges, labels = TEN_BANDS if params.classes == "ten" else FIVE_BANDS
    coupling_kw = {
        "social": params.social,
        "ecological": params.ecological,
        "indicator_weights": params.indicator_weights,
        "a": params.weights["a"],
        "b": params.weights["b"],
        "edges": edges,
        "labels": labels,
        "pop_threshold": params.types["pop_threshold"],
        "greening_threshold": params.types["greening_threshold"],
    }
    t_out, t_rec = add_coupling(t_table, **coupling_kw)
    c_out, c_rec = add_coupling(c_table, **coupling_kw)

    t_out = t_out.rename(columns={"unit_id": "township_id"})
    if "township" in townships.columns:
        t_out.insert(1, "township", townships.set_index("township_id")["township"].reindex(t_ids).astype(str).values)
    c_out = c_out.rename(columns={"unit_id": "cell_id"})
    cells_out = gpd.GeoDataFrame(
        cells[["cell_id", "cell_row", "cell_col"]].merge(c_out, on="cell_id"),
        geometry=cells.geometry.values,
        crs=grid.crs,
    )
    record = {
        "years": dict(years),
        "population": pop_record,
        "cell_size_m": params.cell_size_m,
        "townships": {"n": len(t_out), "evaluation": t_eval, "coupling": t_rec},
        "cells": {"n": len(c_out), "evaluation": c_eval, "coupling": c_rec},
        "units": {k: v for k, v in INDICATOR_UNITS.items() if k in c_out.columns or k in t_out.columns},
        "classes": params.classes,
    }
    for group, rec in t_eval.items():
        if not rec["evaluated"]:
            log.warning("coupling: %s not evaluated: %s", group, rec["reason"])
    write_csv(t_out, output.townships, index=False)
    try:
        write_vector(cells_out, output.cells)
        write_json(record, output.record)
    except BaseException:
        for path in (output.townships, output.cells):
            from pathlib import Path

            Path(path).unlink(missing_ok=True)
        raise
    log.info("coupling townships:\n%s", t_out.to_string())


def _cell_table_population(cells, townships, table_pop):
    """The township table distributed to the cells by shared area."""
    inter = gpd.overlay(
        cells[["cell_id", "geometry"]], townships[["township_id", "geometry"]], how="intersection", keep_geom_type=True
    )
    overlap = pd.DataFrame(
        {
            "unit_id": inter["cell_id"].astype(int),
            "township_id": inter["township_id"].astype(int),
            "area_km2": inter.geometry.area / 1e6,
        }
    )
    t_area = {int(t): float(g.area / 1e6) for t, g in zip(townships["township_id"], townships.geometry, strict=True)}
    return population_by_area(overlap, table_pop, t_area)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
