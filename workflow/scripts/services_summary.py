"""Entry script of rule services_summary: totals, changes, trade-offs and improvement zones.

Works over whatever the region has (workflow/rules/services.smk): any non-empty subset
of the four service maps (params ``services``), one or more service years, slope only
when the terrain stage runs, habitat threat records only when habitat quality runs,
townships when given. What cannot be evaluated is logged at WARNING and recorded, with
its reason, under ``evaluation`` in services.json (see
:func:`karstflow.tradeoffs.evaluation_scope`); every output is still written (empty
tables with their header, a centred note in a figure with nothing to draw, an all-nodata
zone map when no pixel can be scored). Nothing is written until everything is computed,
and outputs already written are removed if a later write fails.
"""

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_csv, write_json, write_raster
from karstflow.plotting import change_bars, save_figure, tradeoff_heatmap
from karstflow.runtime import run_script
from karstflow.tradeoffs import (
    SERVICES,
    TRADEOFF_COLUMNS,
    ZONE_NAMES,
    ZONE_NODATA,
    evaluation_scope,
    improvement_zones,
    service_changes,
    service_totals,
    township_ids,
    township_summary,
    tradeoff_matrix,
)

log = logging.getLogger("karstflow.scripts.services_summary")

#: Figure labels of the change bars: label -> (service, figure name in services_change.csv).
CHANGE_LABELS = {
    "carbon storage (Mg C)": ("carbon_storage", "carbon_storage_total_mg_c"),
    "soil retention (t/yr)": ("soil_retention", "soil_retention_total_t_yr"),
    "water yield (m3)": ("water_yield", "water_yield_total_m3"),
    "habitat quality (mean)": ("habitat_quality", "habitat_quality_mean_index"),
}


def _read_on_grid(grid, grid_source, path, dtype=np.float64):
    da = read_raster(path)
    grid.check(da, grid_source=grid_source, source=str(path))
    return np.asarray(da.values, dtype=dtype)


def _write_all(steps):
    """Run the writers ``(path, write)`` in order; on an error remove what was written."""
    done = []
    try:
        for path, write in steps:
            write()
            done.append(Path(path))
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        raise


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    years = [int(y) for y in params.years]
    if years != sorted(set(years)):
        raise ValueError(f"params years must be ascending and unique (the order of input threats), found {years}")
    services = [s for s in SERVICES if s in params.services]
    scope = evaluation_scope(list(params.services), years, slope="slope" in input)
    unlisted = sorted(k for k in input if any(k.startswith(f"{s}_") for s in SERVICES if s not in services))
    if unlisted:
        raise ValueError(f"inputs {unlisted} are maps of services that params services ({services}) does not list")
    for s, rec in scope["services"].items():
        if not rec["evaluated"]:
            log.warning("service %s not evaluated: %s", s, rec["reason"])
    area = grid.pixel_area_m2
    maps = {}
    for year in years:
        maps[year] = {}
        for service in services:
            key = f"{service}_{year}"
            if key not in input:
                raise ValueError(f"params services lists {service}, but there is no input {key!r}")
            maps[year][service] = _read_on_grid(grid, input.grid, input[key])
    first, last = years[0], years[-1]
    totals = service_totals(maps, pixel_area_m2=area)
    changes = service_changes(totals)
    if not scope["change"]["evaluated"]:
        log.warning("service changes %s", scope["change"]["reason"])
    if scope["tradeoffs"]["evaluated"]:
        deltas = {s: maps[last][s] - maps[first][s] for s in services}
        tradeoffs = tradeoff_matrix(deltas, alpha=params.alpha)
    else:
        tradeoffs = pd.DataFrame(columns=list(TRADEOFF_COLUMNS))
        log.warning("trade-offs %s (services: %s)", scope["tradeoffs"]["reason"], services)

    imp = params.improvement
    landcover = _read_on_grid(grid, input.grid, input[f"landcover_{last}"], dtype=None)
    if scope["steep_cropland"]["evaluated"]:
        slope = _read_on_grid(grid, input.grid, input.slope)
    else:
        slope = None
        log.warning(
            "improvement zones: steep-cropland criterion %s; cropland counts as not improvable",
            scope["steep_cropland"]["reason"],
        )
    first_priority = scope["first_priority"]["evaluated"]
    if not first_priority:
        log.warning(
            "improvement zones: first-priority zones (services declined) %s; low and improvable pixels "
            "are improvement zones",
            scope["first_priority"]["reason"],
        )
    zones, score = improvement_zones(
        maps[last],
        maps[first] if first_priority else None,
        landcover,
        slope,
        improvable_codes=imp["improvable_classes"],
        steep_cropland_codes=imp["steep_cropland_classes"],
        steep_slope_deg=imp["steep_cropland_slope_deg"],
        low_quantile=imp["low_quantile"],
        decline_share=imp["decline_share"],
        weights=imp["weights"],
    )
    valid = zones != ZONE_NODATA
    if valid.any():
        scope["improvement_zones"] = {"evaluated": True}
    else:
        reason = "not evaluated: no pixel has both a service value and a land-cover class"
        scope["improvement_zones"] = {"evaluated": False, "reason": reason}
        log.warning("improvement zones %s; improvement_zones.tif is all nodata", reason)

    if "townships" in input:
        townships = read_vector(input.townships).to_crs(grid.crs)
        ids = township_ids(townships, grid.shape, grid.transform)
        by_township = township_summary(
            ids,
            townships.drop(columns="geometry"),
            zones,
            score,
            maps[last],
            pixel_area_m2=area,
            first_priority=first_priority,
        )
        township_figures = {
            "evaluated": True,
            "townships": len(by_township),
            "highest_improvement_share": by_township.iloc[0][["township_id", "improvement_share"]].to_dict()
            if len(by_township)
            else None,
        }
        if "township" in by_township.columns and len(by_township):
            township_figures["highest_improvement_share"]["township"] = str(by_township.iloc[0]["township"])
    else:
        by_township = pd.DataFrame(
            columns=[
                "township_id",
                "area_ha",
                "improvement_zone_area_ha",
                "improvement_share",
                "rank",
            ]
        )
        township_figures = {"evaluated": False, "reason": "the region has no townships input"}
        log.warning("township summary not evaluated: the region has no townships input")

    px_ha = area / 1e4
    if "habitat_quality" in services:
        if "threats" not in input:
            raise ValueError("habitat_quality is among the services, but there is no input 'threats'")
        threat_paths = [input.threats] if isinstance(input.threats, str) else list(input.threats)
        threat_records = {int(y): read_json(path) for y, path in zip(years, threat_paths, strict=True)}
        k = params.half_saturation
        if k == "auto":
            k = max(r["degradation_max"] for r in threat_records.values()) / 2.0
        habitat_threats = {name: rec["evaluated"] for name, rec in threat_records[last]["threats"].items()}
    else:
        k = habitat_threats = None
    soil = "soil_retention" in services
    soil_factors = None
    if soil and "soil_factors" in input:
        # the region means of R, K, LS, C and P behind each year's soil retention
        factor_paths = [input.soil_factors] if isinstance(input.soil_factors, str) else list(input.soil_factors)
        soil_factors = {str(y): read_json(path) for y, path in zip(years, factor_paths, strict=True)}
    zone_area_ha = {ZONE_NAMES[c]: float((zones == c).sum() * px_ha) for c in ZONE_NAMES}
    if not first_priority:
        zone_area_ha[ZONE_NAMES[3]] = None
    summary = {
        "years": years,
        "by_year": {
            str(int(row["year"])): {c: row[c] for c in totals.columns if c != "year"} for _, row in totals.iterrows()
        },
        "change": {
            f"{int(r['from_year'])}-{int(r['to_year'])}": {
                c: r[c] for c in changes.columns if c not in ("from_year", "to_year")
            }
            for _, r in changes.iterrows()
        },
        "tradeoffs": {
            "from_year": first if scope["change"]["evaluated"] else None,
            "to_year": last if scope["change"]["evaluated"] else None,
            "alpha": params.alpha,
            "n_pixels": int(tradeoffs["n_pixels"].iloc[0]) if len(tradeoffs) else 0,
            "pairs": {
                f"{r.service_a}~{r.service_b}": {
                    "rho": r.rho,
                    "p_value": r.p_value,
                    "relation": r.relation,
                }
                for r in tradeoffs.itertuples()
            },
            "synergies": int((tradeoffs["relation"] == "synergy").sum()),
            "trade_offs": int((tradeoffs["relation"] == "trade-off").sum()),
        },
        "improvement": {
            "year": last,
            "zone_area_ha": zone_area_ha,
            "improvement_area_ha": float(np.isin(zones, (2, 3)).sum() * px_ha),
            "improvement_share": float(np.isin(zones, (2, 3)).sum() / valid.sum()) if valid.any() else float("nan"),
            "first_priority_area_ha": float((zones == 3).sum() * px_ha) if first_priority else None,
            "low_quantile": imp["low_quantile"],
            "townships": township_figures,
        },
        "method": {
            "water_yield_z": params.water_yield_z if "water_yield" in services else None,
            "climate": params.climate if soil or "water_yield" in services else None,
            "r_factor": params.r_factor_method if soil else None,
            "cover_factor": params.cover_factor if soil else None,
            "soil_factors": soil_factors,
            "habitat_half_saturation": k,
            "habitat_threats": habitat_threats,
        },
        "evaluation": scope,
    }

    region = wildcards.region
    period = f"{first}-{last}" if scope["change"]["evaluated"] else str(last)
    tradeoff_fig = tradeoff_heatmap(
        tradeoffs,
        alpha=params.alpha,
        title=f"{region}: trade-offs and synergies, {period}",
        note=scope["tradeoffs"].get("reason"),
    )
    if len(changes):
        last_change = changes.iloc[-1]
        labels = {label: col for label, (s, col) in CHANGE_LABELS.items() if s in services}
        change_title = (
            f"{region}: change of the services, {int(last_change['from_year'])}-{int(last_change['to_year'])}"
        )
    else:
        last_change, labels = None, {}
        change_title = f"{region}: change of the services, {period}"
    change_fig = change_bars(last_change, labels, title=change_title, note=scope["change"].get("reason"))

    try:
        _write_all(
            [
                (
                    output.zones,
                    lambda: write_raster(
                        grid.data_array(zones, name="improvement_zones"),
                        output.zones,
                        dtype="uint8",
                        nodata=ZONE_NODATA,
                    ),
                ),
                (output.table, lambda: write_csv(totals, output.table, index=False)),
                (output.changes, lambda: write_csv(changes, output.changes, index=False)),
                (output.tradeoffs, lambda: write_csv(tradeoffs, output.tradeoffs, index=False)),
                (output.townships, lambda: write_csv(by_township, output.townships, index=False)),
                (output.summary, lambda: write_json(summary, output.summary)),
                (output.tradeoff_figure, lambda: save_figure(tradeoff_fig, output.tradeoff_figure)),
                (output.change_figure, lambda: save_figure(change_fig, output.change_figure)),
            ]
        )
    finally:  # save_figure closes a figure it writes; close both if a write failed first
        plt.close(tradeoff_fig)
        plt.close(change_fig)
    log.info("services %s: %s", years, summary["by_year"])
    log.info("trade-offs/synergies: %s", summary["tradeoffs"]["pairs"])
    log.info(
        "improvement zones: %.1f ha (%.1f %%)",
        summary["improvement"]["improvement_area_ha"],
        100 * summary["improvement"]["improvement_share"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
