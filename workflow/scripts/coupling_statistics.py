"""Entry script of rule coupling_statistics: spatial statistics of the coupling tables.

On the cells (and on the townships when there are at least params ``min_units``): global
Moran's I of every indicator (karstflow.coupling.moran_table); on the cells the OLS with
the Lagrange-multiplier tests and the spatial lag or error model they choose (Anselin 2005;
karstflow.coupling.spatial_regression), GWR (karstflow.coupling.gwr) and, when configured,
local Moran's I. Writes coupling_statistics.json (everything, with the statement that these
are associations, not causes), coupling.json (the headline figures of summary.json) and
three figures: coupling types, GWR local coefficients, Moran scatter plots.
"""

import logging

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from karstflow.coupling import COUPLING_TYPES, gwr, local_moran, moran_table, spatial_regression, spatial_weights
from karstflow.io import read_json, read_vector, write_json
from karstflow.plotting import finish_map, map_figure, note_figure, save_figure
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.coupling_statistics")

CAVEAT = (
    "These statistics measure association across space, not cause: a unit that lost people and "
    "greened may have greened for reasons the model does not see (afforestation programmes, climate, "
    "abandonment of steep farmland that itself follows outmigration)."
)
NOT_INDICATORS = {"cell_id", "cell_row", "cell_col", "township_id", "township", "D_class", "coupling_type", "C", "T"}
TYPE_COLOURS = {
    "depopulating-greening": "#1a9641",
    "depopulating-stagnant": "#a6d96a",
    "depopulating-degrading": "#fdae61",
    "stable-greening": "#66bd63",
    "stable-stagnant": "#d9d9d9",
    "stable-degrading": "#f46d43",
    "growing-greening": "#3288bd",
    "growing-stagnant": "#abd9e9",
    "growing-degrading": "#d7191c",
}


def _usable_columns(df, columns):
    """Numeric, complete columns with variance; the others with the reason."""
    use, dropped = [], {}
    for col in columns:
        if col not in df.columns:
            dropped[col] = "not evaluated (its input is missing)"
            continue
        if not pd.api.types.is_numeric_dtype(df[col]):
            dropped[col] = "not numeric"
            continue
        v = df[col].to_numpy(dtype=float)
        if np.isnan(v).any():
            dropped[col] = f"missing in {int(np.isnan(v).sum())} of {len(v)} units"
        elif np.ptp(v) == 0:
            dropped[col] = "no variance between units"
        else:
            use.append(col)
    return use, dropped


def _indicators(df):
    return [
        c for c in df.columns if c not in NOT_INDICATORS and c != "geometry" and pd.api.types.is_numeric_dtype(df[c])
    ]


def _moran(gdf, w, params):
    use, dropped = _usable_columns(gdf, _indicators(gdf))
    table = moran_table(gdf, use, w, permutations=params.permutations, seed=params.seed)
    rows = {v: {k: (float(x) if k != "n" else int(x)) for k, x in r.items()} for v, r in table.iterrows()}
    return {"evaluated": True, "variables": rows, "not_evaluated": dropped}


def _coef_records(table):
    return {str(t): {k: float(v) for k, v in row.items()} for t, row in table.iterrows()}


def main(input, output, params, wildcards, threads=1) -> None:
    cells = read_vector(input.cells)
    record = read_json(input.record)
    t_table = pd.read_csv(input.townships_table)
    townships = read_vector(input.townships).to_crs(cells.crs)
    t_gdf = gpd.GeoDataFrame(
        t_table.merge(townships[["township_id", "geometry"]], on="township_id"), geometry="geometry", crs=cells.crs
    )
    alpha = params.alpha
    sw = params.spatial_weights
    stats = {"caveat": CAVEAT, "alpha": alpha, "spatial_weights": dict(sw), "levels": {}}
    w_cells = None

    for level, gdf in (("cells", cells), ("townships", t_gdf)):
        if len(gdf) < params.min_units:
            reason = f"{len(gdf)} {level}, fewer than coupling.min_units ({params.min_units})"
            stats["levels"][level] = {"n": len(gdf), "evaluated": False, "reason": reason}
            log.warning("coupling statistics on %s not evaluated: %s", level, reason)
            continue
        w = spatial_weights(gdf, kind=sw["kind"], k=min(sw["k"], len(gdf) - 1))
        stats["levels"][level] = {"n": len(gdf), "evaluated": True, "moran": _moran(gdf, w, params)}
        if level == "cells":
            w_cells = w

    reg_params = params.regression
    y = reg_params["dependent"]
    x_cols, x_dropped = _usable_columns(cells, list(reg_params["explanatory"]))
    y_ok, y_dropped = _usable_columns(cells, [y])
    regression = {"dependent": y, "explanatory": x_cols, "not_evaluated": {**y_dropped, **x_dropped}}
    gwr_record = {"evaluated": False}
    lisa = None
    result = gwr_result = None
    cells_level = stats["levels"]["cells"]
    if not cells_level["evaluated"]:
        regression.update(evaluated=False, reason=cells_level["reason"])
        gwr_record["reason"] = cells_level["reason"]
    elif not y_ok or not x_cols:
        reason = f"dependent {y!r} or every explanatory column unusable: {regression['not_evaluated']}"
        regression.update(evaluated=False, reason=reason)
        gwr_record["reason"] = reason
    elif len(cells) <= len(x_cols) + 3:
        reason = f"{len(cells)} cells for {len(x_cols) + 1} regressors"
        regression.update(evaluated=False, reason=reason)
        gwr_record["reason"] = reason
    else:
        result = spatial_regression(cells, y, x_cols, w_cells, alpha=alpha)
        regression.update(
            evaluated=True,
            model=result.model,
            reason=result.reason,
            lm_tests=_coef_records(result.lm_tests),
            coefficients=_coef_records(result.coefficients),
            ols_coefficients=_coef_records(result.ols_coefficients),
            spatial_parameter=result.spatial_parameter,
            ols_residual_moran=result.ols_residual_moran,
            fit=result.fit,
            confidence_level=1.0 - alpha,
        )
        if params.gwr:
            gwr_result = gwr(cells, y, x_cols, alpha=alpha, n_jobs=1)
            local = gwr_result.local
            gwr_record = {
                "evaluated": True,
                "bandwidth": gwr_result.bandwidth,
                "bandwidth_units": "nearest neighbours (adaptive bisquare kernel)",
                "summary": gwr_result.summary,
                "local_coefficients": {
                    term: {
                        "min": float(local[f"{term}_coef"].min()),
                        "median": float(local[f"{term}_coef"].median()),
                        "max": float(local[f"{term}_coef"].max()),
                        "significant_share": float(local[f"{term}_significant"].mean()),
                    }
                    for term in ["CONSTANT", *x_cols]
                },
            }
        else:
            gwr_record = {"evaluated": False, "reason": "config coupling.gwr: false"}
    stats["regression"] = regression
    stats["gwr"] = gwr_record
    if params.local_moran and cells_level["evaluated"]:
        lisa = {}
        for col in _usable_columns(cells, [y, "population_rate"])[0]:
            lm = local_moran(
                cells, col, w_cells, permutations=max(params.permutations, 1), alpha=alpha, seed=params.seed
            )
            lisa[col] = {str(k): int(v) for k, v in lm["cluster"].value_counts().items()}
        stats["local_moran"] = {"evaluated": True, "clusters": lisa}
    else:
        stats["local_moran"] = {
            "evaluated": False,
            "reason": "config coupling.local_moran: false" if not params.local_moran else "cells not evaluated",
        }
    stats["units"] = record

    summary = _summary(record, stats, t_table, cells)
    region = wildcards.region
    figures = {
        output.types_map: _types_map(cells, townships, region, record),
        output.gwr_map: _gwr_map(cells, townships, gwr_result, x_cols, region, gwr_record),
        output.moran_scatter: _moran_scatter(cells, w_cells, y, result, region),
    }
    written = []
    try:
        write_json(stats, output.statistics)
        written.append(output.statistics)
        write_json(summary, output.summary)
        written.append(output.summary)
        for path, fig in figures.items():
            save_figure(fig, path)
            written.append(path)
    except BaseException:
        from pathlib import Path

        for path in written:
            Path(path).unlink(missing_ok=True)
        raise
    finally:
        for fig in figures.values():
            plt.close(fig)
    log.info("coupling statistics: %s", summary)


def _summary(record, stats, t_table, cells):
    reg = stats["regression"]
    out = {
        "townships": len(t_table),
        "cells": len(cells),
        "cell_size_m": record["cell_size_m"],
        "population_from": {
            "townships": record["population"].get("townships_from"),
            "cells": record["population"].get("cells_from"),
        },
        "townships_D_mean": float(t_table["D"].mean()) if "D" in t_table and t_table["D"].notna().any() else None,
        "cells_D_mean": float(cells["D"].mean()) if "D" in cells and cells["D"].notna().any() else None,
        "township_types": {str(k): int(v) for k, v in t_table["coupling_type"].value_counts().items()}
        if "coupling_type" in t_table
        else {},
        "cell_types": {str(k): int(v) for k, v in cells["coupling_type"].value_counts().items()}
        if "coupling_type" in cells
        else {},
        "not_evaluated": {g: r["reason"] for g, r in record["townships"]["evaluation"].items() if not r["evaluated"]},
        "regression": {"evaluated": reg.get("evaluated", False)},
        "caveat": "association, not cause",
    }
    if reg.get("evaluated"):
        term = reg["explanatory"][0]
        coef = reg["coefficients"][term]
        out["regression"] = {
            "evaluated": True,
            "model": reg["model"],
            "dependent": reg["dependent"],
            "term": term,
            "estimate": coef["estimate"],
            "ci_low": coef["ci_low"],
            "ci_high": coef["ci_high"],
            "ols_residual_moran_i": reg["ols_residual_moran"]["I"],
            "ols_residual_moran_p": reg["ols_residual_moran"]["p"],
        }
    if stats["gwr"].get("evaluated"):
        out["gwr_bandwidth"] = stats["gwr"]["bandwidth"]
    if "improvement_zone_share" in t_table and "coupling_type" in t_table:
        # each coupling type's mean share of improvement zones: the social setting of the zones
        out["improvement_zone_share_by_type"] = {
            str(k): float(v) for k, v in t_table.groupby("coupling_type")["improvement_zone_share"].mean().items()
        }
    return out


def _outline(ax, townships):
    townships.boundary.plot(ax=ax, color="black", linewidth=1.0)


def _types_map(cells, townships, region, record):
    if "coupling_type" not in cells or cells["coupling_type"].isna().all():
        reason = record["cells"]["coupling"]["coupling_types"].get("reason", "not evaluated")
        return note_figure(f"coupling types not evaluated: {reason}", title=f"{region}: coupling types")
    fig, ax = map_figure(cells.total_bounds, title=f"{region}: coupling types of the cells (townships outlined)")
    present = [t for t in COUPLING_TYPES if (cells["coupling_type"] == t).any()]
    for t in present:
        cells[cells["coupling_type"] == t].plot(ax=ax, color=TYPE_COLOURS[t], edgecolor="0.6", linewidth=0.3)
    _outline(ax, townships)
    finish_map(ax, {t: TYPE_COLOURS[t] for t in present}, legend_title="population-vegetation trend")
    return fig


def _gwr_map(cells, townships, gwr_result, x_cols, region, record):
    if gwr_result is None:
        return note_figure(f"GWR not evaluated: {record.get('reason')}", title=f"{region}: GWR local coefficients")
    term = x_cols[0]
    values = gwr_result.local[f"{term}_coef"].to_numpy()
    sig = gwr_result.local[f"{term}_significant"].to_numpy()
    fig, ax = map_figure(cells.total_bounds, title=f"{region}: GWR local coefficient of {term}")
    lim = float(np.nanmax(np.abs(values))) or 1.0
    plotted = cells.assign(coef=values)
    plotted.plot(ax=ax, column="coef", cmap="RdBu_r", vmin=-lim, vmax=lim, edgecolor="0.7", linewidth=0.3)
    if sig.any():
        plotted[sig].boundary.plot(ax=ax, color="black", linewidth=1.2)
    _outline(ax, townships)
    sm = plt.cm.ScalarMappable(cmap="RdBu_r", norm=plt.Normalize(-lim, lim))
    fig.colorbar(sm, ax=ax, fraction=0.04, pad=0.02, label=f"local coefficient of {term}")
    finish_map(
        ax,
        {"significant (corrected t)": {"facecolor": "none", "edgecolor": "black", "linewidth": 1.2}},
        legend_title=f"bandwidth {gwr_result.bandwidth:g} neighbours",
    )
    return fig


def _moran_scatter(cells, w, y, result, region):
    if w is None or y not in cells:
        return note_figure("Moran scatter plot not evaluated (too few cells)", title=f"{region}: Moran scatter")
    series = {f"{y}": cells[y].to_numpy(dtype=float)}
    if result is not None:
        b = result.ols_coefficients["estimate"].to_numpy()
        x = np.column_stack(
            [np.ones(len(cells)), *[cells[c].to_numpy(dtype=float) for c in result.coefficients.index[1 : len(b)]]]
        )
        series["OLS residuals"] = cells[y].to_numpy(dtype=float) - x @ b
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 4.0), squeeze=False)
    sparse = w.sparse
    for ax, (name, v) in zip(axes[0], series.items(), strict=True):
        z = (v - v.mean()) / v.std()
        lag = sparse @ z
        slope = float(z @ lag / (z @ z))
        ax.scatter(z, lag, s=10, color="#3182bd", alpha=0.7)
        grid = np.linspace(z.min(), z.max(), 2)
        ax.plot(grid, slope * grid, color="#d7191c", lw=1.2, label=f"Moran's I = {slope:.3f}")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.set_xlabel(f"{name} (standardised)")
        ax.set_ylabel("spatial lag")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{region}: Moran scatter plots of the cells", fontsize=10)
    fig.tight_layout()
    return fig


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
