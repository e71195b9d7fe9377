"""Abandonment drivers x1..x10 of polygons (reclaimed parcels, forest candidates).

One function computes every driver, for any polygon layer::

    compute_drivers(
        polygons: gpd.GeoDataFrame,          # one row per polygon, projected CRS in metres
        *,
        dem: xr.DataArray,                   # results/{region}/terrain/dem.tif (m)
        slope_deg: xr.DataArray,             # results/{region}/terrain/slope.tif (deg)
        aspect_class: xr.DataArray,          # results/{region}/terrain/aspect_class.tif (0..4)
        settlements: gpd.GeoDataFrame,       # points (or polygons) of settlements
        roads: gpd.GeoDataFrame | nx.Graph,  # road lines, or a graph from build_road_graph
        farmland: gpd.GeoDataFrame,          # cultivated patches (targets of x5)
        villages: gpd.GeoDataFrame,          # polygons with population (+ area_km2)
        grades: gpd.GeoDataFrame,            # polygons with natural_grade, utilization_grade, economic_grade
        id_column: str = "parcel_id",        # copied to the output's first column
        snap_tolerance_m: float = 1.0,       # road junction snapping (build_road_graph)
        max_access_m: float | None = None,   # longest access leg to the road network
        own_patch_min_share: float = 0.5,    # farmland patch covering >= this share of a polygon is its own
    ) -> pd.DataFrame

It returns one row per polygon, in input order: ``id_column``, the ten driver columns
:data:`DRIVER_COLUMNS` (``x1_elevation_m`` ... ``x10_area_ha``), ``x4_off_network`` and
``x5_off_network`` (1 where the travel distance is the straight-line fallback) and
``village_id`` (when the villages carry one; else the village's row position).

The methods are those with which the county demo planted its model
(:data:`karstflow.demo.county.DRIVER_METHODS`), so the driver stage recovers it:

* x1, x2: means of the DEM and of the slope over the pixels whose centres fall inside the
  polygon (a polygon holding no pixel centre takes the pixel under its representative
  point, logged);
* x3: the aspect class covering most of those pixels; ties go to the lower class code;
* x4, x5: :func:`karstflow.network.travel_distance_m` (access leg + shortest path on the
  road graph + target access leg) to the nearest settlement and to the nearest cultivated
  patch; the straight-line fallback (no road within ``max_access_m`` or no target on the
  polygon's road component) is flagged in ``x4_off_network`` / ``x5_off_network`` and
  logged. A farmland patch that covers at least ``own_patch_min_share`` of a polygon is
  that polygon's own patch and never its nearest *other* patch;
* x6: population density (people/km2) of the village covering the largest part of the
  polygon: ``population_density_per_km2`` when the villages carry it, else
  ``population / area_km2``, else ``population`` over the village polygon's area;
* x7..x9: area-weighted means of the grades over the grade polygons the polygon overlaps;
* x10: polygon area / 10,000 (ha).

Bad input raises :class:`DriverInputError` naming the layer, what was expected and what
was found: a polygon outside every village (x6 undefined), outside every grade polygon,
outside the rasters, missing columns, an unprojected CRS, or layers in different CRSs.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import CRS
from rasterio import features
from rasterio.transform import rowcol

from karstflow.grid import register_rio
from karstflow.network import build_road_graph, travel_distance_m
from karstflow.zonal import zonal_mean

log = logging.getLogger(__name__)

__all__ = [
    "DRIVER_COLUMNS",
    "DRIVER_DESCRIPTIONS",
    "GRADE_COLUMNS",
    "DriverInputError",
    "compute_drivers",
    "drivers_summary",
]

#: Driver columns, in order (the names of parcels_truth.csv and parcel_drivers.csv).
DRIVER_COLUMNS: tuple[str, ...] = (
    "x1_elevation_m",
    "x2_slope_deg",
    "x3_aspect_class",
    "x4_settlement_distance_m",
    "x5_farmland_distance_m",
    "x6_population_density_per_km2",
    "x7_natural_grade",
    "x8_utilization_grade",
    "x9_economic_grade",
    "x10_area_ha",
)

DRIVER_DESCRIPTIONS: dict[str, str] = {
    "x1_elevation_m": "mean elevation (m)",
    "x2_slope_deg": "mean slope (degrees)",
    "x3_aspect_class": "dominant aspect class (0 flat, 1 shady, 2 semi-shady, 3 semi-sunny, 4 sunny)",
    "x4_settlement_distance_m": "road travel distance to the nearest settlement (m)",
    "x5_farmland_distance_m": "road travel distance to the nearest other cultivated patch (m)",
    "x6_population_density_per_km2": "resident population density of the polygon's village (people/km2)",
    "x7_natural_grade": "natural quality grade, area-weighted (1 best .. 15 worst)",
    "x8_utilization_grade": "utilization quality grade, area-weighted (1 best .. 15 worst)",
    "x9_economic_grade": "economic quality grade, area-weighted (1 best .. 15 worst)",
    "x10_area_ha": "area (ha)",
}

#: Grade columns the grade polygons must carry, and the drivers they become.
GRADE_COLUMNS: dict[str, str] = {
    "natural_grade": "x7_natural_grade",
    "utilization_grade": "x8_utilization_grade",
    "economic_grade": "x9_economic_grade",
}


class DriverInputError(ValueError):
    """Input layers that do not allow the drivers to be computed."""


def compute_drivers(
    polygons: gpd.GeoDataFrame,
    *,
    dem: xr.DataArray,
    slope_deg: xr.DataArray,
    aspect_class: xr.DataArray,
    settlements: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | nx.Graph,
    farmland: gpd.GeoDataFrame,
    villages: gpd.GeoDataFrame,
    grades: gpd.GeoDataFrame,
    id_column: str = "parcel_id",
    snap_tolerance_m: float = 1.0,
    max_access_m: float | None = None,
    own_patch_min_share: float = 0.5,
) -> pd.DataFrame:
    """Drivers x1..x10 of every polygon (see the module notes).

    Parameters
    ----------
    polygons
        Polygons in a projected CRS in metres, with ``id_column``.
    dem, slope_deg, aspect_class
        Rasters on one grid, in the polygons' CRS (the terrain stage's outputs).
    settlements, roads, farmland, villages, grades
        Layers in the polygons' CRS; ``roads`` may be a prebuilt road graph.
    id_column
        Identifier column of ``polygons``, copied to the output.
    snap_tolerance_m, max_access_m
        Road graph and access-leg settings (:mod:`karstflow.network`).
    own_patch_min_share
        Share of a polygon's area a farmland patch must cover to count as the polygon's
        own patch (excluded from x5).

    Returns
    -------
    pandas.DataFrame
        ``id_column``, the ten drivers, ``x4_off_network``, ``x5_off_network``,
        ``village_id``; one row per polygon in input order.
    """
    t0 = time.perf_counter()
    _check_polygons(polygons, id_column)
    crs = polygons.crs
    for name, layer in (
        ("settlements", settlements),
        ("farmland", farmland),
        ("villages", villages),
        ("grades", grades),
    ):
        _check_layer(name, layer, crs)
    if isinstance(roads, gpd.GeoDataFrame | gpd.GeoSeries):
        _check_layer("roads", roads, crs)
    _check_columns("villages", villages, ["population"])
    _check_columns("grades", grades, list(GRADE_COLUMNS))
    if not 0 < own_patch_min_share <= 1:
        raise DriverInputError(f"own_patch_min_share must be in (0, 1], found {own_patch_min_share!r}")

    geoms = polygons.geometry.reset_index(drop=True)
    n = len(geoms)
    ids = polygons[id_column].to_numpy()
    out = pd.DataFrame({id_column: ids})

    # --- terrain: x1, x2, x3
    terrain = _terrain_drivers(geoms, dem, slope_deg, aspect_class, ids, id_column)
    for col in ("x1_elevation_m", "x2_slope_deg", "x3_aspect_class"):
        out[col] = terrain[col]

    # --- access: x4, x5
    graph = roads if isinstance(roads, nx.Graph) else build_road_graph(roads, snap_tolerance_m=snap_tolerance_m)
    x4 = travel_distance_m(geoms, settlements.geometry.reset_index(drop=True), graph, max_access_m=max_access_m)
    farm = farmland.geometry.reset_index(drop=True)
    own = _own_patches(geoms, farm, own_patch_min_share)
    x5 = travel_distance_m(
        geoms, farm, graph, max_access_m=max_access_m, exclude_self=own if own is not None else None
    )
    for col, res, what in (
        ("x4_settlement_distance_m", x4, "settlement"),
        ("x5_farmland_distance_m", x5, "cultivated patch"),
    ):
        if res["distance_m"].isna().any():
            bad = ids[res["distance_m"].isna().to_numpy()]
            raise DriverInputError(
                f"{col}: no {what} to measure the distance to for {len(bad)} polygon(s) "
                f"({id_column} {_some(bad)}); the {what} layer is empty or holds no usable geometry"
            )
        out[col] = res["distance_m"].to_numpy()
    out["x6_population_density_per_km2"], village_id = _village_density(geoms, villages, ids, id_column)
    grades_w = _grade_means(geoms, grades, ids, id_column)
    for col in GRADE_COLUMNS.values():
        out[col] = grades_w[col]
    out["x10_area_ha"] = shapely.area(geoms.values) / 1e4
    out["x4_off_network"] = (~x4["on_network"].to_numpy()).astype(np.int64)
    out["x5_off_network"] = (~x5["on_network"].to_numpy()).astype(np.int64)
    out["village_id"] = village_id
    for col, flag in (("x4", "x4_off_network"), ("x5", "x5_off_network")):
        k = int(out[flag].sum())
        if k:
            log.warning(
                "drivers: %s of %d polygon(s) is the straight-line distance (no road access within "
                "max_access_m or no target on their road component); flagged in %s",
                col, k, flag,
            )
    log.info("drivers: %d polygons in %.2f s", n, time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------


def _some(values: Any, k: int = 5) -> str:
    vals = list(values)
    head = ", ".join(str(v) for v in vals[:k])
    return head + (f", ... ({len(vals)} in all)" if len(vals) > k else "")


def _check_polygons(polygons: gpd.GeoDataFrame, id_column: str) -> None:
    if not isinstance(polygons, gpd.GeoDataFrame):
        raise DriverInputError(f"polygons: expected a GeoDataFrame, found {type(polygons).__name__}")
    if id_column not in polygons.columns:
        raise DriverInputError(
            f"polygons: expected an identifier column {id_column!r}, found columns {list(polygons.columns)}"
        )
    if polygons[id_column].duplicated().any():
        dup = polygons.loc[polygons[id_column].duplicated(), id_column].tolist()
        raise DriverInputError(f"polygons: {id_column} must be unique, found duplicates {_some(dup)}")
    if polygons.crs is None or not CRS.from_user_input(polygons.crs).is_projected:
        raise DriverInputError(f"polygons: expected a projected CRS in metres, found {polygons.crs}")
    types = set(polygons.geometry.geom_type.dropna())
    if not types <= {"Polygon", "MultiPolygon"}:
        raise DriverInputError(f"polygons: expected Polygon or MultiPolygon geometries, found {sorted(types)}")
    bad = polygons.geometry.isna() | polygons.geometry.is_empty
    if bad.any():
        raise DriverInputError(
            f"polygons: {int(bad.sum())} empty geometries ({id_column} {_some(polygons.loc[bad, id_column])})"
        )


def _check_layer(name: str, layer: Any, crs: Any) -> None:
    if layer.crs is None or CRS.from_user_input(layer.crs) != CRS.from_user_input(crs):
        raise DriverInputError(f"{name}: expected the polygons' CRS ({crs}), found {layer.crs}")


def _check_columns(name: str, layer: gpd.GeoDataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in layer.columns]
    if missing:
        raise DriverInputError(f"{name}: expected column(s) {missing}, found {list(layer.columns)}")


# --------------------------------------------------------------------------------------
# terrain drivers
# --------------------------------------------------------------------------------------


def _terrain_drivers(
    geoms: gpd.GeoSeries, dem: xr.DataArray, slope: xr.DataArray, aspect: xr.DataArray, ids: np.ndarray, id_column: str
) -> dict[str, np.ndarray]:
    register_rio()

    shape = (dem.sizes["y"], dem.sizes["x"])
    transform = dem.rio.transform()
    for name, da in (("slope_deg", slope), ("aspect_class", aspect)):
        if (da.sizes["y"], da.sizes["x"]) != shape or not np.allclose(
            tuple(da.rio.transform())[:6], tuple(transform)[:6]
        ):
            raise DriverInputError(
                f"{name}: expected the DEM's grid ({shape[1]} x {shape[0]} px), found {da.sizes['x']} x "
                f"{da.sizes['y']} px or another transform"
            )
    if dem.rio.crs is not None and CRS.from_user_input(dem.rio.crs) != CRS.from_user_input(geoms.crs):
        raise DriverInputError(f"dem: expected the polygons' CRS ({geoms.crs}), found {dem.rio.crs}")
    n = len(geoms)
    # Pixel centres inside a polygon belong to it (rasterio's default rule, as the demo);
    # where polygons overlap the later one wins.
    zone = features.rasterize(
        ((g, i + 1) for i, g in enumerate(geoms.values)), out_shape=shape, transform=transform, fill=0, dtype="int32"
    ).ravel()
    z = np.asarray(dem.values, dtype=np.float64).ravel()
    s = np.asarray(slope.values, dtype=np.float64).ravel()
    a = np.asarray(aspect.values, dtype=np.float64).ravel()

    units = range(1, n + 1)
    x1 = zonal_mean(z, zone, units)
    x2 = zonal_mean(s, zone, units)
    ok = (zone > 0) & np.isfinite(a) & (a >= 0) & (a <= 4)
    counts = np.bincount(zone[ok] * 5 + a[ok].astype(np.int64), minlength=(n + 1) * 5).reshape(n + 1, 5)[1:]
    x3 = np.where(counts.sum(axis=1) > 0, np.argmax(counts, axis=1), -1).astype(np.int64)

    n_px = np.bincount(zone, minlength=n + 1)[1:]
    empty = np.flatnonzero(n_px == 0)
    if len(empty):
        # too small (or thin) to hold a pixel centre: the pixel under the representative point
        rp = shapely.get_coordinates(shapely.point_on_surface(geoms.values[empty]))
        row, col = rowcol(transform, rp[:, 0], rp[:, 1], op=math.floor)
        row = np.asarray(row, dtype=np.int64)
        col = np.asarray(col, dtype=np.int64)
        inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
        if not inside.all():
            bad = ids[empty[~inside]]
            raise DriverInputError(
                f"dem: {len(bad)} polygon(s) lie outside the terrain rasters ({geoms.crs}, "
                f"bounds {tuple(round(b, 1) for b in dem.rio.bounds())}); {id_column} {_some(bad)}"
            )
        flat = row * shape[1] + col
        x1[empty], x2[empty] = z[flat], s[flat]
        av = a[flat]
        x3[empty] = np.where(np.isfinite(av) & (av >= 0) & (av <= 4), np.nan_to_num(av, nan=-1), -1).astype(np.int64)
        log.info(
            "drivers: %d polygon(s) hold no pixel centre; they take the pixel under a point on their surface",
            len(empty),
        )
    for col, v, what in (("x1_elevation_m", x1, "dem"), ("x2_slope_deg", x2, "slope_deg")):
        bad = ~np.isfinite(v)
        if bad.any():
            raise DriverInputError(
                f"{what}: no valid pixel under {int(bad.sum())} polygon(s) ({id_column} {_some(ids[bad])}); "
                f"{col} needs data there (nodata or outside the raster)"
            )
    if (x3 < 0).any():
        bad = ids[x3 < 0]
        raise DriverInputError(f"aspect_class: no class 0..4 under {len(bad)} polygon(s) ({id_column} {_some(bad)})")
    return {"x1_elevation_m": x1, "x2_slope_deg": x2, "x3_aspect_class": x3}


# --------------------------------------------------------------------------------------
# overlays: own farmland patch, village, grades
# --------------------------------------------------------------------------------------


def _overlap_areas(a: gpd.GeoSeries, b: gpd.GeoSeries) -> pd.DataFrame:
    """Intersection area of every overlapping (a, b) pair: columns ia, ib, area (m2)."""
    bv = b.values
    tree = shapely.STRtree(bv)
    ia, ib = tree.query(a.values, predicate="intersects")
    area = shapely.area(shapely.intersection(a.values[ia], bv[ib]))
    df = pd.DataFrame({"ia": ia, "ib": ib, "area": area})
    return df[df["area"] > 0]


def _own_patches(geoms: gpd.GeoSeries, farm: gpd.GeoSeries, min_share: float) -> list[Any] | None:
    """Per polygon, the farmland patch (index label) that is the polygon itself, or None."""
    if len(farm) == 0:
        return None
    ov = _overlap_areas(geoms, farm)
    if ov.empty:
        return None
    ov["share"] = ov["area"].to_numpy() / shapely.area(geoms.values[ov["ia"].to_numpy()])
    ov = ov[ov["share"] >= min_share].sort_values(["ia", "area"], ascending=[True, False]).drop_duplicates("ia")
    if ov.empty:
        return None
    own: list[Any] = [None] * len(geoms)
    for ia, ib in zip(ov["ia"].to_numpy(), ov["ib"].to_numpy(), strict=True):
        own[int(ia)] = farm.index[int(ib)]
    log.info("drivers: %d polygon(s) are (mostly) a farmland patch themselves; x5 skips that patch", len(ov))
    return own


def _village_density(
    geoms: gpd.GeoSeries, villages: gpd.GeoDataFrame, ids: np.ndarray, id_column: str
) -> tuple[np.ndarray, np.ndarray]:
    n = len(geoms)
    v = villages.reset_index(drop=True)
    ov = _overlap_areas(geoms, v.geometry)
    # the village covering the largest part; ties to the first village in file order
    ov = ov.sort_values(["ia", "area", "ib"], ascending=[True, False, True]).drop_duplicates("ia")
    idx = np.full(n, -1, dtype=np.int64)
    idx[ov["ia"].to_numpy()] = ov["ib"].to_numpy()
    if (idx < 0).any():
        bad = ids[idx < 0]
        raise DriverInputError(
            f"villages: {len(bad)} polygon(s) lie outside every village polygon, so x6 "
            f"(population density of the polygon's village) is undefined: {id_column} {_some(bad)}. "
            "Expected village polygons covering every parcel"
        )
    if "population_density_per_km2" in v.columns:
        dens = v["population_density_per_km2"].to_numpy(dtype=np.float64)
    elif "area_km2" in v.columns:
        dens = v["population"].to_numpy(dtype=np.float64) / v["area_km2"].to_numpy(dtype=np.float64)
    else:
        dens = v["population"].to_numpy(dtype=np.float64) / (shapely.area(v.geometry.values) / 1e6)
    x6 = dens[idx]
    if not np.isfinite(x6).all():
        bad = np.flatnonzero(~np.isfinite(x6))
        raise DriverInputError(
            f"villages: population density is missing or not finite for the village of {len(bad)} polygon(s) "
            f"({id_column} {_some(ids[bad])}); expected population (and area_km2 > 0)"
        )
    vid = v["village_id"].to_numpy()[idx] if "village_id" in v.columns else idx
    return x6, vid


def _grade_means(
    geoms: gpd.GeoSeries, grades: gpd.GeoDataFrame, ids: np.ndarray, id_column: str
) -> dict[str, np.ndarray]:
    n = len(geoms)
    g = grades.reset_index(drop=True)
    ov = _overlap_areas(geoms, g.geometry)
    ia = ov["ia"].to_numpy()
    w = ov["area"].to_numpy()
    tot = np.bincount(ia, weights=w, minlength=n)
    if (tot <= 0).any():
        bad = ids[tot <= 0]
        raise DriverInputError(
            f"grades: {len(bad)} polygon(s) overlap no quality-grade polygon, so x7..x9 are undefined: "
            f"{id_column} {_some(bad)}"
        )
    out = {}
    for src, col in GRADE_COLUMNS.items():
        vals = g[src].to_numpy(dtype=np.float64)[ov["ib"].to_numpy()]
        if not np.isfinite(vals).all():
            raise DriverInputError(
                f"grades: column {src} has missing values under some polygons; expected grades 1..15"
            )
        out[col] = np.bincount(ia, weights=vals * w, minlength=n) / tot
    return out


def read_driver_layers(paths: Any) -> dict[str, Any]:
    """Read the layers :func:`compute_drivers` needs from a mapping of input paths.

    ``paths`` has the keys dem, slope, aspect_class, settlements, roads, farmland,
    villages and quality_grades (a Snakemake input object works); the result holds
    :func:`compute_drivers`' keyword arguments, so parcels and forest polygons are read
    and scored the same way.
    """
    from karstflow.io import read_raster, read_vector

    return {
        "dem": read_raster(paths["dem"]),
        "slope_deg": read_raster(paths["slope"]),
        "aspect_class": read_raster(paths["aspect_class"]),
        "settlements": read_vector(paths["settlements"]),
        "roads": read_vector(paths["roads"]),
        "farmland": read_vector(paths["farmland"]),
        "villages": read_vector(paths["villages"]),
        "grades": read_vector(paths["quality_grades"]),
    }


def drivers_summary(table: pd.DataFrame, labels: str = "classified") -> dict[str, Any]:
    """Headline figures of a driver table (parcel_drivers.csv): counts and driver means."""
    out: dict[str, Any] = {
        "parcels": int(len(table)),
        "labels": labels,
        "parcels_with_outcome": int(table["abandoned"].notna().sum()) if "abandoned" in table else None,
        "abandoned": int(table["abandoned"].sum()) if "abandoned" in table else None,
        "x4_off_network": int(table["x4_off_network"].sum()) if "x4_off_network" in table else None,
        "x5_off_network": int(table["x5_off_network"].sum()) if "x5_off_network" in table else None,
    }
    for col in DRIVER_COLUMNS:
        if col == "x3_aspect_class":
            counts = table[col].value_counts()
            for code in range(5):
                out[f"aspect_class_{code}_parcels"] = int(counts.get(code, 0))
        else:
            out[f"{col}_mean"] = float(table[col].mean())
    return out
