"""The county demo: a mountain county shaped like the abandonment study (Jiangxi).

:func:`make_county` builds, on a given grid and from one seed:

* terrain (hills, a river valley with a flat floor, tributary valleys), 20-400 m;
* villages (Voronoi cells of village centres, grouped into townships), settlements
  (village centres and hamlets), a connected road network with a few dead ends;
* existing farmland patches on valley floors and gentle slopes, several hundred
  reclaimed ("supplementary") parcels elsewhere, land-quality grade polygons;
* the drivers x1..x10 of every parcel, computed as a careful analyst would from the very
  files written (see ``DRIVER_METHODS``), and abandonment drawn from a known logistic
  model with two planted interactions;
* the true land cover (abandoned parcels show forest, shrub or grassland), forest land
  polygons, red-line, soil and irrigation polygons, accumulated temperature and
  precipitation rasters, labelled reference points;
* Sentinel-2 L2A-like scenes (6 reflectance bands + SCL) with per-class spectra and
  phenology, clouds, shadows, a no-data wedge and the processing-baseline 04.00 offset.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterable
from typing import Any, cast

import dask
import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from rasterio import features
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import Delaunay

from karstflow.demo import (
    DEFAULT_COUNTY_YEARS,
    DEFAULT_DATES_PER_YEAR,
    LANDCOVER_CLASSES,
    LANDCOVER_COLOURS,
    LANDCOVER_NODATA,
    DemoBundle,
    scene_dates,
)
from karstflow.demo._fields import (
    aspect_class_np,
    blob_polygon,
    component_rng,
    fractal_noise,
    interior_mask,
    poisson_points,
    rasterize_ids,
    slope_aspect_np,
    smooth_curve,
    smooth_noise,
    smoothstep,
    voronoi_cells,
    zonal_counts,
    zonal_mean,
)
from karstflow.network import build_road_graph, travel_distance_m

log = logging.getLogger("karstflow.demo")

GENERATOR_VERSION = "county-1"

#: Shortest side (m) of a county demo grid.
MIN_SIDE_M = 1000.0

# --------------------------------------------------------------------------------------
# the planted abandonment model
# --------------------------------------------------------------------------------------

#: Driver columns of ``parcels_truth.csv`` (and of the driver stage), with their meaning.
DRIVERS: dict[str, tuple[str, str]] = {
    "x1": ("x1_elevation_m", "elevation (m)"),
    "x2": ("x2_slope_deg", "slope (degrees)"),
    "x3": (
        "x3_aspect_class",
        "aspect class (0 flat, 1 shady, 2 semi-shady, 3 semi-sunny, 4 sunny); categorical, flat is the reference",
    ),
    "x4": ("x4_settlement_distance_m", "road travel distance to the nearest settlement (m)"),
    "x5": ("x5_farmland_distance_m", "road travel distance to the nearest other farmland patch (m)"),
    "x6": ("x6_population_density_per_km2", "resident population density of the parcel's village (people/km2)"),
    "x7": ("x7_natural_grade", "natural quality grade (1 best .. 15 worst)"),
    "x8": ("x8_utilization_grade", "utilization quality grade (1 best .. 15 worst)"),
    "x9": ("x9_economic_grade", "economic quality grade (1 best .. 15 worst)"),
    "x10": ("x10_area_ha", "parcel area (ha)"),
}
DRIVER_COLUMNS: tuple[str, ...] = tuple(c for c, _ in DRIVERS.values())

#: How every driver is computed from the demo files (the driver stage should match).
DRIVER_METHODS: dict[str, str] = {
    "x1_elevation_m": "mean of dem.tif over the pixels whose centres fall inside the parcel",
    "x2_slope_deg": "mean over the same pixels of the Horn slope of dem.tif (karstflow.terrain.slope_aspect)",
    "x3_aspect_class": (
        "the aspect class (karstflow.terrain.aspect_class, flat below flat_max_deg) covering the most "
        "pixels of the parcel; ties go to the lower class code"
    ),
    "x4_settlement_distance_m": (
        "karstflow.network.travel_distance_m(parcels, settlements.gpkg, build_road_graph(roads.gpkg)): "
        "access leg from the parcel boundary to the nearest road point + road path + the settlement's access leg"
    ),
    "x5_farmland_distance_m": (
        "as x4 with farmland.gpkg patches as targets (parcels are a separate layer, so a parcel's own "
        "patch never counts)"
    ),
    "x6_population_density_per_km2": (
        "population / area_km2 of the village (villages.gpkg) covering the largest part of the parcel"
    ),
    "x7_natural_grade": "area-weighted mean of natural_grade over the quality_grades.gpkg polygons the parcel overlaps",
    "x8_utilization_grade": "area-weighted mean of utilization_grade (as x7)",
    "x9_economic_grade": "area-weighted mean of economic_grade (as x7)",
    "x10_area_ha": "polygon area / 10,000",
}

#: Planted logit coefficients per unit of each driver (aspect: per class vs flat).
DEFAULT_COEFFICIENTS: dict[str, Any] = {
    "x1_elevation_m": 0.01,
    "x2_slope_deg": 0.1,
    "x3_aspect_class": {"1": 1.5, "2": 0.9, "3": -0.9, "4": -1.5},
    "x4_settlement_distance_m": 0.0025,
    "x5_farmland_distance_m": 0.001,
    "x6_population_density_per_km2": -0.0025,
    "x7_natural_grade": 0.25,
    "x8_utilization_grade": 0.25,
    "x9_economic_grade": 0.25,
    "x10_area_ha": -3.0,
}

#: Planted interactions: a pandas ``DataFrame.eval`` expression over the driver columns
#: and the logit added where it holds (the study's first two high-abandonment subgroups).
DEFAULT_INTERACTIONS: tuple[dict[str, Any], ...] = (
    {"expr": "x1_elevation_m > 130 and x10_area_ha < 0.2", "logit_effect": 1.5},
    {"expr": "x6_population_density_per_km2 < 400 and x10_area_ha < 0.2", "logit_effect": 1.5},
)

ASPECT_NAMES = {0: "flat", 1: "shady", 2: "semi-shady", 3: "semi-sunny", 4: "sunny"}

FOREST_TYPES = {2: "forested land", 3: "other forest land", 4: "sparse forest land"}
REDLINE_KINDS = ("nature_reserve", "park", "drinking_water_source", "fragile_zone", "geohazard_zone", "flood_storage")


def design_matrix(drivers: pd.DataFrame, interactions: Iterable[dict[str, Any]] = DEFAULT_INTERACTIONS) -> pd.DataFrame:
    """The planted model's design: constant, x1, x2, aspect dummies 1..4 (flat reference),
    x4..x10 and one 0/1 column per interaction (``interaction_1``, ...)."""
    x = pd.DataFrame(index=drivers.index)
    x["const"] = 1.0
    for col in DRIVER_COLUMNS:
        if col == "x3_aspect_class":
            for k in (1, 2, 3, 4):
                x[f"x3_aspect_{k}"] = (drivers[col].astype(int) == k).astype(float)
        else:
            x[col] = drivers[col].astype(float)
    for i, term in enumerate(interactions, start=1):
        x[f"interaction_{i}"] = cast(pd.Series, drivers.eval(term["expr"], engine="python")).astype(float)
    return x


def coefficient_vector(
    intercept: float, coefficients: dict[str, Any], interactions: Iterable[dict[str, Any]]
) -> pd.Series:
    """The planted coefficients in the order of :func:`design_matrix`."""
    b: dict[str, float] = {"const": float(intercept)}
    for col in DRIVER_COLUMNS:
        if col == "x3_aspect_class":
            for k in (1, 2, 3, 4):
                b[f"x3_aspect_{k}"] = float(coefficients[col][str(k)])
        else:
            b[col] = float(coefficients[col])
    for i, term in enumerate(interactions, start=1):
        b[f"interaction_{i}"] = float(term["logit_effect"])
    return pd.Series(b)


# --------------------------------------------------------------------------------------
# Sentinel-2 dates and baselines
# --------------------------------------------------------------------------------------

S2_BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")
S2_BAND_NAMES = [*S2_BANDS, "SCL"]
BASELINE_04_START = dt.date(2022, 1, 25)


def processing_baseline(d: dt.date) -> str:
    """Sentinel-2 L2A processing baseline in force on ``d`` (simplified history)."""
    if d < dt.date(2021, 3, 30):
        return "02.14"
    if d < dt.date(2021, 6, 30):
        return "03.00"
    if d < BASELINE_04_START:
        return "03.01"
    if d < dt.date(2022, 12, 6):
        return "04.00"
    return "05.09"


def boa_add_offset(baseline: str) -> int:
    """BOA_ADD_OFFSET of a baseline: -1000 from 04.00 on (DN = 10000 * reflectance + 1000)."""
    major, minor = (int(v) for v in baseline.split("."))
    return -1000 if (major, minor) >= (4, 0) else 0


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


class _Ctx:
    """Shared state of one county generation."""

    def __init__(self, grid: Any, seed: int) -> None:
        self.grid = grid
        self.seed = int(seed)
        self.shape = grid.shape
        self.res = float(grid.resolution)
        self.transform = grid.transform
        self.bounds = tuple(float(b) for b in grid.bounds)
        self.area_km2 = grid.width * grid.height * self.res**2 / 1e6
        self.box = shapely.box(*self.bounds)
        self.crs = grid.crs

    def rng(self, name: str) -> np.random.Generator:
        return component_rng(self.seed, f"county/{name}")

    def rowcol(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        col = np.floor((xy[:, 0] - self.bounds[0]) / self.res).astype(np.int64)
        row = np.floor((self.bounds[3] - xy[:, 1]) / self.res).astype(np.int64)
        return np.clip(row, 0, self.shape[0] - 1), np.clip(col, 0, self.shape[1] - 1)

    def sample(self, arr: np.ndarray, xy: np.ndarray) -> np.ndarray:
        r, c = self.rowcol(xy)
        return arr[r, c]

    def rasterize(self, geoms: list[Any], **kw: Any) -> np.ndarray:
        return rasterize_ids(geoms, self.shape, self.transform, **kw)

    def gdf(self, data: dict[str, Any], geometry: Any) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(data, geometry=list(geometry), crs=self.crs)


def _round_geom(g: Any) -> Any:
    return shapely.set_precision(g, 0.01) if g is not None else g


def _timed(label: str, t0: float) -> float:
    t = time.perf_counter()
    log.info("county: %s (%.1f s)", label, t - t0)
    return t


# --------------------------------------------------------------------------------------
# terrain and water
# --------------------------------------------------------------------------------------


def _terrain(ctx: _Ctx) -> dict[str, Any]:
    rng = ctx.rng("terrain")
    h_px, w_px = ctx.shape
    res = ctx.res
    ext = min(h_px, w_px) * res
    xmin, ymin, xmax, ymax = ctx.bounds
    width_m, height_m = xmax - xmin, ymax - ymin

    base = fractal_noise(rng, ctx.shape, min(3000.0, 0.4 * ext) / res, octaves=6, persistence=0.55)
    hills = (base - base.min()) / max(float(np.ptp(base)), 1e-6)
    hills = hills**1.15

    # the river: west edge to east edge, meandering
    y0 = ymin + height_m * rng.uniform(0.3, 0.7)
    y1 = ymin + height_m * rng.uniform(0.3, 0.7)
    river_xy = smooth_curve(rng, (xmin - 50.0, y0), (xmax + 50.0, y1), wiggle=0.12 * height_m, n_points=400)
    river = shapely.LineString(np.round(river_xy, 2))
    # tributaries: from the river into the hills
    n_trib = max(1, int(round(ctx.area_km2 / 50.0)))
    tribs = []
    for _ in range(n_trib):
        s = rng.uniform(0.1, 0.9)
        p = river.interpolate(s, normalized=True)
        ang = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(0.25, 0.45) * ext
        end = (
            float(np.clip(p.x + length * math.cos(ang), xmin, xmax)),
            float(np.clip(p.y + length * math.sin(ang), ymin, ymax)),
        )
        tribs.append(shapely.LineString(smooth_curve(rng, (p.x, p.y), end, wiggle=0.08 * length, n_points=100)))

    def dist_to(lines: list[Any]) -> np.ndarray:
        mask = rasterize_ids(lines, ctx.shape, ctx.transform, all_touched=True, dtype="uint8") > 0
        return ndimage.distance_transform_edt(~mask).astype(np.float32) * res

    d_river = dist_to([river])
    d_trib = dist_to(tribs)
    fw = float(np.clip(0.05 * ext, 100.0, 600.0))  # flat valley floor half width
    vw = float(np.clip(0.09 * ext, 250.0, 1500.0))
    v_river = smoothstep((d_river - fw) / vw)
    v_trib = smoothstep((d_trib - 0.3 * fw) / (0.5 * vw))
    valley = np.minimum(v_river, 0.2 + 0.8 * v_trib).astype(np.float32)
    del v_trib, d_trib
    # terraced hillsides: flat treads and steep risers about every 25 m of height
    terr_mask = smoothstep((smooth_noise(rng, ctx.shape, min(1500.0, 0.4 * ext) / res) + 0.2) / 0.8)
    k_levels = 15.0
    hk = hills * k_levels
    step = np.floor(hk)
    treads = (step + smoothstep((hk - step - 0.6) / 0.4)) / k_levels
    hills = hills * (1 - terr_mask) + treads * terr_mask
    del hk, step, treads
    rough = smooth_noise(rng, ctx.shape, max(30.0 / res, 2.0))
    z = hills * valley + 0.0015 * rough * valley * (1 - terr_mask)
    del terr_mask
    del rough
    # a gentle fall along the river (about 10 m across the region): a flat floor
    xs = ctx.grid.coords()["x"]
    z = z + (0.03 * (1.0 - (xs - xmin) / width_m))[None, :].astype(np.float32) * (1 - valley)
    z = (z - z.min()) / max(float(np.ptp(z)), 1e-6)
    dem = (20.0 + 380.0 * z).astype(np.float32)
    return {
        "dem": dem,
        "river": river,
        "tributaries": tribs,
        "d_river": d_river,
        "valley": valley,
        "floor_half_width": fw,
    }


def _water(ctx: _Ctx, terr: dict[str, Any]) -> dict[str, Any]:
    rng = ctx.rng("water")
    hw = float(np.clip(0.004 * min(ctx.shape) * ctx.res, 12.0, 40.0))
    river_poly = _round_geom(shapely.intersection(terr["river"].buffer(hw, quad_segs=4), ctx.box))
    n_ponds = max(2, int(round(ctx.area_km2 / 10.0)))
    cand = (terr["valley"] < 0.05) & (terr["d_river"] > hw + 80.0)
    margin = np.zeros(ctx.shape, bool)
    m = max(int(100.0 / ctx.res), 2)
    margin[m:-m, m:-m] = True
    pts = poisson_points(rng, (cand & margin).astype(np.float32) + 1e-6 * margin, ctx.transform, n_ponds, 300.0)
    ponds = [blob_polygon(rng, x, y, rng.uniform(25.0, 70.0), n_vertices=24, roughness=0.25) for x, y in pts]
    ponds = [p.difference(river_poly) for p in ponds]
    water_geoms = [river_poly, *[p for p in ponds if not p.is_empty]]
    return {"river_poly": river_poly, "ponds": ponds, "water_geoms": water_geoms, "half_width": hw}


# --------------------------------------------------------------------------------------
# villages, settlements, townships, roads
# --------------------------------------------------------------------------------------


def _settlements(ctx: _Ctx, terr: dict[str, Any], slope: np.ndarray, water_mask: np.ndarray) -> dict[str, Any]:
    rng = ctx.rng("settlements")
    dem = terr["dem"]
    elev_n = (dem - 20.0) / 380.0
    margin = np.zeros(ctx.shape, bool)
    m = max(int(0.03 * min(ctx.shape)), 3)
    margin[m:-m, m:-m] = True
    w = (np.exp(-slope / 6.0) * (1.15 - elev_n) + 0.03) * margin * ~water_mask
    n_v = max(6, int(round(ctx.area_km2 / 1.5)))
    spacing = 0.6 * math.sqrt(1.5e6)
    centres = poisson_points(rng, w, ctx.transform, n_v, spacing)
    n_v = len(centres)

    # hamlets: 0-2 per village, 250-500 m from the centre on dry land
    hamlets, parent = [], []
    tree_pts = [tuple(p) for p in centres]
    for v, (cx, cy) in enumerate(centres):
        k = rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2])
        for _ in range(k):
            for _try in range(10):
                ang = rng.uniform(0, 2 * math.pi)
                r = rng.uniform(250.0, 500.0)
                x, y = cx + r * math.cos(ang), cy + r * math.sin(ang)
                xmin, ymin, xmax, ymax = ctx.bounds
                if not (xmin + 60 < x < xmax - 60 and ymin + 60 < y < ymax - 60):
                    continue
                if ctx.sample(water_mask, np.array([[x, y]]))[0] or ctx.sample(slope, np.array([[x, y]]))[0] > 20:
                    continue
                if min((x - px) ** 2 + (y - py) ** 2 for px, py in tree_pts) < 200.0**2:
                    continue
                hamlets.append((round(x, 2), round(y, 2)))
                parent.append(v)
                tree_pts.append((x, y))
                break

    cells = voronoi_cells(centres, ctx.bounds)
    cells = [_round_geom(c) for c in cells]
    village_id = np.arange(1, n_v + 1)

    # townships: farthest-point seeds among the village centres
    n_t = max(2, int(round(ctx.area_km2 / 60.0)))
    n_t = min(n_t, n_v)
    seeds = [int(rng.integers(n_v))]
    d = np.hypot(*(centres - centres[seeds[0]]).T)
    while len(seeds) < n_t:
        nxt = int(np.argmax(d))
        seeds.append(nxt)
        d = np.minimum(d, np.hypot(*(centres - centres[nxt]).T))
    seed_xy = centres[seeds]
    town_of = np.argmin(((centres[:, None, :] - seed_xy[None, :, :]) ** 2).sum(-1), axis=1)
    town_names = [f"T{t + 1:02d}" for t in range(n_t)]

    # population: denser in the valleys
    e_centre = ctx.sample(elev_n, centres)
    density = np.exp(rng.normal(math.log(430.0), 0.45, n_v)) * (1.3 - 0.7 * e_centre)
    density = np.clip(density, 60.0, 2500.0)
    area_km2 = np.array([c.area / 1e6 for c in cells])
    population = np.maximum(np.round(density * area_km2), 10).astype(np.int64)

    villages = ctx.gdf(
        {
            "village_id": village_id,
            "township": [town_names[t] for t in town_of],
            "population": population,
            "area_km2": area_km2,
        },
        cells,
    )
    town_geoms = [_round_geom(shapely.union_all([cells[i] for i in np.flatnonzero(town_of == t)])) for t in range(n_t)]
    townships = ctx.gdf(
        {
            "township_id": np.arange(1, n_t + 1),
            "township": town_names,
            "population": [int(population[town_of == t].sum()) for t in range(n_t)],
            "area_km2": [g.area / 1e6 for g in town_geoms],
        },
        town_geoms,
    )

    pts = np.vstack([centres, np.array(hamlets, dtype=np.float64).reshape(-1, 2)])
    is_centre = np.r_[np.ones(n_v, bool), np.zeros(len(hamlets), bool)]
    # every settlement belongs to the village cell it lies in
    sv = gpd.sjoin(
        ctx.gdf({"i": np.arange(len(pts))}, shapely.points(pts)),
        villages[["village_id", "geometry"]],
        predicate="intersects",
        how="left",
    )
    sv = sv.sort_values(["i", "village_id"]).drop_duplicates("i")
    settlements = ctx.gdf(
        {
            "settlement_id": np.arange(1, len(pts) + 1),
            "village_id": sv["village_id"].to_numpy().astype(np.int64),
            "village_centre": is_centre,
        },
        shapely.points(pts),
    )
    return {
        "villages": villages,
        "townships": townships,
        "settlements": settlements,
        "town_of": town_of,
        "density": population / area_km2,
    }


def _built_up(ctx: _Ctx, st: dict[str, Any], water: dict[str, Any]) -> list[Any]:
    rng = ctx.rng("built-up")
    vill = st["villages"].set_index("village_id")
    geoms = []
    for row in st["settlements"].itertuples():
        if row.village_centre:
            r = float(np.clip(45.0 + vill.loc[row.village_id, "population"] / 20.0, 55.0, 160.0))
        else:
            r = rng.uniform(28.0, 50.0)
        g = blob_polygon(rng, row.geometry.x, row.geometry.y, r, n_vertices=28, roughness=0.35)
        g = shapely.intersection(g.difference(water["river_poly"]), ctx.box)
        geoms.append(_round_geom(g))
    return geoms


def _roads(ctx: _Ctx, st: dict[str, Any]) -> gpd.GeoDataFrame:
    rng = ctx.rng("roads")
    sett = st["settlements"]
    pts = np.column_stack([sett.geometry.x, sett.geometry.y])
    n = len(pts)
    centre = sett["village_centre"].to_numpy()
    xmin, ymin, xmax, ymax = ctx.bounds
    piece_m = 250.0
    vertex_m = 25.0

    links: list[tuple[int, int]] = []
    mst_set: set[tuple[int, int]] = set()
    if n >= 3:
        tri = Delaunay(pts)
        edges = set()
        for s in tri.simplices:
            for a, b in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2])):
                edges.add((min(a, b), max(a, b)))
        edges_arr = np.array(sorted(edges))
        lengths = np.hypot(*(pts[edges_arr[:, 0]] - pts[edges_arr[:, 1]]).T)
        m = coo_matrix((lengths, (edges_arr[:, 0], edges_arr[:, 1])), shape=(n, n))
        mst = minimum_spanning_tree(m).tocoo()
        mst_set = {(min(a, b), max(a, b)) for a, b in zip(mst.row, mst.col, strict=True)}
        med = float(np.median([math.dist(pts[a], pts[b]) for a, b in mst_set]))
        for (a, b), length in zip(map(tuple, edges_arr), lengths, strict=True):
            if (a, b) in mst_set or (length < 1.4 * med and rng.random() < 0.3):
                links.append((int(a), int(b)))
    elif n == 2:
        links = [(0, 1)]
        mst_set = {(0, 1)}

    feats: list[tuple[Any, str]] = []

    def add_curve(xy: np.ndarray, cls: str) -> None:
        xy = np.round(xy, 2)
        n_pts = len(xy)
        per = max(int(round(piece_m / vertex_m)), 1)
        for s in range(0, n_pts - 1, per):
            seg = xy[s : min(s + per, n_pts - 1) + 1]
            if len(seg) >= 2:
                feats.append((shapely.LineString(seg), cls))

    for a, b in links:
        length = math.dist(pts[a], pts[b])
        k = max(int(length / vertex_m), 2)
        xy = smooth_curve(rng, tuple(pts[a]), tuple(pts[b]), wiggle=0.06 * length, n_points=k + 1, harmonics=3)
        xy[:, 0] = np.clip(xy[:, 0], xmin + 1, xmax - 1)
        xy[:, 1] = np.clip(xy[:, 1], ymin + 1, ymax - 1)
        xy[0], xy[-1] = pts[a], pts[b]
        if centre[a] and centre[b]:
            cls = "county" if (a, b) in mst_set else "village"
        else:
            cls = "village"
        add_curve(xy, cls)

    # dead ends: tracks from settlements into the fields and hills
    n_spur = max(2, int(round(0.06 * n)))
    for _ in range(n_spur):
        a = int(rng.integers(n))
        ang = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(300.0, 900.0)
        end = (
            float(np.clip(pts[a, 0] + length * math.cos(ang), xmin + 20, xmax - 20)),
            float(np.clip(pts[a, 1] + length * math.sin(ang), ymin + 20, ymax - 20)),
        )
        length = math.dist(pts[a], end)
        if length < 100:
            continue
        xy = smooth_curve(
            rng, tuple(pts[a]), end, wiggle=0.1 * length, n_points=max(int(length / vertex_m), 2) + 1, harmonics=2
        )
        xy[0] = pts[a]
        add_curve(xy, "track")

    return ctx.gdf(
        {"road_id": np.arange(1, len(feats) + 1), "road_class": [c for _, c in feats]},
        [g for g, _ in feats],
    )


# --------------------------------------------------------------------------------------
# farmland and reclaimed parcels
# --------------------------------------------------------------------------------------


def _farmland(
    ctx: _Ctx, terr: dict[str, Any], slope: np.ndarray, forbidden: shapely.STRtree, d_settle: np.ndarray
) -> gpd.GeoDataFrame:
    rng = ctx.rng("farmland")
    xmin, ymin, xmax, ymax = ctx.bounds
    c = 90.0
    nx_ = int(math.ceil((xmax - xmin) / c))
    ny_ = int(math.ceil((ymax - ymin) / c))
    gx = xmin + np.arange(nx_ + 1) * c
    gy = ymin + np.arange(ny_ + 1) * c
    cx, cy = np.meshgrid(gx, gy)
    jit = rng.uniform(-0.2 * c, 0.2 * c, size=(2, *cx.shape))
    cx = cx + jit[0]
    cy = cy + jit[1]
    quads = np.stack(
        [
            np.stack([cx[:-1, :-1], cy[:-1, :-1]], -1),
            np.stack([cx[:-1, 1:], cy[:-1, 1:]], -1),
            np.stack([cx[1:, 1:], cy[1:, 1:]], -1),
            np.stack([cx[1:, :-1], cy[1:, :-1]], -1),
        ],
        axis=2,
    ).reshape(-1, 4, 2)
    centre = quads.mean(axis=1)
    inside = (
        (quads[..., 0].min(1) > xmin + 5)
        & (quads[..., 0].max(1) < xmax - 5)
        & (quads[..., 1].min(1) > ymin + 5)
        & (quads[..., 1].max(1) < ymax - 5)
    )
    s_slope = ctx.sample(slope, centre)
    s_elev = ctx.sample(terr["dem"], centre)
    s_dset = ctx.sample(d_settle, centre)
    noise = rng.normal(0, 1, len(centre))
    suit = -s_slope / 3.0 - (s_elev - 20.0) / 45.0 - s_dset / 700.0 + 0.6 * noise
    ok = inside & (s_slope < 15.0)
    polys = shapely.polygons(quads)
    hit = np.zeros(len(polys), bool)
    qi, _ = forbidden.query(polys, predicate="intersects")
    hit[qi] = True
    ok &= ~hit
    if not ok.any():
        raise RuntimeError("county demo: no land suitable for farmland; grid too small?")
    share = 0.16 * inside.sum() / max(ok.sum(), 1)
    thr = np.quantile(suit[ok], 1.0 - min(share, 0.9))
    chosen = np.flatnonzero(ok & (suit >= thr) & (rng.random(len(suit)) < 0.92))
    shrink = rng.uniform(0.88, 0.96, len(chosen))
    geoms = []
    for i, f in zip(chosen, shrink, strict=True):
        q = centre[i] + (quads[i] - centre[i]) * f
        geoms.append(_round_geom(shapely.Polygon(q)))
    areas = np.array([g.area / 1e4 for g in geoms])
    return ctx.gdf({"farmland_id": np.arange(1, len(geoms) + 1), "area_ha": areas}, geoms)


def _parcel_shape(rng: np.random.Generator, x: float, y: float, area_m2: float) -> shapely.Polygon:
    """An irregular quadrilateral or pentagon of exactly ``area_m2`` (to the cm grid)."""
    ratio = rng.uniform(1.0, 2.2)
    w = math.sqrt(area_m2 / ratio)
    length = ratio * w
    pts = np.array([[-length / 2, -w / 2], [length / 2, -w / 2], [length / 2, w / 2], [-length / 2, w / 2]])
    pts = pts + rng.normal(0.0, 0.07 * w, size=pts.shape)
    if rng.random() < 0.4:  # a fifth vertex pushed out of one side
        k = int(rng.integers(4))
        a, b = pts[k], pts[(k + 1) % 4]
        mid = (a + b) / 2
        out = mid / max(np.linalg.norm(mid), 1e-9)
        extra = mid + out * rng.uniform(0.05, 0.2) * w
        pts = np.insert(pts, k + 1, extra, axis=0)
    th = rng.uniform(0, math.pi)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    pts = pts @ rot.T
    poly = shapely.Polygon(pts)
    pts = pts * math.sqrt(area_m2 / poly.area)
    return shapely.Polygon(np.round(pts + [x, y], 2))


def _parcels(
    ctx: _Ctx, n_target: int, slope: np.ndarray, candidate: np.ndarray, d_farm: np.ndarray, forbidden: shapely.STRtree
) -> gpd.GeoDataFrame:
    rng = ctx.rng("parcels")
    w = candidate * (0.35 + np.exp(-d_farm / 500.0)) * (slope < 30)
    h_px, w_px = ctx.shape
    xmin, ymin, xmax, ymax = ctx.bounds
    accepted: list[shapely.Polygon] = []
    centres: list[tuple[float, float, float]] = []
    cell = 160.0
    hashgrid: dict[tuple[int, int], list[int]] = {}
    flat_w = w.ravel().astype(np.float64)
    p = flat_w / flat_w.sum()
    tries = 0
    while len(accepted) < n_target and tries < 40:
        tries += 1
        batch = rng.choice(flat_w.size, size=max(2 * n_target, 200), p=p)
        jitter = rng.uniform(0, 1, size=(len(batch), 2))
        areas = np.exp(rng.normal(math.log(0.35), 0.75, len(batch)))
        for k, idx in enumerate(batch):
            a_ha = areas[k]
            if not (0.05 <= a_ha <= 1.5):
                continue
            r, c = divmod(int(idx), w_px)
            x = xmin + (c + jitter[k, 0]) * ctx.res
            y = ymax - (r + jitter[k, 1]) * ctx.res
            poly = _parcel_shape(rng, x, y, a_ha * 1e4)
            if not poly.is_valid:
                continue
            bx0, by0, bx1, by1 = poly.bounds
            if bx0 < xmin + 30 or by0 < ymin + 30 or bx1 > xmax - 30 or by1 > ymax - 30:
                continue
            rad = math.hypot(bx1 - bx0, by1 - by0) / 2 + 4.0
            gx, gy = int(x // cell), int(y // cell)
            clash = False
            for i in (gx - 1, gx, gx + 1):
                for j in (gy - 1, gy, gy + 1):
                    for q in hashgrid.get((i, j), ()):
                        ox, oy, orad = centres[q]
                        if (ox - x) ** 2 + (oy - y) ** 2 < (orad + rad) ** 2:
                            clash = True
                            break
                    if clash:
                        break
                if clash:
                    break
            if clash or len(forbidden.query(poly, predicate="intersects")):
                continue
            hashgrid.setdefault((gx, gy), []).append(len(accepted))
            accepted.append(poly)
            centres.append((x, y, rad))
            if len(accepted) >= n_target:
                break
    if len(accepted) < n_target:
        log.warning("county: placed %d of %d reclaimed parcels (not enough free land)", len(accepted), n_target)
    n = len(accepted)
    return ctx.gdf(
        {
            "parcel_id": np.arange(1, n + 1),
            "reclaim_year": rng.integers(2010, 2020, n),
        },
        accepted,
    )


def _overlay_weights(a: gpd.GeoSeries, b: gpd.GeoSeries) -> pd.DataFrame:
    """Intersection areas of every (a, b) pair that overlaps: columns ia, ib, area."""
    tree = shapely.STRtree(b.values)
    ia, ib = tree.query(a.values, predicate="intersects")
    area = shapely.area(shapely.intersection(a.values[ia], b.values[ib]))
    df = pd.DataFrame({"ia": ia, "ib": ib, "area": area})
    return df[df["area"] > 0]


def _jittered_cells(ctx: _Ctx, rng: np.random.Generator, spacing: float) -> list[Any]:
    """Voronoi cells tiling the region around a jittered lattice of ``spacing`` metres."""
    xmin, ymin, xmax, ymax = ctx.bounds
    gx = np.arange(xmin + spacing / 2, xmax, spacing)
    gy = np.arange(ymin + spacing / 2, ymax, spacing)
    px, py = np.meshgrid(gx, gy)
    pts = np.column_stack([px.ravel(), py.ravel()]) + rng.uniform(-0.4 * spacing, 0.4 * spacing, size=(px.size, 2))
    pts[:, 0] = np.clip(pts[:, 0], xmin + 1, xmax - 1)
    pts[:, 1] = np.clip(pts[:, 1], ymin + 1, ymax - 1)
    return [_round_geom(c) for c in voronoi_cells(np.round(pts, 2), ctx.bounds)]


def _quality_grades(ctx: _Ctx, dem: np.ndarray, slope: np.ndarray) -> gpd.GeoDataFrame:
    rng = ctx.rng("quality-grades")
    cells = _jittered_cells(ctx, rng, spacing=450.0)
    ids = ctx.rasterize(cells)
    n = len(cells)
    e = zonal_mean(ids, dem, n)
    s = zonal_mean(ids, slope, n)
    e = np.where(np.isfinite(e), e, np.nanmean(e))
    s = np.where(np.isfinite(s), s, np.nanmean(s))
    ze = (e - e.mean()) / max(e.std(), 1e-6)
    zs = (s - s.mean()) / max(s.std(), 1e-6)
    natural = 7.0 + 1.0 * ze + 0.8 * zs + rng.normal(0, 1.8, n)
    util = 7.0 + 0.45 * (natural - 7.0) + 0.5 * ze + rng.normal(0, 1.7, n)
    econ = 7.0 + 0.35 * (util - 7.0) + 0.4 * zs + rng.normal(0, 1.9, n)

    def grade(v: np.ndarray) -> np.ndarray:
        return np.clip(np.round(v), 1, 15).astype(np.int64)

    return ctx.gdf(
        {
            "grade_id": np.arange(1, n + 1),
            "natural_grade": grade(natural),
            "utilization_grade": grade(util),
            "economic_grade": grade(econ),
        },
        cells,
    )


def _drivers(
    ctx: _Ctx,
    parcels: gpd.GeoDataFrame,
    dem_da: xr.DataArray,
    slope: np.ndarray,
    aspect_cls: np.ndarray,
    settlements: gpd.GeoDataFrame,
    farmland: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    villages: gpd.GeoDataFrame,
    grades: gpd.GeoDataFrame,
) -> pd.DataFrame:
    n = len(parcels)
    ids = ctx.rasterize(list(parcels.geometry))
    # parcels too small to hold a pixel centre take the pixel under their representative point
    counts = np.bincount(ids.ravel(), minlength=n + 1)[1:]
    dem = np.asarray(dem_da.values)
    x1 = zonal_mean(ids, dem, n)
    x2 = zonal_mean(ids, slope, n)
    asp = zonal_counts(ids, aspect_cls, n, 5)
    x3 = np.argmax(asp, axis=1)
    if (counts == 0).any():
        empty = np.flatnonzero(counts == 0)
        rp = shapely.get_coordinates(parcels.geometry.iloc[empty].representative_point().values)
        r, c = ctx.rowcol(rp)
        x1[empty], x2[empty], x3[empty] = dem[r, c], slope[r, c], aspect_cls[r, c]
        log.info("county: %d parcels hold no pixel centre; used their representative point", len(empty))

    graph = build_road_graph(roads)
    x4 = travel_distance_m(parcels.geometry, settlements.geometry, graph)["distance_m"].to_numpy()
    x5 = travel_distance_m(parcels.geometry, farmland.geometry, graph)["distance_m"].to_numpy()

    ov = _overlay_weights(parcels.geometry, villages.geometry)
    ov = ov.sort_values(["ia", "area", "ib"], ascending=[True, False, True]).drop_duplicates("ia")
    vill_idx = np.full(n, -1)
    vill_idx[ov["ia"].to_numpy()] = ov["ib"].to_numpy()
    dens = (villages["population"] / villages["area_km2"]).to_numpy()
    x6 = dens[vill_idx]
    village_id = villages["village_id"].to_numpy()[vill_idx]

    og = _overlay_weights(parcels.geometry, grades.geometry)
    gw = {}
    for col in ("natural_grade", "utilization_grade", "economic_grade"):
        v = grades[col].to_numpy()[og["ib"].to_numpy()] * og["area"].to_numpy()
        gw[col] = np.bincount(og["ia"], weights=v, minlength=n) / np.bincount(og["ia"], weights=og["area"], minlength=n)
    x10 = shapely.area(parcels.geometry.values) / 1e4
    df = pd.DataFrame(
        {
            "parcel_id": parcels["parcel_id"].to_numpy(),
            "x1_elevation_m": x1,
            "x2_slope_deg": x2,
            "x3_aspect_class": x3.astype(np.int64),
            "x4_settlement_distance_m": x4,
            "x5_farmland_distance_m": x5,
            "x6_population_density_per_km2": x6,
            "x7_natural_grade": gw["natural_grade"],
            "x8_utilization_grade": gw["utilization_grade"],
            "x9_economic_grade": gw["economic_grade"],
            "x10_area_ha": x10,
        }
    )
    df.attrs["village_id"] = village_id
    return df


def _calibrate_intercept(eta_wo: np.ndarray, rate: float) -> float:
    """Intercept giving a mean abandonment probability of ``rate`` (bisection)."""
    lo, hi = -60.0, 60.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(eta_wo + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 6)


def _vif(x: pd.DataFrame) -> dict[str, float]:
    cols = [c for c in x.columns if c != "const"]
    out = {}
    xv = x[cols].to_numpy(dtype=float)
    xv = xv - xv.mean(axis=0)
    for j, c in enumerate(cols):
        y = xv[:, j]
        others = np.delete(xv, j, axis=1)
        beta, *_ = np.linalg.lstsq(others, y, rcond=None)
        resid = y - others @ beta
        ss = float((y**2).sum())
        r2 = 1 - float((resid**2).sum()) / ss if ss > 0 else 0.0
        out[c] = round(1.0 / max(1 - r2, 1e-12), 4)
    return out


# --------------------------------------------------------------------------------------
# land cover
# --------------------------------------------------------------------------------------


def _natural_cover(
    ctx: _Ctx, dem: np.ndarray, slope: np.ndarray, d_settle: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stand-wise natural cover (classes 2-6) and the stand id raster."""
    rng = ctx.rng("stands")
    xmin, ymin, xmax, ymax = ctx.bounds
    spacing = 250.0
    gx = np.arange(xmin + spacing / 2, xmax, spacing)
    gy = np.arange(ymin + spacing / 2, ymax, spacing)
    px, py = np.meshgrid(gx, gy)
    pts = np.column_stack([px.ravel(), py.ravel()]) + rng.uniform(-0.45 * spacing, 0.45 * spacing, size=(px.size, 2))
    pts[:, 0] = np.clip(pts[:, 0], xmin + 1, xmax - 1)
    pts[:, 1] = np.clip(pts[:, 1], ymin + 1, ymax - 1)
    cells = voronoi_cells(pts, ctx.bounds)
    ids = ctx.rasterize(cells)
    n = len(cells)
    e = (zonal_mean(ids, dem, n) - 20.0) / 380.0
    s = zonal_mean(ids, slope, n)
    ds = zonal_mean(ids, d_settle, n)
    e = np.nan_to_num(e, nan=0.5)
    s = np.nan_to_num(s, nan=10.0)
    ds = np.nan_to_num(ds, nan=1000.0)
    u = rng.random(n)
    p_forest = np.clip(0.25 + 1.3 * e + 0.025 * s, 0.05, 0.97)
    forest = u < p_forest
    v = rng.random(n)
    p_sparse = np.clip(0.08 + 0.012 * s + 0.25 * e, 0, 0.5)
    p_other = np.clip(0.45 * np.exp(-ds / 900.0) + 0.1, 0, 0.5)
    ftype = np.where(v < p_sparse, 4, np.where(v < p_sparse + p_other, 3, 2))
    w = rng.random(n)
    otype = np.where(w < 0.35 + 0.4 * e, 5, 6)
    cls = np.where(forest, ftype, otype).astype(np.uint8)
    lut = np.r_[np.uint8(6), cls]
    return lut[ids], ids


# --------------------------------------------------------------------------------------
# Sentinel-2
# --------------------------------------------------------------------------------------

# reflectance (B2, B3, B4, B8, B11, B12): "green" at full greenness, "dry" at none
_GREEN = {
    1: (0.030, 0.072, 0.035, 0.42, 0.20, 0.090),
    2: (0.022, 0.045, 0.024, 0.31, 0.140, 0.060),
    3: (0.030, 0.066, 0.038, 0.37, 0.180, 0.085),
    4: (0.045, 0.075, 0.060, 0.29, 0.215, 0.120),
    5: (0.035, 0.068, 0.050, 0.32, 0.205, 0.105),
    6: (0.040, 0.088, 0.058, 0.35, 0.235, 0.125),
    7: (0.055, 0.065, 0.045, 0.025, 0.012, 0.008),
    8: (0.100, 0.110, 0.120, 0.170, 0.210, 0.190),
    9: (0.150, 0.180, 0.210, 0.270, 0.340, 0.280),
}
_DRY = {
    1: (0.075, 0.105, 0.135, 0.220, 0.300, 0.240),
    2: (0.026, 0.050, 0.032, 0.27, 0.155, 0.072),
    3: (0.040, 0.072, 0.060, 0.27, 0.215, 0.120),
    4: (0.060, 0.085, 0.090, 0.23, 0.260, 0.170),
    5: (0.055, 0.080, 0.085, 0.24, 0.265, 0.175),
    6: (0.070, 0.095, 0.110, 0.24, 0.300, 0.220),
    7: _GREEN[7],
    8: _GREEN[8],
    9: _GREEN[9],
}
# greenness a + b * season(doy) per class (season peaks in late July)
_GREENNESS = {
    2: (0.85, 0.15),
    3: (0.55, 0.40),
    4: (0.45, 0.40),
    5: (0.40, 0.50),
    6: (0.15, 0.80),
    7: (1, 0),
    8: (1, 0),
    9: (1, 0),
}
_CLOUD = (0.42, 0.41, 0.40, 0.43, 0.30, 0.22)
_CIRRUS = (0.10, 0.10, 0.10, 0.11, 0.08, 0.06)


def _season(doy: float) -> float:
    return 0.5 * (1.0 - math.cos(2 * math.pi * (doy - 25.0) / 365.0))


def _rice(doy: np.ndarray) -> np.ndarray:
    """Double-cropped rice greenness (early rice peak mid-June, late rice late September)."""
    return 0.08 + 0.85 * np.maximum(np.exp(-(((doy - 165.0) / 28.0) ** 2)), np.exp(-(((doy - 268.0) / 26.0) ** 2)))


class _Scenes:
    """Sentinel-2 scene maker: static fields held once, one scene computed at a time."""

    def __init__(
        self, ctx: _Ctx, lc: np.ndarray, field_ids: np.ndarray, stand_ids: np.ndarray, dates: list[dt.date]
    ) -> None:
        rng = ctx.rng("s2-static")
        self.ctx = ctx
        self.lc = lc
        self.dates = dates
        n_fields = int(field_ids.max())
        self.field_shift = rng.normal(0.0, 8.0, n_fields + 1).astype(np.float32)
        self.cult_idx = np.flatnonzero(lc.ravel() == 1)
        self.cult_field = field_ids.ravel()[self.cult_idx]
        stand_factor = (1.0 + 0.05 * rng.standard_normal(int(stand_ids.max()) + 1)).astype(np.float32)
        tex = 1.0 + 0.035 * smooth_noise(rng, ctx.shape, 3.0) + 0.02 * rng.standard_normal(ctx.shape, dtype=np.float32)
        tex *= stand_factor[stand_ids]
        self.texture = tex.astype(np.float32)
        rng_cc = ctx.rng("s2-cloud-cover")
        years = sorted({d.year for d in dates})
        cover = np.empty(len(dates))
        self.wedge_date = None
        for y in years:
            idx = [i for i, d in enumerate(dates) if d.year == y]
            cc = rng_cc.beta(0.7, 1.4, len(idx)) * 55.0
            if len(idx) >= 2:
                clear, cloudy = rng_cc.choice(idx, size=2, replace=False)
                cc[idx.index(clear)] = rng_cc.uniform(0.0, 0.8)
                cc[idx.index(cloudy)] = rng_cc.uniform(60.0, 85.0)
                others = [i for i in idx if i != clear]
                if self.wedge_date is None:
                    self.wedge_date = int(rng_cc.choice(others))
            cover[idx] = cc
        self.target_cover_pct = cover
        self.wedge_share = float(rng_cc.uniform(0.06, 0.12))

    def cloud_layer(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(code, alpha, nodata): code 0 clear, 3 shadow, 8/9 cloud, 10 cirrus."""
        ctx = self.ctx
        d = self.dates[i]
        rng = ctx.rng(f"s2-clouds/{d.isoformat()}")
        h, w = ctx.shape
        cc = self.target_cover_pct[i] / 100.0
        code = np.zeros(ctx.shape, np.uint8)
        alpha = np.zeros(ctx.shape, np.float32)
        f = fractal_noise(rng, ctx.shape, 1500.0 / ctx.res, octaves=4, persistence=0.5)
        g = smooth_noise(rng, ctx.shape, 2500.0 / ctx.res)
        sub = f[::4, ::4]
        thick_share = 0.8 * cc
        if thick_share > 0:
            thr = float(np.quantile(sub, 1.0 - thick_share))
            core_thr = float(np.quantile(sub, 1.0 - 0.55 * thick_share))
            thick = f > thr
            core = f > core_thr
            alpha[thick] = 0.45 + 0.4 * np.clip((f[thick] - thr) / max(core_thr - thr, 1e-6), 0, 1)
            alpha[core] = np.minimum(0.85 + 0.1 * (f[core] - core_thr), 1.0)
            # shadows fall to the north-west of the clouds (sun in the south-east)
            k = int(round(rng.uniform(300.0, 600.0) / ctx.res))
            shadow = np.zeros(ctx.shape, bool)
            if k < min(h, w):
                shadow[: h - k, : w - k] = thick[k:, k:]
            shadow &= ~thick
            code[shadow] = 3
        else:
            thick = np.zeros(ctx.shape, bool)
            core = thick
        cirrus_share = 0.2 * cc
        if cirrus_share > 0:
            cthr = float(np.quantile(g[::4, ::4], 1.0 - cirrus_share))
            cirrus = (g > cthr) & ~thick
            code[cirrus] = 10
            alpha[cirrus] = 0.25
        code[thick] = 8
        code[core] = 9
        nodata = np.zeros(ctx.shape, bool)
        if i == self.wedge_date:
            rr, cc_ = np.ogrid[:h, :w]
            score = cc_ / w + 0.35 * rr / h
            nodata = score > np.quantile(score[::4, ::4], 1.0 - self.wedge_share)
            code[nodata] = 0
            alpha[nodata] = 0
        return code, alpha, nodata

    def scene(self, i: int) -> np.ndarray:
        ctx = self.ctx
        d = self.dates[i]
        doy = d.timetuple().tm_yday
        offset = boa_add_offset(processing_baseline(d))
        code, alpha, nodata = self.cloud_layer(i)
        rng = ctx.rng(f"s2-noise/{d.isoformat()}")
        lc = self.lc
        s = _season(doy)
        g_tab = np.zeros(10, np.float32)
        for c, (a, b) in _GREENNESS.items():
            g_tab[c] = a + b * s
        greenness = g_tab[lc]
        gflat = greenness.reshape(-1)
        gflat[self.cult_idx] = _rice(doy + self.field_shift[self.cult_field])
        out = np.zeros((7, *ctx.shape), np.uint16)
        refl_b4 = refl_b8 = None
        shadow = code == 3
        cirrus = code == 10
        for b in range(6):
            green = np.zeros(10, np.float32)
            dry = np.zeros(10, np.float32)
            for c in range(1, 10):
                green[c], dry[c] = _GREEN[c][b], _DRY[c][b]
            r = dry[lc] + (green[lc] - dry[lc]) * greenness
            r *= self.texture
            r += rng.standard_normal(ctx.shape, dtype=np.float32) * np.float32(0.004 + 0.01 * r.mean())
            r = np.clip(r, 0.001, None)
            r[shadow] *= np.float32(0.35)
            if b == 2:
                refl_b4 = r.copy()
            if b == 3:
                refl_b8 = r.copy()
            top = np.where(cirrus, np.float32(_CIRRUS[b]), np.float32(_CLOUD[b]))
            r = r * (1 - alpha) + alpha * top
            dn = np.rint(r * 10000.0) - offset
            dn = np.clip(dn, 1, 65535).astype(np.uint16)
            dn[nodata] = 0
            out[b] = dn
        assert refl_b4 is not None and refl_b8 is not None  # set in the loop (b == 2, b == 3)
        ndvi = (refl_b8 - refl_b4) / (refl_b8 + refl_b4)
        scl = np.where(lc == 7, 6, np.where(ndvi > 0.4, 4, 5)).astype(np.uint8)
        scl[code > 0] = code[code > 0]
        scl[nodata] = 0
        out[6] = scl
        log.info("county: S2 scene %s computed", d.isoformat())
        return out


# --------------------------------------------------------------------------------------
# the other layers
# --------------------------------------------------------------------------------------


def _redline(
    ctx: _Ctx, dem: np.ndarray, slope: np.ndarray, terr: dict[str, Any], water: dict[str, Any], st: dict[str, Any]
) -> gpd.GeoDataFrame:
    valley = terr["valley"]
    rng = ctx.rng("redline")
    ext = min(ctx.shape) * ctx.res
    geoms, kinds = [], []

    def pick(weight: np.ndarray) -> tuple[float, float]:
        p = poisson_points(rng, weight, ctx.transform, 1, 1.0)
        return (float(p[0, 0]), float(p[0, 1])) if len(p) else (float(ctx.box.centroid.x), float(ctx.box.centroid.y))

    scale = max(1, int(round(ctx.area_km2 / 150.0)))
    elev_n = (dem - 20.0) / 380.0
    for _ in range(scale):
        x, y = pick(elev_n**4)
        geoms.append(blob_polygon(rng, x, y, float(np.clip(0.12 * ext, 300.0, 3000.0)), roughness=0.35))
        kinds.append("nature_reserve")
    sett = st["settlements"]
    for _ in range(scale):
        row = sett.iloc[int(rng.integers(len(sett)))]
        geoms.append(
            blob_polygon(
                rng,
                row.geometry.x + rng.uniform(-300, 300),
                row.geometry.y + rng.uniform(-300, 300),
                rng.uniform(150.0, 400.0),
            )
        )
        kinds.append("park")
    river = water["river_poly"]
    for _ in range(scale):
        p = terr["river"].interpolate(rng.uniform(0.15, 0.85), normalized=True)
        r_small = float(np.clip(0.05 * ext, 150.0, 800.0))
        r_large = float(np.clip(0.1 * ext, 300.0, 1500.0))
        zone = p.buffer(r_small, quad_segs=8).union(river.intersection(p.buffer(r_large)).buffer(60.0, quad_segs=4))
        geoms.append(zone)
        kinds.append("drinking_water_source")
    steep = np.clip(slope - 15.0, 0, None) ** 2
    for kind, radius in (("fragile_zone", (200.0, 500.0)), ("geohazard_zone", (80.0, 250.0))):
        for _ in range(scale * (2 if kind == "geohazard_zone" else 1)):
            x, y = pick(steep + 1e-6)
            geoms.append(blob_polygon(rng, x, y, rng.uniform(*radius)))
            kinds.append(kind)
    low = ((valley < 0.1) & (dem < np.quantile(dem, 0.3))).astype(np.float32)
    for _ in range(scale):
        x, y = pick(low + 1e-6)
        geoms.append(blob_polygon(rng, x, y, float(np.clip(0.06 * ext, 150.0, 1200.0)), roughness=0.3))
        kinds.append("flood_storage")
    geoms = [_round_geom(shapely.intersection(g, ctx.box)) for g in geoms]
    return ctx.gdf({"redline_id": np.arange(1, len(geoms) + 1), "kind": kinds}, geoms)


def _soil(ctx: _Ctx, dem: np.ndarray, slope: np.ndarray) -> gpd.GeoDataFrame:
    rng = ctx.rng("soil")
    cells = _jittered_cells(ctx, rng, spacing=900.0)
    n = len(cells)
    ids = ctx.rasterize(cells)
    s = np.nan_to_num(zonal_mean(ids, slope, n), nan=10.0)
    e = np.nan_to_num(zonal_mean(ids, dem, n), nan=100.0)
    u = rng.random(n)
    texture = np.where(
        ((s > 18) & (u < 0.6)) | (u > 0.95),
        "gravelly",
        rng.choice(["loam", "clay", "sand"], size=n, p=[0.5, 0.3, 0.2]),
    ).astype(object)
    depth = np.clip(np.round(125.0 - 3.2 * s - 0.05 * (e - 20) + rng.normal(0, 20, n)), 10, 150).astype(np.int64)
    ph = np.round(np.clip(rng.normal(5.3, 0.6, n), 3.6, 8.2), 1)
    salin = rng.choice(["none", "light", "moderate", "severe"], size=n, p=[0.86, 0.08, 0.04, 0.02]).astype(object)
    polluted = rng.random(n) < 0.05
    drainage = rng.random(n) >= 0.08
    weatherable = np.where(depth < 30, rng.random(n) < 0.5, rng.random(n) < 0.2)
    # make every limiting factor fail somewhere, each in a different unit
    if n >= 7:
        units = rng.choice(n, size=6, replace=False)
        texture[units[0]] = "gravelly"
        polluted[units[1]] = True
        salin[units[2]] = "severe"
        drainage[units[3]] = False
        depth[units[4]], weatherable[units[4]] = 20, False
        ph[units[5]] = 3.8
    return ctx.gdf(
        {
            "soil_id": np.arange(1, n + 1),
            "texture": texture,
            "depth_cm": depth,
            "ph": ph,
            "salinization": salin,
            "polluted": polluted,
            "drainage": drainage,
            "weatherable_bedrock": weatherable,
        },
        cells,
    )


def _irrigation(ctx: _Ctx, water: dict[str, Any], terr: dict[str, Any]) -> gpd.GeoDataFrame:
    rng = ctx.rng("irrigation")
    w = float(np.clip(terr["floor_half_width"] * 1.3, 150.0, 600.0))
    zones = [terr["river"].buffer(w, quad_segs=4)]
    sources = ["river"]
    for p in water["ponds"]:
        if not p.is_empty:
            zones.append(p.buffer(rng.uniform(120.0, 250.0), quad_segs=8))
            sources.append("pond")
    geoms = [_round_geom(shapely.intersection(z, ctx.box)) for z in zones]
    keep = [i for i, g in enumerate(geoms) if not g.is_empty]
    return ctx.gdf(
        {"irrigation_id": np.arange(1, len(keep) + 1), "source": [sources[i] for i in keep]}, [geoms[i] for i in keep]
    )


def _climate(ctx: _Ctx, dem: np.ndarray, terr: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    rng = ctx.rng("climate")
    ext = min(ctx.shape) * ctx.res
    noise = smooth_noise(rng, ctx.shape, min(5000.0, 0.5 * ext) / ctx.res)
    at = 5500.0 - 2.2 * (dem - 20.0) + 60.0 * noise
    # a cold high area (a frost-prone summit basin, synthetic): below 1800 degC.day at
    # its core, centred on the highest ground away from the region's edge
    h_px, w_px = ctx.shape
    mr, mc = max(h_px // 8, 1), max(w_px // 8, 1)
    inner = dem[mr : h_px - mr, mc : w_px - mc]
    r_peak, c_peak = np.unravel_index(int(np.argmax(inner)), inner.shape)
    r_peak, c_peak = r_peak + mr, c_peak + mc
    radius_px = float(np.clip(0.08 * ext, 300.0, 2000.0)) / ctx.res
    rr, cc = np.ogrid[: ctx.shape[0], : ctx.shape[1]]
    dist = np.hypot(rr - r_peak, cc - c_peak) / radius_px
    cold = smoothstep(1.0 - dist)
    at = at - cold * (at - 1500.0)
    # a dry pocket near the river (partly irrigated): below 400 mm
    prec = 1650.0 + 0.6 * (dem - 20.0) + 120.0 * smooth_noise(rng, ctx.shape, min(4000.0, 0.4 * ext) / ctx.res)
    p = terr["river"].interpolate(rng.uniform(0.3, 0.7), normalized=True)
    r0, c0 = ctx.rowcol(np.array([[p.x, p.y + rng.uniform(-0.5, 0.5) * radius_px * ctx.res * 2]]))
    dry = smoothstep(1.0 - np.hypot(rr - r0[0], cc - c0[0]) / (radius_px * 1.2))
    prec = prec - dry * (prec - 340.0)
    at = at.astype(np.float32)
    prec = prec.astype(np.float32)
    info = {
        "accumulated_temperature_below_1800_px": int((at < 1800).sum()),
        "precipitation_below_400_px": int((prec < 400).sum()),
        "cold_area_centre_rowcol": [int(r_peak), int(c_peak)],
    }
    return at, prec, info


def _reference_points(ctx: _Ctx, lc: np.ndarray) -> gpd.GeoDataFrame:
    rng = ctx.rng("reference-points")
    n_per = int(np.clip(10.0 * math.sqrt(ctx.area_km2), 40, 60))
    rows, cols, codes = [], [], []
    for code in LANDCOVER_CLASSES:
        inner = interior_mask(ctx.shape, lc == code, margin=1)
        idx = np.flatnonzero(inner)
        if len(idx) == 0:
            idx = np.flatnonzero(lc == code)
        if len(idx) == 0:
            continue
        pick = np.sort(rng.choice(idx, size=min(n_per, len(idx)), replace=False))
        r, c = np.divmod(pick, ctx.shape[1])
        rows.append(r)
        cols.append(c)
        codes.append(np.full(len(pick), code))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    class_code = np.concatenate(codes)
    x = ctx.bounds[0] + (c + 0.5) * ctx.res
    y = ctx.bounds[3] - (r + 0.5) * ctx.res
    return ctx.gdf(
        {
            "point_id": np.arange(1, len(r) + 1),
            "class_code": class_code.astype(np.int64),
            "class_name": [LANDCOVER_CLASSES[int(k)] for k in class_code],
        },
        shapely.points(np.column_stack([x, y])),
    )


def _forest_polygons(ctx: _Ctx, lc: np.ndarray, parcel_px: np.ndarray, townships: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rng = ctx.rng("forest")
    mask = np.isin(lc, list(FOREST_TYPES)) & ~parcel_px
    geoms, types = [], []
    for geom, value in features.shapes(lc, mask=mask, transform=ctx.transform, connectivity=4):
        g = shapely.geometry.shape(geom)
        if g.area < 0.05e4:  # drop slivers below 0.05 ha
            continue
        geoms.append(g)
        types.append(int(value))
    types_arr = np.array(types, dtype=np.int64)
    gdf = ctx.gdf(
        {"forest_id": np.arange(1, len(geoms) + 1), "forest_type": [FOREST_TYPES[t] for t in types_arr]}, geoms
    )
    rp = gpd.GeoDataFrame(geometry=gdf.representative_point(), crs=ctx.crs)
    j = gpd.sjoin(rp, townships[["township", "geometry"]], predicate="intersects", how="left")
    j = j[~j.index.duplicated()]
    gdf["township"] = j["township"].reindex(gdf.index).fillna(townships["township"].iloc[0]).to_numpy()
    base = {2: 95.0, 3: 55.0, 4: 22.0}
    carbon = np.array([base[t] for t in types_arr]) * np.exp(rng.normal(0, 0.2, len(types_arr)))
    gdf["carbon_mg_ha"] = np.round(carbon, 1)
    gdf["area_ha"] = gdf.geometry.area / 1e4
    return gdf


# --------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------


def make_county(
    grid: Any,
    seed: int,
    *,
    years: Iterable[int] = DEFAULT_COUNTY_YEARS,
    dates_per_year: int = DEFAULT_DATES_PER_YEAR,
    parcels_per_km2: float = 25.0,
    flat_max_deg: float = 2.0,
    abandonment_rate: float = 0.30,
    coefficients: dict[str, Any] | None = None,
    interactions: Iterable[dict[str, Any]] | None = None,
) -> DemoBundle:
    """Generate the county demo on ``grid`` (projected CRS in metres) from ``seed``.

    Parameters
    ----------
    years
        Imagery years; ``dates_per_year`` scenes each (see :func:`scene_dates`). The
        land-cover truth is the state at the last year.
    parcels_per_km2
        Reclaimed parcels per km2 of the region (fewer when land runs out; logged).
    flat_max_deg
        Slope below which a pixel is aspect class 0 (as ``terrain.flat_max_deg``).
    abandonment_rate
        Expected share of abandoned parcels: the intercept is calibrated to it on the
        realised drivers (the coefficients are fixed).
    coefficients, interactions
        The planted model; defaults :data:`DEFAULT_COEFFICIENTS`,
        :data:`DEFAULT_INTERACTIONS`.
    """
    t_start = t0 = time.perf_counter()
    ctx = _Ctx(grid, seed)
    side_m = min(ctx.shape) * ctx.res
    if side_m < MIN_SIDE_M:
        raise ValueError(
            f"county demo: the grid is {grid.width} x {grid.height} px at {ctx.res:g} m ({side_m:g} m on its "
            f"short side); it needs at least {MIN_SIDE_M:g} m a side (e.g. 100 px at 10 m) to hold villages, "
            "roads, farmland and parcels"
        )
    years = tuple(sorted(int(y) for y in years))
    coefficients = dict(DEFAULT_COEFFICIENTS if coefficients is None else coefficients)
    interactions = list(DEFAULT_INTERACTIONS if interactions is None else interactions)
    if ctx.res > 30:
        log.warning("county demo at %.0f m: parcels (0.05-1.5 ha) will hold few pixels", ctx.res)
    log.info(
        "county demo: %d x %d px at %g m (%.1f km2), seed %d", grid.width, grid.height, ctx.res, ctx.area_km2, seed
    )

    terr = _terrain(ctx)
    dem = terr["dem"]
    dem_da = grid.data_array(dem, name="dem")
    slope, aspect = slope_aspect_np(dem_da)
    aspect_cls = aspect_class_np(aspect, slope, flat_max_deg, dem_da)
    del aspect
    t0 = _timed("terrain", t0)

    water = _water(ctx, terr)
    water_mask = ctx.rasterize(water["water_geoms"], dtype="uint8") > 0
    st = _settlements(ctx, terr, slope, water_mask)
    built = _built_up(ctx, st, water)
    built_mask = ctx.rasterize(built, dtype="uint8") > 0
    roads = _roads(ctx, st)
    sett_mask = np.zeros(ctx.shape, bool)
    r, c = ctx.rowcol(np.column_stack([st["settlements"].geometry.x, st["settlements"].geometry.y]))
    sett_mask[r, c] = True
    d_settle = ndimage.distance_transform_edt(~sett_mask).astype(np.float32) * ctx.res
    t0 = _timed(
        f"settlements ({len(st['settlements'])}), villages ({len(st['villages'])}), roads ({len(roads)} pieces)", t0
    )

    forbidden_geoms = [*water["water_geoms"], *built]
    farmland = _farmland(ctx, terr, slope, shapely.STRtree(forbidden_geoms), d_settle)
    farm_mask = ctx.rasterize(list(farmland.geometry), dtype="uint8") > 0
    d_farm = ndimage.distance_transform_edt(~farm_mask).astype(np.float32) * ctx.res
    margin = np.zeros(ctx.shape, bool)
    m = max(int(40.0 / ctx.res), 2)
    margin[m:-m, m:-m] = True
    candidate = margin & ~water_mask & ~built_mask & ~farm_mask
    n_parcels = max(int(round(parcels_per_km2 * ctx.area_km2)), 1)
    parcels = _parcels(
        ctx, n_parcels, slope, candidate, d_farm, shapely.STRtree([*forbidden_geoms, *farmland.geometry])
    )
    del d_farm, candidate
    grades = _quality_grades(ctx, dem, slope)
    t0 = _timed(f"farmland ({len(farmland)} patches), parcels ({len(parcels)}), grades ({len(grades)})", t0)

    drivers = _drivers(
        ctx, parcels, dem_da, slope, aspect_cls, st["settlements"], farmland, roads, st["villages"], grades
    )
    parcels["village_id"] = drivers.attrs.pop("village_id")
    t0 = _timed("parcel drivers", t0)

    # --- abandonment from the planted logit
    x = design_matrix(drivers, interactions)
    beta0 = coefficient_vector(0.0, coefficients, interactions)
    eta_wo = x.to_numpy() @ beta0.reindex(x.columns).to_numpy()
    intercept = _calibrate_intercept(eta_wo, abandonment_rate)
    beta = coefficient_vector(intercept, coefficients, interactions)
    eta = x.to_numpy() @ beta.reindex(x.columns).to_numpy()
    prob = 1.0 / (1.0 + np.exp(-eta))
    abandoned = (ctx.rng("abandonment").random(len(prob)) < prob).astype(np.int64)
    parcels["abandoned_true"] = abandoned
    drivers["abandoned_true"] = abandoned
    parcels = parcels[["parcel_id", "reclaim_year", "village_id", "abandoned_true", "geometry"]]

    # --- land cover
    natural, stand_ids = _natural_cover(ctx, dem, slope, d_settle)
    lc = natural
    rng_rock = ctx.rng("bare-rock")
    slope_smooth = ndimage.uniform_filter(slope, size=max(int(round(70.0 / ctx.res)), 3))
    rock_score = (
        (slope_smooth / 35.0)
        + (dem - 20.0) / 380.0
        + 0.35 * smooth_noise(rng_rock, ctx.shape, max(60.0 / ctx.res, 2.0))
    )
    steep = (slope_smooth > 16.0) & (dem > np.quantile(dem, 0.5))
    del slope_smooth
    thr = np.quantile(rock_score[steep], 0.85) if steep.sum() > 100 else np.quantile(rock_score, 0.997)
    lc[(rock_score >= thr) & (steep | (rock_score >= np.quantile(rock_score, 0.997)))] = 9
    del rock_score
    lc[farm_mask] = 1
    parcel_ids = ctx.rasterize(list(parcels.geometry))
    succession = (
        ctx.rng("succession").choice([3, 4, 5, 6], size=len(parcels) + 1, p=[0.15, 0.15, 0.4, 0.3]).astype(np.uint8)
    )
    parcel_cover = np.where(np.r_[0, abandoned] == 1, succession, 1).astype(np.uint8)
    in_parcel = parcel_ids > 0
    lc[in_parcel] = parcel_cover[parcel_ids[in_parcel]]
    lc[built_mask] = 8
    lc[water_mask] = 7
    lc = lc.astype(np.uint8)
    field_ids = np.zeros(ctx.shape, np.int32)
    farm_ids = ctx.rasterize(list(farmland.geometry))
    field_ids[farm_ids > 0] = farm_ids[farm_ids > 0]
    field_ids[in_parcel] = parcel_ids[in_parcel] + len(farmland)
    del farm_ids
    t0 = _timed("land cover", t0)

    forest = _forest_polygons(ctx, lc, in_parcel, st["townships"])
    redline = _redline(ctx, dem, slope, terr, water, st)
    soil = _soil(ctx, dem, slope)
    irrigation = _irrigation(ctx, water, terr)
    at, prec, climate_info = _climate(ctx, dem, terr)
    refs = _reference_points(ctx, lc)
    t0 = _timed("forest, red line, soil, irrigation, climate, reference points", t0)

    # --- Sentinel-2
    dates = scene_dates(years, dates_per_year)
    scenes = _Scenes(ctx, lc, field_ids, stand_ids, dates)
    del stand_ids
    scene_rows, scene_info = [], []
    rasters: dict[str, tuple[xr.DataArray, dict[str, Any]]] = {}
    for i, d in enumerate(dates):
        code, _, nodata = scenes.cloud_layer(i)
        valid = ~nodata
        n_valid = max(int(valid.sum()), 1)
        cloud = float(np.isin(code[valid], (8, 9, 10)).sum()) / n_valid
        shadow = float((code[valid] == 3).sum()) / n_valid
        del code, nodata, valid
        baseline = processing_baseline(d)
        fname = f"s2/S2_{d:%Y%m%d}.tif"
        scene_rows.append(
            {
                "date": d.isoformat(),
                "file": fname[3:],
                "processing_baseline": baseline,
                "boa_add_offset": boa_add_offset(baseline),
                "cloud_cover_pct": round(100 * cloud, 2),
            }
        )
        scene_info.append(
            {
                "date": d.isoformat(),
                "file": fname,
                "processing_baseline": baseline,
                "boa_add_offset": boa_add_offset(baseline),
                "cloud_fraction": round(cloud, 6),
                "shadow_fraction": round(shadow, 6),
                "nodata_fraction": round(1 - n_valid / lc.size, 6),
            }
        )
        arr = dsa.from_delayed(dask.delayed(scenes.scene)(i), shape=(7, *ctx.shape), dtype=np.uint16)
        da = grid.data_array(arr, name="s2").rename({"dim_0": "band"}).assign_coords(band=np.arange(1, 8))
        rasters[fname] = (da, {"nodata": 0, "dtype": "uint16", "band_names": list(S2_BAND_NAMES)})
    t0 = _timed(f"S2 cloud layers for {len(dates)} dates", t0)

    # --- PLANTED
    rate_count = float(abandoned.mean()) if len(abandoned) else float("nan")
    area = drivers["x10_area_ha"].to_numpy()
    rate_area = float((area * abandoned).sum() / area.sum()) if len(area) else float("nan")
    inter_info = []
    for i, term in enumerate(interactions, start=1):
        flag = x[f"interaction_{i}"].to_numpy() > 0
        inter_info.append(
            {
                "expr": term["expr"],
                "logit_effect": float(term["logit_effect"]),
                "column": f"interaction_{i}",
                "n_parcels": int(flag.sum()),
                "abandonment_rate_inside": float(abandoned[flag].mean()) if flag.any() else None,
                "abandonment_rate_outside": float(abandoned[~flag].mean()) if (~flag).any() else None,
            }
        )
    lc_counts = {str(k): int((lc == k).sum()) for k in LANDCOVER_CLASSES}
    forest_counts = {name: int((forest["forest_type"] == name).sum()) for name in FOREST_TYPES.values()}
    drivers_json = {c: drivers[c].tolist() for c in ["parcel_id", *DRIVER_COLUMNS, "abandoned_true"]}
    planted = {
        "kind": "county",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "grid": grid.to_dict(),
        "options": {
            "years": list(years),
            "dates_per_year": int(dates_per_year),
            "parcels_per_km2": float(parcels_per_km2),
            "flat_max_deg": float(flat_max_deg),
            "abandonment_rate": float(abandonment_rate),
        },
        "landcover_classes": {str(k): v for k, v in LANDCOVER_CLASSES.items()},
        "landcover_pixel_counts": lc_counts,
        "abandonment": {
            "model": (
                "logit: P(abandoned) = 1 / (1 + exp(-eta)), eta = intercept + sum(b * x) + sum(interaction effects)"
            ),
            "intercept": intercept,
            "intercept_note": (
                f"calibrated so that the mean planted probability is {abandonment_rate} on the realised drivers"
            ),
            "coefficients": coefficients,
            "aspect_reference_class": 0,
            "aspect_classes": {str(k): v for k, v in ASPECT_NAMES.items()},
            "design_columns": list(x.columns),
            "coefficient_vector": {k: float(v) for k, v in beta.items()},
            "interactions": inter_info,
            "drivers": {k: {"column": c, "meaning": m, "method": DRIVER_METHODS[c]} for k, (c, m) in DRIVERS.items()},
            "driver_values": drivers_json,
            "driver_values_file": "parcels_truth.csv",
            "driver_summary": {
                c: {
                    "mean": float(drivers[c].mean()),
                    "sd": float(drivers[c].std()),
                    "min": float(drivers[c].min()),
                    "max": float(drivers[c].max()),
                }
                for c in DRIVER_COLUMNS
            },
            "aspect_class_counts": {str(k): int((drivers["x3_aspect_class"] == k).sum()) for k in range(5)},
            "vif": _vif(x.drop(columns=[c for c in x.columns if c.startswith("interaction_")])),
            "n_parcels": int(len(parcels)),
            "n_abandoned": int(abandoned.sum()),
            "mean_planted_probability": float(prob.mean()) if len(prob) else None,
            "rate_by_count": rate_count,
            "rate_by_area": rate_area,
            "abandoned_cover": (
                "abandoned parcels show other forest land, sparse forest land, shrub or grassland; "
                "used ones cultivated"
            ),
        },
        "forest_polygons_per_type": forest_counts,
        "farmland_patches": int(len(farmland)),
        "settlements": int(len(st["settlements"])),
        "villages": int(len(st["villages"])),
        "townships": int(len(st["townships"])),
        "road_pieces": int(len(roads)),
        "reference_points_per_class": {str(k): int((refs["class_code"] == k).sum()) for k in LANDCOVER_CLASSES},
        "redline_kinds": {k: int((redline["kind"] == k).sum()) for k in REDLINE_KINDS},
        "soil_units": int(len(soil)),
        "climate": climate_info,
        "s2": {
            "bands": list(S2_BAND_NAMES),
            "scenes_csv_note": (
                "read processing_baseline as a string (pandas: dtype={'processing_baseline': str}), it looks numeric"
            ),
            "dn_formula": (
                "DN = round(reflectance * 10000) - boa_add_offset (boa_add_offset = -1000 for processing "
                "baseline >= 04.00, i.e. from 2022-01-25); DN 0 = nodata"
            ),
            "scl_codes": {
                "0": "no data",
                "3": "cloud shadow",
                "4": "vegetation",
                "5": "not vegetated",
                "6": "water",
                "8": "cloud medium probability",
                "9": "cloud high probability",
                "10": "thin cirrus",
            },
            "dates": scene_info,
            "baseline_04_dates": [s["date"] for s in scene_info if s["processing_baseline"] == "04.00"],
            "offset_dates": [s["date"] for s in scene_info if s["boa_add_offset"] == -1000],
            "offset_note": (
                "offset_dates: baseline >= 04.00 (04.00 from 2022-01-25, 05.09 from 2022-12-06), DN carries +1000"
            ),
            "nodata_wedge_date": dates[scenes.wedge_date].isoformat() if scenes.wedge_date is not None else None,
        },
    }

    rasters = {
        "dem.tif": (dem_da, {"nodata": float("nan")}),
        "landcover.tif": (
            grid.data_array(lc, name="landcover"),
            {"nodata": LANDCOVER_NODATA, "dtype": "uint8", "colormap": LANDCOVER_COLOURS},
        ),
        "accumulated_temperature.tif": (grid.data_array(at, name="accumulated_temperature"), {"nodata": float("nan")}),
        "precipitation.tif": (grid.data_array(prec, name="precipitation"), {"nodata": float("nan")}),
        **rasters,
    }
    vectors = {
        "parcels.gpkg": parcels,
        "villages.gpkg": st["villages"],
        "settlements.gpkg": st["settlements"],
        "roads.gpkg": roads,
        "farmland.gpkg": farmland,
        "quality_grades.gpkg": grades,
        "forest.gpkg": forest,
        "redline.gpkg": redline,
        "soil.gpkg": soil,
        "irrigation.gpkg": irrigation,
        "townships.gpkg": st["townships"],
        "reference_points.gpkg": refs,
    }
    tables = {
        "s2/scenes.csv": pd.DataFrame(scene_rows),
        "parcels_truth.csv": drivers[["parcel_id", *DRIVER_COLUMNS, "abandoned_true"]],
    }
    log.info(
        "county demo ready: %d parcels, abandonment %.1f%% by count (%.1f%% by area), %.1f s",
        len(parcels), 100 * rate_count, 100 * rate_area, time.perf_counter() - t_start,
    )
    return DemoBundle(rasters=rasters, vectors=vectors, cubes={}, tables=tables, planted=planted)
