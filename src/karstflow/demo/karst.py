"""The karst demo: a karst watershed shaped like the southwest China karst study.

:func:`make_karst` builds, on a given grid and from one seed:

* a plateau DEM with peak-cluster cones on carbonate rock and a river valley;
* carbonate lithology (about 65 % of the region);
* land cover at the first and the last year (same legend as the county demo);
* annual growing-season NDVI with PLANTED trends: greening zones (rocky-desertification
  restoration and afforestation, +0.008/yr by default), browning zones (degradation and
  urban growth around settlements, -0.006/yr), stable land (no trend); a common
  interannual anomaly with exactly zero mean and zero trend; independent noise; a few
  missing years in some pixels;
* bedrock exposure whose rocky-desertification area (exposure >= threshold on
  carbonate) shrinks by the planted share (48 % by default, as 129,600 -> 67,400 km2);
* climate (temperature, precipitation, solar radiation, reference ET) per year and per
  month (a Guizhou-like annual cycle whose months aggregate to the annual cube) and soil;
* InVEST-style carbon pools and biophysical tables.

The annual cubes are dask-backed, one chunk per year computed from that year's own
random stream, so memory stays bounded at large sizes and every value is reproducible.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import dask
import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from scipy import ndimage

from karstflow.demo import (
    DEFAULT_KARST_YEARS,
    LANDCOVER_CLASSES,
    LANDCOVER_COLOURS,
    LANDCOVER_NODATA,
    DemoBundle,
)
from karstflow.demo._fields import (
    blob_polygon,
    component_rng,
    fractal_noise,
    poisson_points,
    rasterize_ids,
    slope_aspect_np,
    smooth_curve,
    smooth_noise,
    smoothstep,
    voronoi_cells,
)

log = logging.getLogger("karstflow.demo")

GENERATOR_VERSION = "karst-1"

#: Monthly climate of the karst demo: a Guizhou-like annual cycle (shapes close to the
#: climate normals of Guiyang, rounded). Temperature offsets from the annual mean (degC;
#: centred again when used), and the shares of the annual precipitation and solar radiation.
MONTHLY_TEMPERATURE_OFFSET_C = np.array(
    [-10.4, -8.4, -4.4, 0.8, 4.6, 7.2, 8.8, 8.3, 5.3, 0.7, -3.8, -8.5], dtype=np.float64
)
MONTHLY_PRECIPITATION_SHARE = np.array([20, 23, 33, 84, 190, 218, 184, 128, 100, 92, 47, 20], dtype=np.float64)
MONTHLY_SOLAR_SHARE = np.array([190, 215, 290, 360, 410, 405, 510, 495, 385, 280, 225, 190], dtype=np.float64)
#: Variables of climate_monthly.nc, in the units of karstflow.climate.MONTHLY_VARIABLES.
MONTHLY_CLIMATE_ATTRS: dict[str, dict[str, str]] = {
    "temperature_c": {"long_name": "monthly mean air temperature", "units": "degC"},
    "precipitation_mm": {"long_name": "monthly precipitation", "units": "mm month-1"},
    "solar_mj_m2": {"long_name": "monthly total solar radiation", "units": "MJ m-2 month-1"},
    "eto_mm": {"long_name": "monthly reference evapotranspiration", "units": "mm month-1"},
}

ZONE_STABLE, ZONE_GREENING, ZONE_BROWNING = 0, 1, 2
ZONE_NAMES = {ZONE_STABLE: "stable", ZONE_GREENING: "greening", ZONE_BROWNING: "browning"}

#: Growing-season NDVI of each class at the first year (before texture and trends).
BASE_NDVI = {1: 0.50, 2: 0.78, 3: 0.70, 4: 0.55, 5: 0.50, 6: 0.42, 7: -0.05, 8: 0.12, 9: 0.15}

#: Carbon pools (Mg C/ha), InVEST ``carbon`` convention. Plausible subtropical values:
#: forest biomass and soil carbon after Fang et al. (China's forest carbon, Science
#: 2001) and Piao et al. (Nature 2009), karst soils thinner and poorer (Guizhou).
CARBON_POOLS = pd.DataFrame(
    [
        (1, "cultivated", 5.0, 1.0, 55.0, 0.0),
        (2, "forested land", 60.0, 15.0, 100.0, 5.0),
        (3, "other forest land", 35.0, 9.0, 85.0, 3.0),
        (4, "sparse forest land", 18.0, 5.0, 65.0, 2.0),
        (5, "shrub", 12.0, 6.0, 60.0, 1.5),
        (6, "grassland", 3.0, 4.0, 50.0, 0.5),
        (7, "water", 0.0, 0.0, 0.0, 0.0),
        (8, "built-up", 1.0, 0.0, 20.0, 0.0),
        (9, "bare rock", 0.5, 0.2, 8.0, 0.0),
    ],
    columns=["lucode", "lulc_name", "c_above", "c_below", "c_soil", "c_dead"],
)

#: Biophysical table (InVEST conventions): root depth (mm) and crop coefficient Kc
#: as in the InVEST annual water yield sample data / FAO-56 (annual means; rice paddies
#: and evergreen forest near 1), ``lulc_veg`` 1 for vegetated classes, USLE cover C and
#: practice P factors as commonly used for southern China (Wischmeier & Smith 1978 for
#: C; terraced cropland P 0.35).
BIOPHYSICAL = pd.DataFrame(
    [
        (1, "cultivated", 1500, 0.80, 1, 0.23, 0.35),
        (2, "forested land", 5000, 1.00, 1, 0.006, 1.0),
        (3, "other forest land", 4000, 0.95, 1, 0.01, 1.0),
        (4, "sparse forest land", 3000, 0.85, 1, 0.06, 1.0),
        (5, "shrub", 2500, 0.80, 1, 0.03, 1.0),
        (6, "grassland", 1500, 0.70, 1, 0.04, 1.0),
        (7, "water", 1, 1.05, 0, 0.0, 1.0),
        (8, "built-up", 1, 0.30, 0, 0.0, 1.0),
        (9, "bare rock", 1, 0.20, 0, 0.8, 1.0),
    ],
    columns=["lucode", "lulc_name", "root_depth_mm", "kc", "lulc_veg", "usle_c", "usle_p"],
)


class _Ctx:
    def __init__(self, grid: Any, seed: int, years: tuple[int, ...]) -> None:
        self.grid = grid
        self.seed = int(seed)
        self.shape = grid.shape
        self.res = float(grid.resolution)
        self.transform = grid.transform
        self.bounds = tuple(float(b) for b in grid.bounds)
        self.box = shapely.box(*self.bounds)
        self.area_km2 = grid.width * grid.height * self.res**2 / 1e6
        self.ext = min(self.shape) * self.res
        self.crs = grid.crs
        self.years = years

    def rng(self, name: str) -> np.random.Generator:
        return component_rng(self.seed, f"karst/{name}")

    def rasterize(self, geoms: list[Any], **kw: Any) -> np.ndarray:
        return rasterize_ids(geoms, self.shape, self.transform, **kw)


def _terrain(ctx: _Ctx) -> dict[str, Any]:
    rng = ctx.rng("terrain")
    res, ext = ctx.res, ctx.ext
    xmin, ymin, xmax, ymax = ctx.bounds
    lith = smooth_noise(rng, ctx.shape, min(4000.0, 0.5 * ext) / res)
    carbonate = lith > np.quantile(lith, 0.35)
    soft = smoothstep((lith - np.quantile(lith, 0.35)) / 0.4 + 0.5)
    base = fractal_noise(rng, ctx.shape, min(6000.0, 0.6 * ext) / res, octaves=5, persistence=0.5)
    cones = np.clip(smooth_noise(rng, ctx.shape, max(250.0 / res, 2.0)), 0, None) ** 1.3
    y0 = ymin + (ymax - ymin) * rng.uniform(0.3, 0.7)
    y1 = ymin + (ymax - ymin) * rng.uniform(0.3, 0.7)
    river = shapely.LineString(
        np.round(smooth_curve(rng, (xmin - 50, y0), (xmax + 50, y1), wiggle=0.1 * (ymax - ymin), n_points=300), 2)
    )
    mask = ctx.rasterize([river], all_touched=True, dtype="uint8") > 0
    d_river = ndimage.distance_transform_edt(~mask).astype(np.float32) * res
    valley = smoothstep((d_river - 60.0) / float(np.clip(0.15 * ext, 300.0, 2500.0)))
    dem = 900.0 + 250.0 * base + 140.0 * cones * soft
    dem = (dem - dem.min()) * valley + 5.0 * smooth_noise(rng, ctx.shape, max(90.0 / res, 2.0))
    # the plateau: 760 m at the river to 1,500 m on the highest peaks
    dem = (760.0 + 740.0 * (dem - dem.min()) / max(float(np.ptp(dem)), 1e-6)).astype(np.float32)
    return {"dem": dem, "carbonate": carbonate, "river": river, "d_river": d_river, "valley": valley}


def _landcover_first(ctx: _Ctx, terr: dict[str, Any], slope: np.ndarray) -> dict[str, Any]:
    rng = ctx.rng("landcover")
    dem, carb = terr["dem"], terr["carbonate"]
    river_poly = shapely.intersection(terr["river"].buffer(float(np.clip(0.006 * ctx.ext, 20.0, 60.0))), ctx.box)
    water = ctx.rasterize([river_poly], all_touched=True, dtype="uint8") > 0
    n_sett = max(2, int(round(ctx.area_km2 / 8.0)))
    w = np.exp(-slope / 5.0) * ~water * (terr["valley"] < 0.8)
    pts = poisson_points(rng, w + 1e-6, ctx.transform, n_sett, float(np.clip(0.25 * ctx.ext, 300.0, 2500.0)))
    built_geoms = [blob_polygon(rng, x, y, rng.uniform(60.0, 150.0), n_vertices=24) for x, y in pts]
    built = (ctx.rasterize(built_geoms, dtype="uint8") > 0) & ~water
    relief = dem - ndimage.uniform_filter(dem, size=max(int(600.0 / ctx.res), 3))
    cult_score = -slope / 6.0 - relief / 25.0 + 0.6 * smooth_noise(rng, ctx.shape, max(200.0 / ctx.res, 2.0))
    free = ~water & ~built
    cult = free & (cult_score > np.quantile(cult_score[free], 0.8))

    # bedrock exposure at the first year: rocky desertification (RD) patches on carbonate
    rd_field = smooth_noise(rng, ctx.shape, max(400.0 / ctx.res, 2.0)) + slope / 30.0
    eligible = carb & free & ~cult
    rd = eligible & (rd_field > np.quantile(rd_field[eligible], 0.55)) if eligible.any() else eligible
    e0 = np.zeros(ctx.shape, np.float32)
    low = smooth_noise(rng, ctx.shape, max(200.0 / ctx.res, 2.0))
    low = (low - low.min()) / max(float(np.ptp(low)), 1e-6)
    e0[carb] = (0.03 + 0.2 * low[carb] + rng.uniform(-0.02, 0.02, int(carb.sum()))).clip(0.02, 0.25)
    if rd.any():
        z = rd_field[rd]
        z = (z - z.min()) / max(float(np.ptp(z)), 1e-6)
        e0[rd] = (0.35 + 0.45 * z + rng.uniform(-0.03, 0.03, z.size)).clip(0.35, 0.85)
    e0[cult | water | built] = np.where(carb[cult | water | built], 0.05, 0.0)

    # natural cover in patches: forests off carbonate, shrub/grass/sparse forest on it
    patch = smooth_noise(rng, ctx.shape, max(150.0 / ctx.res, 2.0))
    pr = (patch - patch.min()) / max(float(np.ptp(patch)), 1e-6)
    nat = np.where(
        carb,
        np.select([pr < 0.35, pr < 0.6, pr < 0.8], [5, 6, 4], 3),
        np.select([pr < 0.45, pr < 0.7, pr < 0.85], [2, 3, 5], 6),
    ).astype(np.uint8)
    lc = nat.copy()
    lc[rd & (e0 >= 0.5)] = 9
    lc[rd & (e0 < 0.5)] = np.where(pr[rd & (e0 < 0.5)] < 0.5, 6, 5)
    lc[cult] = 1
    lc[built] = 8
    lc[water] = 7
    return {
        "lc": lc,
        "e0": e0,
        "rd": rd,
        "cult": cult,
        "built": built,
        "water": water,
        "settlements": pts,
        "built_geoms": built_geoms,
    }


def _zones(
    ctx: _Ctx, terr: dict[str, Any], lc0: dict[str, Any], slope: np.ndarray, rd_reduction: float
) -> dict[str, Any]:
    rng = ctx.rng("zones")
    rd = lc0["rd"]
    lc = lc0["lc"]
    # restoration: the planted share of the RD area, in coherent patches
    f = smooth_noise(rng, ctx.shape, max(500.0 / ctx.res, 2.0))
    restore = np.zeros(ctx.shape, bool)
    if rd.any():
        vals = f[rd]
        k = int(round(rd_reduction * vals.size))
        if k > 0:
            thr = np.sort(vals)[::-1][k - 1]
            restore = rd & (f >= thr)
    # afforestation (Grain for Green: sloping cropland, grass and shrub) off the RD area
    g = smooth_noise(rng, ctx.shape, max(700.0 / ctx.res, 2.0))
    cand = ~rd & np.isin(lc, (1, 5, 6, 4)) & ((lc != 1) | (slope > 8.0))
    afforest = cand & (g > np.quantile(g[cand], 0.6)) if cand.any() else cand
    greening = restore | afforest
    # browning: degradation and urban growth within reach of settlements
    near = np.zeros(ctx.shape, bool)
    if len(lc0["settlements"]):
        blobs = [
            blob_polygon(rng, x, y, float(np.clip(0.1 * ctx.ext, 250.0, 900.0)), roughness=0.4)
            for x, y in lc0["settlements"]
        ]
        near = ctx.rasterize(blobs, dtype="uint8") > 0
    browning = near & ~greening & ~lc0["water"] & ~lc0["built"] & ~rd
    zone = np.full(ctx.shape, ZONE_STABLE, np.uint8)
    zone[greening] = ZONE_GREENING
    zone[browning] = ZONE_BROWNING
    return {"zone": zone, "restore": restore, "afforest": afforest}


def _landcover_last(ctx: _Ctx, lc0: dict[str, Any], zones: dict[str, Any]) -> np.ndarray:
    rng = ctx.rng("landcover-last")
    lc = lc0["lc"].copy()
    zone = zones["zone"]
    restore, afforest = zones["restore"], zones["afforest"]
    u = smooth_noise(rng, ctx.shape, max(150.0 / ctx.res, 2.0))
    u = np.argsort(np.argsort(u.ravel())).reshape(u.shape) / u.size  # uniform ranks, in patches
    lc[restore] = np.where(u[restore] < 0.6, 5, 4)
    aff_to = np.where(u < 0.5, 3, np.where(u < 0.8, 2, 4)).astype(np.uint8)
    lc[afforest] = aff_to[afforest]
    brown = zone == ZONE_BROWNING
    degrade = np.array([0, 8, 4, 4, 4, 6, 6, 7, 8, 9], np.uint8)  # cultivated -> built-up
    lc[brown] = degrade[lc[brown]]
    return lc


def make_karst(
    grid: Any,
    seed: int,
    *,
    years: Iterable[int] = DEFAULT_KARST_YEARS,
    greening_slope: float = 0.008,
    browning_slope: float = -0.006,
    noise_sd: float = 0.02,
    anomaly_sd: float = 0.015,
    missing_pixel_share: float = 0.04,
    rd_threshold: float = 0.3,
    rd_reduction: float = 0.48,
    population_cell_px: int = 8,
    population_beta: float = -0.02,
) -> DemoBundle:
    """Generate the karst demo on ``grid`` (projected CRS in metres) from ``seed``.

    Parameters
    ----------
    years
        Years of the annual cubes (consecutive or not); land cover is written for the
        first and the last.
    greening_slope, browning_slope
        Planted NDVI trends (per year) in the greening and browning zones.
    noise_sd
        Standard deviation of the independent per-pixel, per-year NDVI noise.
    anomaly_sd
        Standard deviation of the common interannual NDVI anomaly (zero mean and zero
        trend by construction, so it never biases a per-pixel trend).
    missing_pixel_share
        Share of pixels with 1-3 missing (NaN) years.
    rd_threshold
        Bedrock exposure from which a carbonate pixel counts as rocky desertification.
    rd_reduction
        Planted relative reduction of the RD area from the first to the last year.
    population_cell_px, population_beta
        Cells (pixels square) on which the population effect is planted, and the planted
        coefficient of the cell's relative population change on its mean NDVI slope
        (:mod:`karstflow.demo.population`).
    """
    t_start = time.perf_counter()
    years = tuple(sorted(int(y) for y in years))
    if len(years) < 2:
        raise ValueError(f"karst demo needs at least two years, found {years}")
    ctx = _Ctx(grid, seed, years)
    y_first, y_last = years[0], years[-1]
    yrs = np.array(years, dtype=np.float64)
    log.info(
        "karst demo: %d x %d px at %g m (%.1f km2), years %d-%d, seed %d",
        grid.width,
        grid.height,
        ctx.res,
        ctx.area_km2,
        y_first,
        y_last,
        seed,
    )

    terr = _terrain(ctx)
    dem = terr["dem"]
    dem_da = grid.data_array(dem, name="dem")
    slope, _ = slope_aspect_np(dem_da)
    lc0 = _landcover_first(ctx, terr, slope)
    zones = _zones(ctx, terr, lc0, slope, rd_reduction)
    lc_last = _landcover_last(ctx, lc0, zones)
    zone = zones["zone"]
    carb = terr["carbonate"]

    # --- NDVI
    rng = ctx.rng("ndvi")
    lut = np.zeros(10, np.float32)
    for k, v in BASE_NDVI.items():
        lut[k] = v
    base = lut[lc0["lc"]] + 0.03 * smooth_noise(rng, ctx.shape, max(120.0 / ctx.res, 2.0))
    rd0 = lc0["rd"]
    base[rd0] = 0.62 - 0.7 * lc0["e0"][rd0]
    base = base.astype(np.float32)
    slope_map = np.zeros(ctx.shape, np.float32)
    slope_map[zone == ZONE_GREENING] = greening_slope
    slope_map[zone == ZONE_BROWNING] = browning_slope
    a = rng.normal(0.0, anomaly_sd, len(years))
    design = np.column_stack([np.ones_like(yrs), yrs - yrs.mean()])
    a = a - design @ np.linalg.lstsq(design, a, rcond=None)[0]  # zero mean, zero trend
    anomaly = {y: float(v) for y, v in zip(years, a, strict=True)}
    # missing values: a few pixels lose 1-3 years
    n_px = base.size
    n_miss_px = int(round(missing_pixel_share * n_px))
    miss_px = np.sort(rng.choice(n_px, size=n_miss_px, replace=False)) if n_miss_px else np.empty(0, np.int64)
    miss_k = rng.integers(1, 4, n_miss_px)
    miss_year: dict[int, list[int]] = {y: [] for y in years}
    for p, k in zip(miss_px, miss_k, strict=True):
        for yi in rng.choice(len(years), size=min(int(k), len(years)), replace=False):
            miss_year[years[int(yi)]].append(int(p))
    miss_idx = {y: np.array(v, dtype=np.int64) for y, v in miss_year.items()}
    n_missing = int(sum(len(v) for v in miss_idx.values()))

    def ndvi_year(y: int) -> np.ndarray:
        r = component_rng(ctx.seed, f"karst/ndvi-noise/{y}")
        v = (
            base
            + slope_map * np.float32(y - y_first)
            + np.float32(anomaly[y])
            + r.standard_normal(ctx.shape, dtype=np.float32) * np.float32(noise_sd)
        )
        v = np.clip(v, -0.1, 0.95).astype(np.float32)
        v.reshape(-1)[miss_idx[y]] = np.nan
        return v

    # --- bedrock exposure
    e0 = lc0["e0"]
    restore = zones["restore"]
    rng_e = ctx.rng("exposure")
    e_end = e0.copy()
    e_end[restore] = rng_e.uniform(0.08, 0.25, int(restore.sum())).astype(np.float32)
    span = float(y_last - y_first)

    def exposure_year(y: int) -> np.ndarray:
        r = component_rng(ctx.seed, f"karst/exposure-noise/{y}")
        frac = np.float32((y - y_first) / span)
        e = e0 + (e_end - e0) * frac
        noise = r.normal(0.0, 0.01, ctx.shape).astype(np.float32)
        e = e + noise * carb
        # keep every pixel on its planted side of the threshold
        stay_rd = rd0 & ~restore
        e = np.where(stay_rd, np.maximum(e, rd_threshold + 0.01), e)
        e = np.where(carb & ~rd0, np.minimum(e, rd_threshold - 0.02), e)
        if y == y_last:
            e = np.where(restore, np.minimum(e, rd_threshold - 0.02), e)
        if y == y_first:
            e = np.where(rd0, np.maximum(e, rd_threshold + 0.01), e)
        e = np.where(carb, e, 0.0)
        return np.clip(e, 0.0, 1.0).astype(np.float32)

    # --- climate
    rng_c = ctx.rng("climate")
    sm1 = smooth_noise(rng_c, ctx.shape, min(8000.0, 0.5 * ctx.ext) / ctx.res)
    sm2 = smooth_noise(rng_c, ctx.shape, min(8000.0, 0.5 * ctx.ext) / ctx.res)
    t0 = (19.4 - 0.0055 * (dem - 760.0) + 0.15 * sm1).astype(np.float32)
    p0 = (1180.0 + 0.12 * (dem - 760.0) + 50.0 * sm2).astype(np.float32)
    rs0 = (4150.0 - 0.35 * (dem - 760.0) - 80.0 * sm1).astype(np.float32)
    trends = {"temperature_c_per_yr": 0.025, "precipitation_mm_per_yr": 1.5, "solar_mj_m2_per_yr": -4.0}
    a_t = rng_c.normal(0, 0.3, len(years))
    a_p = rng_c.normal(0, 0.06, len(years))
    a_r = rng_c.normal(0, 90.0, len(years))
    ai = {y: i for i, y in enumerate(years)}

    def climate_year(y: int, var: str) -> np.ndarray:
        r = component_rng(ctx.seed, f"karst/climate/{var}/{y}")
        i = ai[y]
        dy = np.float32(y - y_first)
        sp = smooth_noise(r, ctx.shape, min(5000.0, 0.4 * ctx.ext) / ctx.res)
        if var == "temperature_c":
            return (t0 + trends["temperature_c_per_yr"] * dy + np.float32(a_t[i]) + 0.15 * sp).astype(np.float32)
        if var == "precipitation_mm":
            return ((p0 + trends["precipitation_mm_per_yr"] * dy) * np.float32(1 + a_p[i]) * (1 + 0.03 * sp)).astype(
                np.float32
            )
        if var == "solar_mj_m2":
            return (rs0 + trends["solar_mj_m2_per_yr"] * dy + np.float32(a_r[i]) + 40.0 * sp).astype(np.float32)
        raise ValueError(var)

    def eto_year(y: int) -> np.ndarray:
        """Reference ET (mm) from that year's temperature and radiation fields
        (a radiation-driven Makkink/Priestley-Taylor-like form)."""
        temp = climate_year(y, "temperature_c")
        rs = climate_year(y, "solar_mj_m2")
        return (0.58 * rs / 2.45 * (1 + 0.025 * (temp - 17.0))).astype(np.float32)

    coords = {"year": np.array(years, dtype=np.int32), **grid.coords()}

    def cube(fn: Any, name: str, attrs: dict[str, Any]) -> xr.DataArray:
        arrs = [dsa.from_delayed(dask.delayed(fn)(y), shape=ctx.shape, dtype=np.float32) for y in years]
        da = xr.DataArray(dsa.stack(arrs), dims=("year", "y", "x"), coords=coords, name=name, attrs=attrs)
        return da

    def georef(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
        # keep the CF grid_mapping link as an attribute: karstflow.io.write_netcdf passes
        # its own per-variable encoding, which replaces (drops) encoding["grid_mapping"]
        for var in ds.data_vars.values():
            gm = var.encoding.pop("grid_mapping", None)
            if gm:
                var.attrs["grid_mapping"] = gm
        return ds

    ndvi_ds = georef(xr.Dataset({"ndvi": cube(ndvi_year, "ndvi", {"long_name": "growing-season NDVI", "units": "1"})}))
    expo_ds = georef(
        xr.Dataset(
            {
                "bedrock_exposure": cube(
                    exposure_year,
                    "bedrock_exposure",
                    {"long_name": "bedrock exposure (rock outcrop fraction)", "units": "1"},
                )
            }
        )
    )
    clim_ds = georef(
        xr.Dataset(
            {
                "temperature_c": cube(
                    lambda y: climate_year(y, "temperature_c"),
                    "temperature_c",
                    {"long_name": "annual mean air temperature", "units": "degC"},
                ),
                "precipitation_mm": cube(
                    lambda y: climate_year(y, "precipitation_mm"),
                    "precipitation_mm",
                    {"long_name": "annual precipitation", "units": "mm"},
                ),
                "solar_mj_m2": cube(
                    lambda y: climate_year(y, "solar_mj_m2"),
                    "solar_mj_m2",
                    {"long_name": "annual total solar radiation", "units": "MJ m-2"},
                ),
                "eto_mm": cube(eto_year, "eto_mm", {"long_name": "annual reference evapotranspiration", "units": "mm"}),
            }
        )
    )

    # --- monthly climate: each year's annual values spread over a Guizhou-like annual cycle
    # (shapes close to the climate normals of Guiyang, rounded; illustrative), so that the
    # months aggregate exactly to climate.nc (mean of the monthly temperatures, sums of the
    # rest) and monthly CASA (carbon.time_step: monthly) sees a real seasonal cycle
    d_t = MONTHLY_TEMPERATURE_OFFSET_C - MONTHLY_TEMPERATURE_OFFSET_C.mean()
    f_p = MONTHLY_PRECIPITATION_SHARE / MONTHLY_PRECIPITATION_SHARE.sum()
    f_s = MONTHLY_SOLAR_SHARE / MONTHLY_SOLAR_SHARE.sum()

    def climate_months(y: int, var: str) -> np.ndarray:
        if var == "eto_mm":
            t_m = climate_months(y, "temperature_c")
            rs_m = climate_months(y, "solar_mj_m2")
            raw = 0.58 * rs_m / 2.45 * (1 + 0.025 * (t_m - 17.0))
            return (eto_year(y)[None] * raw / raw.sum(axis=0)).astype(np.float32)
        annual = climate_year(y, var)[None]
        if var == "temperature_c":
            return (annual + d_t[:, None, None]).astype(np.float32)
        share = f_p if var == "precipitation_mm" else f_s
        return (annual * share[:, None, None]).astype(np.float32)

    month_starts = pd.date_range(f"{y_first}-01-01", periods=12 * len(years), freq="MS").values
    monthly_coords = {"time": month_starts, **grid.coords()}

    def monthly_cube(var: str) -> xr.DataArray:
        arrs = [
            dsa.from_delayed(dask.delayed(climate_months)(y, var), shape=(12, *ctx.shape), dtype=np.float32)
            for y in years
        ]
        spec = MONTHLY_CLIMATE_ATTRS[var]
        return xr.DataArray(dsa.concatenate(arrs), dims=("time", "y", "x"), coords=monthly_coords, name=var, attrs=spec)

    clim_monthly_ds = georef(xr.Dataset({v: monthly_cube(v) for v in MONTHLY_CLIMATE_ATTRS}))

    # --- soil
    rng_s = ctx.rng("soil")
    sn = smooth_noise(rng_s, ctx.shape, max(300.0 / ctx.res, 2.0))
    depth = np.where(carb, 420.0 - 450.0 * e0 + 60.0 * sn, 1000.0 + 250.0 * sn)
    depth = np.where(lc0["water"], 0.0, np.clip(depth, 30.0, 1600.0))
    clay = np.where(carb, 45.0 + 7.0 * sn, 25.0 + 6.0 * sn)
    silt = np.where(carb, 35.0 - 4.0 * sn, 35.0 + 5.0 * smooth_noise(rng_s, ctx.shape, max(300.0 / ctx.res, 2.0)))
    # a large grid reaches the noise's far tails (4000 px: clay -1.4 %): keep fractions that add
    # to 100 % and each at least 1 % (the tiny and county demos never reach the bounds)
    clay = np.clip(clay, 1.0, 80.0)
    silt = np.clip(silt, 1.0, 99.0 - clay)
    sand = 100.0 - clay - silt
    pawc = np.where(carb, 0.11, 0.16) + 0.02 * sn
    oc = np.where(np.isin(lc0["lc"], (2, 3)), 3.0, np.where(lc0["lc"] == 9, 1.0, 2.0)) + 0.4 * sn
    soil_ds = georef(
        xr.Dataset(
            {
                "soil_depth_mm": (("y", "x"), depth.astype(np.float32), {"units": "mm", "long_name": "soil depth"}),
                "pawc": (
                    ("y", "x"),
                    np.clip(pawc, 0.02, 0.3).astype(np.float32),
                    {"units": "1", "long_name": "plant available water content (fraction)"},
                ),
                "sand_pct": (("y", "x"), sand.astype(np.float32), {"units": "%"}),
                "silt_pct": (("y", "x"), silt.astype(np.float32), {"units": "%"}),
                "clay_pct": (("y", "x"), clay.astype(np.float32), {"units": "%"}),
                "organic_carbon_pct": (("y", "x"), np.clip(oc, 0.3, 6.0).astype(np.float32), {"units": "%"}),
            },
            coords=grid.coords(),
        )
    )

    # --- townships
    rng_t = ctx.rng("townships")
    n_t = max(2, int(round(ctx.area_km2 / 60.0)))
    w = np.ones(ctx.shape, np.float32)
    pts = poisson_points(rng_t, w, ctx.transform, n_t, 0.5 * math.sqrt(ctx.area_km2 / n_t) * 1000.0)
    if len(pts) < 2:
        xmin, ymin, xmax, ymax = ctx.bounds
        pts = np.array(
            [[xmin + 0.25 * (xmax - xmin), (ymin + ymax) / 2], [xmin + 0.75 * (xmax - xmin), (ymin + ymax) / 2]]
        )
    cells = [shapely.set_precision(c, 0.01) for c in voronoi_cells(pts, ctx.bounds)]
    townships = gpd.GeoDataFrame(
        {
            "township_id": np.arange(1, len(cells) + 1),
            "township": [f"K{i + 1:02d}" for i in range(len(cells))],
            "area_km2": [c.area / 1e6 for c in cells],
        },
        geometry=cells,
        crs=grid.crs,
    )

    # --- population: a gridded series and a township table, planted on the coupling cells
    from karstflow.demo.population import plant_population

    pop = plant_population(
        ctx.rng("population"),
        ctx.shape,
        ctx.res,
        years,
        slope_map,
        slope,
        ctx.rasterize(list(townships.geometry)),
        cell_px=population_cell_px,
        beta=population_beta,
    )
    pop_ds = georef(
        xr.Dataset(
            {
                "population": xr.DataArray(
                    pop["cube"],
                    dims=("year", "y", "x"),
                    coords=coords,
                    name="population",
                    attrs={"long_name": "resident population", "units": "persons per pixel"},
                )
            }
        )
    )

    # --- PLANTED figures
    px_km2 = ctx.res**2 / 1e6
    e_first = exposure_year(y_first)
    e_last = exposure_year(y_last)
    rd_first = int((carb & (e_first >= rd_threshold)).sum())
    rd_last = int((carb & (e_last >= rd_threshold)).sum())
    rd_series = {}
    for y in years:
        e = e_first if y == y_first else e_last if y == y_last else exposure_year(y)
        rd_series[str(y)] = round(int((carb & (e >= rd_threshold)).sum()) * px_km2, 6)
    del e_first, e_last
    n_zone = {ZONE_NAMES[k]: int((zone == k).sum()) for k in ZONE_NAMES}
    planted = {
        "kind": "karst",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "grid": grid.to_dict(),
        "years": list(years),
        "landcover_classes": {str(k): v for k, v in LANDCOVER_CLASSES.items()},
        "landcover_pixel_counts": {
            str(y_first): {str(k): int((lc0["lc"] == k).sum()) for k in LANDCOVER_CLASSES},
            str(y_last): {str(k): int((lc_last == k).sum()) for k in LANDCOVER_CLASSES},
        },
        "carbonate": {"pixels": int(carb.sum()), "share": float(carb.mean())},
        "ndvi": {
            "variable": "ndvi",
            "model": (
                "ndvi = base + slope_zone * (year - first_year) + anomaly(year) + N(0, noise_sd), "
                "clipped to [-0.1, 0.95]"
            ),
            "zones_file": "trend_zones_truth.tif",
            "zone_codes": {str(k): v for k, v in ZONE_NAMES.items()},
            "slopes_per_year": {"greening": greening_slope, "browning": browning_slope, "stable": 0.0},
            "zones": {
                name: {
                    "code": code,
                    "pixels": n_zone[name],
                    "share": n_zone[name] / zone.size,
                    "area_km2": n_zone[name] * px_km2,
                }
                for code, name in ZONE_NAMES.items()
            },
            "greening_parts": {
                "rocky_desertification_restoration_pixels": int(zones["restore"].sum()),
                "afforestation_pixels": int((zones["afforest"] & ~zones["restore"]).sum()),
            },
            "noise_sd": noise_sd,
            "interannual_anomaly_sd": anomaly_sd,
            "interannual_anomaly": {str(y): round(v, 8) for y, v in anomaly.items()},
            "anomaly_note": "the common anomaly has exactly zero mean and zero OLS trend over the years",
            "missing": {
                "pixels_with_missing_years": n_miss_px,
                "missing_values": n_missing,
                "missing_fraction": n_missing / (n_px * len(years)),
                "years_missing_per_pixel": "1 to 3",
            },
            "valid_range": [-0.1, 0.95],
        },
        "rocky_desertification": {
            "definition": f"bedrock_exposure >= {rd_threshold} on carbonate (carbonate.tif == 1)",
            "exposure_threshold": rd_threshold,
            "first_year": {"year": y_first, "pixels": rd_first, "area_km2": rd_first * px_km2},
            "last_year": {"year": y_last, "pixels": rd_last, "area_km2": rd_last * px_km2},
            "relative_reduction": (rd_first - rd_last) / rd_first if rd_first else None,
            "planted_reduction": rd_reduction,
            "area_km2_by_year": rd_series,
            "reference": "southwest China karst: 129,600 -> 67,400 km2 (2005-2021), a 48 % reduction",
            "restoration": (
                "restored pixels lose exposure linearly to 0.08-0.25 by the last year; NDVI rises there (greening zone)"
            ),
        },
        "climate": {
            "trends": trends,
            "temperature_c": "19.4 - 0.0055 * (dem - 760) + spatial noise + trend + annual anomaly (sd 0.3)",
            "precipitation_mm": "(1180 + 0.12 * (dem - 760) + spatial noise + trend) * (1 + annual anomaly, sd 0.06)",
            "solar_mj_m2": "4150 - 0.35 * (dem - 760) + spatial noise + trend + annual anomaly (sd 90)",
            "eto_mm": "0.58 * solar / 2.45 * (1 + 0.025 * (temperature - 17))",
            "monthly": {
                "file": "climate_monthly.nc",
                "model": (
                    "each year's annual values over a Guizhou-like cycle: temperature + offset (zero mean), "
                    "precipitation and solar x monthly share, ETo from the monthly formula rescaled to the "
                    "annual ETo; the months aggregate to climate.nc"
                ),
                "temperature_offset_c": [round(float(v), 4) for v in d_t],
                "precipitation_share": [round(float(v), 6) for v in f_p],
                "solar_share": [round(float(v), 6) for v in f_s],
            },
        },
        "population": pop["planted"],
        "tables": {
            "population_townships.csv": "resident and registered population per township and year (owner's names)",
            "carbon_pools.csv": "Mg C/ha per class (InVEST carbon)",
            "biophysical.csv": "root_depth_mm, kc, lulc_veg, usle_c, usle_p",
        },
    }

    lc_kwargs = {"nodata": LANDCOVER_NODATA, "dtype": "uint8", "colormap": LANDCOVER_COLOURS}
    rasters: dict[str, tuple[xr.DataArray, dict[str, Any]]] = {
        "dem.tif": (dem_da, {"nodata": float("nan")}),
        "carbonate.tif": (grid.data_array(carb.astype(np.uint8), name="carbonate"), {"nodata": 255, "dtype": "uint8"}),
        f"landcover_{y_first}.tif": (grid.data_array(lc0["lc"], name="landcover"), lc_kwargs),
        f"landcover_{y_last}.tif": (grid.data_array(lc_last, name="landcover"), lc_kwargs),
        "trend_zones_truth.tif": (grid.data_array(zone, name="trend_zones"), {"nodata": 255, "dtype": "uint8"}),
    }
    cubes = {
        "ndvi_annual.nc": ndvi_ds,
        "bedrock_exposure.nc": expo_ds,
        "climate.nc": clim_ds,
        "climate_monthly.nc": clim_monthly_ds,
        "soil.nc": soil_ds,
        "population.nc": pop_ds,
    }
    tables = {
        "carbon_pools.csv": CARBON_POOLS.copy(),
        "biophysical.csv": BIOPHYSICAL.copy(),
        "population_townships.csv": pop["table"],
    }
    log.info(
        "karst demo ready: greening %.1f%%, browning %.1f%%, RD %.2f -> %.2f km2 (-%.0f%%), %.1f s",
        100 * n_zone["greening"] / zone.size,
        100 * n_zone["browning"] / zone.size,
        rd_first * px_km2,
        rd_last * px_km2,
        100 * (planted["rocky_desertification"]["relative_reduction"] or 0),
        time.perf_counter() - t_start,
    )
    return DemoBundle(
        rasters=rasters, vectors={"townships.gpkg": townships}, cubes=cubes, tables=tables, planted=planted
    )
