"""Abandonment of reclaimed parcels from the land-cover map.

A parcel is abandoned when the share of its area mapped as the abandonment classes
(default: forested land, other forest land, sparse forest land, shrub, grassland, the
study's "interpreted as forest or grassland") exceeds a threshold (default 0.5). Shares
are exact area-weighted class fractions (:func:`karstflow.zonal.class_fractions`), not
the class at the centroid: a 0.1 ha parcel covers parts of 10-20 pixels at 10 m.

Decisions:

* The share is taken over the parcel's *classified* area. A parcel whose classified
  share of its area (``classified_fraction``; nodata pixels and the part beyond the
  region lower it) is below ``min_classified_fraction`` is not evaluated: ``abandoned``
  is empty there, the parcel is counted as not evaluated and left out of the rates.
* Input checks (:func:`prepare_parcels`): missing or duplicated parcel ids, empty
  geometries and parcels wholly outside the region are rejected with their ids listed;
  invalid geometries (self-intersections, bow-ties) are repaired with
  ``shapely.make_valid`` (keeping the polygonal parts) and their ids reported; a repair
  that leaves no area is a rejection.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from karstflow.zonal import class_fractions, fraction_column

log = logging.getLogger(__name__)

__all__ = [
    "ParcelError",
    "abandonment_summary",
    "class_column",
    "parcel_abandonment",
    "prepare_parcels",
]


class ParcelError(ValueError):
    """Parcels are unusable; the message names the file and lists the parcel ids."""


def _first(values: Iterable[Any], n: int = 20) -> str:
    values = list(values)
    more = f" and {len(values) - n} more" if len(values) > n else ""
    return ", ".join(map(str, values[:n])) + more


def class_column(name: str) -> str:
    """Column of the class fraction of class ``name`` in parcels.gpkg (``frac_forested_land``)."""
    return "frac_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def prepare_parcels(
    parcels: gpd.GeoDataFrame,
    region_bounds: tuple[float, float, float, float],
    crs: Any,
    *,
    id_column: str = "parcel_id",
    source: str = "parcels",
) -> tuple[gpd.GeoDataFrame, dict[str, list]]:
    """Checked and repaired parcels in ``crs``; raises :class:`ParcelError` for rejections.

    Returns the parcels and a report ``{"repaired_ids": [...], "partly_outside_ids": [...]}``.
    """
    if id_column not in parcels.columns:
        raise ParcelError(
            f"{source}: expected a parcel id column {id_column!r} (config key abandonment.id_column), found "
            f"{list(parcels.columns)}"
        )
    if parcels.empty:
        raise ParcelError(f"{source}: no parcels")
    ids = parcels[id_column]
    if ids.isna().any():
        raise ParcelError(
            f"{source}: {int(ids.isna().sum())} parcel(s) have no {id_column} (rows "
            f"{_first(np.flatnonzero(ids.isna()) + 1)})"
        )
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise ParcelError(f"{source}: parcel ids must be unique; duplicated: {_first(sorted(set(dup.tolist())))}")
    if parcels.crs is None:
        raise ParcelError(f"{source}: the layer has no CRS; set one (the region grid is {crs})")
    out = parcels.to_crs(crs) if parcels.crs != crs else parcels.copy()
    geoms = out.geometry.values
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        raise ParcelError(f"{source}: {int(empty.sum())} parcel(s) have an empty geometry: ids {_first(ids[empty])}")
    kinds = shapely.get_type_id(geoms)
    not_poly = ~np.isin(kinds, (3, 6))
    if not_poly.any():
        raise ParcelError(f"{source}: parcels must be polygons; ids {_first(ids[not_poly])} are not")
    invalid = ~shapely.is_valid(geoms)
    repaired_ids: list = []
    if invalid.any():
        fixed = [_polygonal(shapely.make_valid(g)) for g in geoms[invalid]]
        lost = np.array([g is None or g.area == 0 for g in fixed])
        bad_ids = ids[invalid].to_numpy()
        if lost.any():
            raise ParcelError(
                f"{source}: {int(lost.sum())} invalid parcel geometr(ies) have no area once repaired: ids "
                f"{_first(bad_ids[lost])}"
            )
        geoms = geoms.copy()
        geoms[invalid] = fixed
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
        repaired_ids = bad_ids.tolist()
        log.warning(
            "%s: repaired %d invalid geometr(ies) with make_valid: parcel ids %s",
            source,
            len(repaired_ids),
            _first(repaired_ids),
        )
    box = shapely.box(*region_bounds)
    inside = shapely.intersects(geoms, box)
    if not inside.all():
        raise ParcelError(
            f"{source}: {int((~inside).sum())} parcel(s) lie wholly outside the region "
            f"{tuple(round(b, 2) for b in region_bounds)} ({crs}): ids {_first(ids[~inside])}; "
            "check the layer's CRS or clip it to the region"
        )
    partly = ~shapely.within(geoms, box)
    partly_ids = ids[partly].tolist()
    if partly_ids:
        log.warning(
            "%s: %d parcel(s) extend beyond the region (only their part inside is classified): ids %s",
            source,
            len(partly_ids),
            _first(partly_ids),
        )
    return out, {"repaired_ids": repaired_ids, "partly_outside_ids": partly_ids}


def _polygonal(geom: Any) -> Any:
    """The polygonal part of a geometry (make_valid may add lines or points), or None."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    return shapely.union_all(parts)


def parcel_abandonment(
    parcels: gpd.GeoDataFrame,
    landcover: Any,
    legend: Mapping[int, str],
    *,
    abandonment_codes: Sequence[int],
    threshold: float,
    min_classified_fraction: float,
    method: str = "exact",
) -> gpd.GeoDataFrame:
    """Parcels with their class fractions and the abandonment decision.

    Adds ``area_ha``, ``classified_fraction``, ``frac_<class name>`` for each legend class
    (shares of the classified area), ``abandonment_class_fraction`` (the share of the
    abandonment classes), ``dominant_class`` (code of the largest share) and
    ``abandoned`` (1 when ``abandonment_class_fraction > threshold``, 0 otherwise, empty
    when not evaluated).
    """
    unknown = [c for c in abandonment_codes if c not in legend]
    if unknown:
        raise ValueError(f"config key abandonment.classes: code(s) {unknown} are not in the legend {sorted(legend)}")
    codes = list(legend)
    fractions = class_fractions(parcels, landcover, codes, method=method)
    out = parcels.copy()
    out["area_ha"] = out.geometry.area / 1e4
    out["classified_fraction"] = fractions["classified_fraction"].to_numpy()
    for code in codes:
        out[class_column(legend[code])] = fractions[fraction_column(code)].to_numpy()
    share = fractions[[fraction_column(c) for c in abandonment_codes]].sum(axis=1, min_count=1)
    share = share.where(fractions["classified_fraction"].notna())
    out["abandonment_class_fraction"] = share.to_numpy()
    frac = fractions[[fraction_column(c) for c in codes]]
    dominant = pd.Series(pd.NA, index=frac.index, dtype="Int64")
    has = frac.notna().any(axis=1)
    if has.any():
        dominant[has] = np.asarray(codes)[np.argmax(frac[has].to_numpy(), axis=1)]
    out["dominant_class"] = dominant.to_numpy()
    evaluated = (fractions["classified_fraction"] >= min_classified_fraction).fillna(False)
    decision = pd.Series(pd.NA, index=out.index, dtype="Int64")
    decision[evaluated] = (share[evaluated] > threshold).astype(int)
    out["abandoned"] = decision.to_numpy()
    return out


def _rates(frame: pd.DataFrame) -> dict[str, Any]:
    evaluated = frame["abandoned"].notna()
    ev = frame[evaluated]
    ab = ev[ev["abandoned"] == 1]
    area = float(ev["area_ha"].sum())
    return {
        "parcels": int(len(frame)),
        "parcel_area_ha": float(frame["area_ha"].sum()),
        "evaluated_parcels": int(len(ev)),
        "not_evaluated_parcels": int((~evaluated).sum()),
        "abandoned_parcels": int(len(ab)),
        "abandoned_area_ha": float(ab["area_ha"].sum()),
        "abandonment_rate_by_count": float(len(ab) / len(ev)) if len(ev) else None,
        "abandonment_rate_by_area": float(ab["area_ha"].sum() / area) if area > 0 else None,
    }


def abandonment_summary(parcels: pd.DataFrame, *, year_column: str | None = None) -> dict[str, Any]:
    """Headline figures: parcel count and area, abandoned count and area, rates by count
    and by area (over the evaluated parcels), and the same per reclamation year when
    ``year_column`` is a column of ``parcels``."""
    summary = _rates(parcels)
    if year_column and year_column in parcels.columns:
        years = pd.to_numeric(parcels[year_column], errors="coerce")
        by_year = {}
        for year in sorted(years.dropna().unique()):
            by_year[str(int(year))] = _rates(parcels[years == year])
        summary["by_reclaim_year"] = by_year
        summary["parcels_without_year"] = int(years.isna().sum())
    return summary
