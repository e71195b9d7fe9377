"""Entry script of rule services_summary: totals, changes, trade-offs and improvement zones."""

import logging

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_csv, write_json, write_raster
from karstflow.plotting import change_bars, save_figure, tradeoff_heatmap
from karstflow.runtime import run_script
from karstflow.tradeoffs import (
    SERVICES,
    ZONE_NAMES,
    ZONE_NODATA,
    improvement_zones,
    service_changes,
    service_totals,
    township_ids,
    township_summary,
    tradeoff_matrix,
)

log = logging.getLogger("karstflow.scripts.services_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    p = params
    inp = input
    grid = RegionGrid.from_dict(read_json(inp.grid))
    years = [int(y) for y in p.years]
    area = grid.pixel_area_m2
    maps = {}
    for year in years:
        maps[year] = {}
        for service in SERVICES:
            path = str(inp[f"{service}_{year}"])
            da = read_raster(path)
            grid.check(da, grid_source=inp.grid, source=path)
            maps[year][service] = np.asarray(da.values, dtype=np.float64)
    first, last = years[0], years[-1]
    totals = service_totals(maps, pixel_area_m2=area)
    changes = service_changes(totals)
    deltas = {s: maps[last][s] - maps[first][s] for s in SERVICES}
    tradeoffs = tradeoff_matrix(deltas, alpha=p.alpha)

    imp = p.improvement
    landcover = np.asarray(read_raster(inp[f"landcover_{last}"]).values)
    slope = np.asarray(read_raster(inp.slope).values, dtype=np.float64)
    zones, score = improvement_zones(
        maps[last],
        maps[first],
        landcover,
        slope,
        improvable_codes=imp["improvable_classes"],
        steep_cropland_codes=imp["steep_cropland_classes"],
        steep_slope_deg=imp["steep_cropland_slope_deg"],
        low_quantile=imp["low_quantile"],
        decline_share=imp["decline_share"],
        weights=imp["weights"],
    )
    write_raster(
        grid.data_array(zones, name="improvement_zones"),
        output.zones,
        dtype="uint8",
        nodata=ZONE_NODATA,
    )
    if "townships" in inp:
        townships = read_vector(inp.townships).to_crs(grid.crs)
        ids = township_ids(townships, grid.shape, grid.transform)
        by_township = township_summary(
            ids, townships.drop(columns="geometry"), zones, score, maps[last], pixel_area_m2=area
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
        import pandas as pd

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

    write_csv(totals, output.table, index=False)
    write_csv(changes, output.changes, index=False)
    write_csv(tradeoffs, output.tradeoffs, index=False)
    write_csv(by_township, output.townships, index=False)

    px_ha = area / 1e4
    valid = zones != ZONE_NODATA
    habitat = p.habitat
    threat_records = {int(y): read_json(path) for y, path in zip(years, inp.threats, strict=True)}
    k = habitat["half_saturation"]
    if k == "auto":
        k = max(r["degradation_max"] for r in threat_records.values()) / 2.0
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
            "from_year": first,
            "to_year": last,
            "alpha": p.alpha,
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
            "zone_area_ha": {ZONE_NAMES[c]: float((zones == c).sum() * px_ha) for c in ZONE_NAMES},
            "improvement_area_ha": float(np.isin(zones, (2, 3)).sum() * px_ha),
            "improvement_share": float(np.isin(zones, (2, 3)).sum() / valid.sum()) if valid.any() else float("nan"),
            "first_priority_area_ha": float((zones == 3).sum() * px_ha),
            "low_quantile": imp["low_quantile"],
            "townships": township_figures,
        },
        "method": {
            "water_yield_z": p.water_yield["z"],
            "climate": p.climate,
            "r_factor": p.soil_conservation["r_factor"]["method"],
            "cover_factor": p.soil_conservation["cover_factor"],
            "habitat_half_saturation": k,
            "habitat_threats": {name: rec["evaluated"] for name, rec in threat_records[last]["threats"].items()},
        },
    }
    write_json(summary, output.summary)
    region = wildcards.region
    save_figure(
        tradeoff_heatmap(tradeoffs, alpha=p.alpha, title=f"{region}: trade-offs and synergies, {first}-{last}"),
        output.tradeoff_figure,
    )
    last_change = changes.iloc[-1]
    labels = {
        "carbon storage (Mg C)": "carbon_storage_total_mg_c",
        "soil retention (t/yr)": "soil_retention_total_t_yr",
        "water yield (m3)": "water_yield_total_m3",
        "habitat quality (mean)": "habitat_quality_mean_index",
    }
    save_figure(
        change_bars(
            last_change,
            labels,
            title=f"{region}: change of the services, {int(last_change['from_year'])}-{int(last_change['to_year'])}",
        ),
        output.change_figure,
    )
    log.info("services %s: %s", years, summary["by_year"])
    log.info("trade-offs/synergies: %s", summary["tradeoffs"]["pairs"])
    log.info(
        "improvement zones: %.1f ha (%.1f %%)",
        summary["improvement"]["improvement_area_ha"],
        100 * summary["improvement"]["improvement_share"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
