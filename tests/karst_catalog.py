"""A generated multi-year karst STAC catalogue on disk with planted signals (end-to-end tests).

:func:`build_karst_catalog` writes, under one folder, a static STAC catalog (pystac) of five
collections that look like the products the karst workflow reads, and the static files a
user would add themselves:

* ``landsat-c2-l2``: Landsat Collection 2 Level-2 surface reflectance (assets ``blue``,
  ``red``, ``nir08``, ``swir16``, ``swir22``, ``qa_pixel``; uint16 COGs, nodata 0, ``raster:bands`` scale 2.75e-05 and
  offset -0.2 as in the USGS Collection 2 Level-2 Science Product Guides LSDS-1618/1619),
  Landsat 5 TM 2010-2011, Landsat 7 ETM+ 2012, Landsat 8 OLI 2013-2017; two scenes a year
  (mid-June with a cloud blob, mid-August with a cloud-shadow blob elsewhere) and a fill
  strip in the margin. TM/ETM+ scenes store the inverse of the Roy et al. (2016) ETM+ to
  OLI functions (:data:`karstflow.sensors.ROY2016_ETM_TO_OLI`), so harmonised reflectance
  gives back the OLI-scale truth. Every clear pixel is a linear mix of three end-member
  spectra (:data:`ENDMEMBERS`: vegetation, soil, rock) with the fractions of
  :func:`truth_fractions`: the vegetation fraction gives the planted NDVI, the rock
  fraction (:func:`truth_rock`) is the planted bedrock exposure;
* ``modis-13Q1-061``: MOD13Q1 v061 16-day composites (``250m_16_days_NDVI``/``_EVI`` int16 x
  1e-4, nodata -3000; ``250m_16_days_pixel_reliability`` int8; ``250m_16_days_blue/red/NIR/
  MIR_reflectance`` int16 x 1e-4, nodata -1000, the same surface mix as Landsat sees) in the
  MODIS sinusoidal CRS on the real MODIS grid (tile h27v06), 2016-2021, two a season, NDVI
  carrying the planted :data:`SENSOR_OFFSET` (MODIS reads higher than Landsat) and a cloudy
  blob with a wrong low NDVI and bright reflectance in the July composite;
* ``terraclimate-monthly``: monthly climate COGs on a 0.04 degree EPSG:4326 grid (TerraClimate-
  like variables and units), a deterministic Guizhou-like seasonal cycle (:func:`truth_climate`);
* ``esa-worldcover``: ESA WorldCover 2020 (v100) and 2021 (v200) ``map`` (uint8 codes) on a
  0.00027 degree grid, a zone-tied pattern that changes between the years (:func:`truth_landcover`);

and, served as static files under the same root, a SoilGrids-like layout
(``soilgrids/{prop}/{prop}_{depth}_mean.vrt`` pointing at a COG by a relative path, in the
Interrupted Goode Homolosine CRS at 250 m like ISRIC's SoilGrids 2.0), a lithology
GeoPackage with the user's own column ``LITH_CODE`` and an AOI GeoPackage.

The region is :data:`REGION_BOUNDS` in :data:`CRS` at :data:`RESOLUTION` m (100 x 100 px),
split into three vertical zones (:func:`zone_of`): a greening west third, a browning middle
third and a stable east third (:func:`truth_ndvi`, OLI-scale NDVI).

:func:`serve_catalog` serves the catalog with ``tests/stac_server.py`` (stac-fastapi-static
plus a static mount of the catalog folder, which answers HTTP range requests) in a uvicorn
subprocess on a free 127.0.0.1 port.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from karstflow.sensors import ROY2016_ETM_TO_OLI

# -- the region and the planted truth ------------------------------------------------------
CRS = "EPSG:32648"  # UTM 48N (Guizhou)
RESOLUTION = 30.0
REGION_BOUNDS = (570000.0, 2931000.0, 573000.0, 2934000.0)  # (west, south, east, north), 100 x 100 px
YEARS: tuple[int, ...] = tuple(range(2010, 2022))
SEASON_MONTHS: tuple[int, ...] = (5, 6, 7, 8, 9)
#: Landsat years: 2017 (Landsat 8) overlaps MODIS for two years (2016, 2017).
LANDSAT_YEARS: tuple[int, ...] = tuple(range(2010, 2018))
MODIS_YEARS: tuple[int, ...] = tuple(range(2016, 2022))
#: Planted MODIS minus Landsat (OLI-scale) NDVI offset.
SENSOR_OFFSET = 0.04
GREENING_SLOPE = 0.015
BROWNING_SLOPE = -0.010
STABLE_NDVI = 0.55
GREENING_NDVI_2010 = 0.40
BROWNING_NDVI_2010 = 0.65
ZONE_EDGES = (571000.0, 572000.0)  # x of the west/middle and middle/east boundaries
ZONES = ("greening", "browning", "stable")
CARBONATE_UNITS: tuple[str, ...] = ("C2h", "P1m")
LITHOLOGY_UNITS = {"greening": "C2h", "browning": "P1m", "stable": "T3s"}
LITHOLOGY_NAMES = {
    "C2h": "Huanglong Formation limestone",
    "P1m": "Maokou Formation limestone and dolomite",
    "T3s": "Upper Triassic sandstone",
}

COLLECTIONS = {
    "landsat": "landsat-c2-l2",
    "modis": "modis-13Q1-061",
    "climate": "terraclimate-monthly",
    "landcover": "esa-worldcover",
}

# -- Landsat --------------------------------------------------------------------------------
LANDSAT_MARGIN = 600.0
LANDSAT_SCALE = 2.75e-05
LANDSAT_OFFSET = -0.2
#: OLI-scale surface reflectance (blue, red, nir, swir16, swir22) of the three end-members
#: every clear pixel mixes linearly: green vegetation, red karst soil (clay and iron oxides
#: absorb in the SWIR) and bare limestone (bright, flat, brighter than the soil in the SWIR),
#: shaped after the USGS spectral library (Kokaly et al. 2017). NDVI 0.875, 0.25, 0.085.
ENDMEMBERS: dict[str, dict[str, float]] = {
    "vegetation": {"blue": 0.03, "red": 0.03, "nir": 0.45, "swir16": 0.20, "swir22": 0.09},
    "soil": {"blue": 0.07, "red": 0.15, "nir": 0.25, "swir16": 0.35, "swir22": 0.28},
    "rock": {"blue": 0.20, "red": 0.27, "nir": 0.32, "swir16": 0.42, "swir22": 0.38},
}
REFLECTANCE_LAYERS = ("blue", "red", "nir", "swir16", "swir22")
#: Rock share of the non-vegetated part of a pixel, per zone: rock = share x (1 - vegetation).
ROCK_SHARE = {"greening": 0.8, "browning": 0.6, "stable": 0.3}
LANDSAT_PLATFORMS = {2010: "landsat-5", 2011: "landsat-5", 2012: "landsat-7"} | {
    y: "landsat-8" for y in range(2013, 2018)
}
LANDSAT_DAYS = ((6, 15), (8, 15))  # mid-June (cloud blob) and mid-August (shadow blob)
#: Cloud core (QA bit 3) and dilated ring (bit 1) in June; cloud shadow (bit 4) in August:
#: (centre x, centre y, radius m). The three never overlap, so each pixel has >= 1 clear obs.
CLOUD_BLOB = (571300.0, 2933100.0, 350.0)
CLOUD_DILATION = 100.0  # ring width of the dilated-cloud bit around the core
SHADOW_BLOB = (572300.0, 2931700.0, 300.0)
FILL_STRIP_WEST = REGION_BOUNDS[0] - LANDSAT_MARGIN + 300.0  # x < this: fill (bit 0, DN 0), in the margin
# reflectance of the flagged pixels (platform scale, not harmonised): deliberately wrong NDVI
CLOUD_REFL = {"blue": 0.35, "red": 0.30, "nir": 0.32, "swir16": 0.30, "swir22": 0.25}
DILATED_REFL = {"blue": 0.16, "red": 0.15, "nir": 0.20, "swir16": 0.18, "swir22": 0.15}
SHADOW_REFL = {"blue": 0.015, "red": 0.02, "nir": 0.03, "swir16": 0.02, "swir22": 0.015}
LANDSAT_ASSETS = {
    "blue": "blue",
    "red": "red",
    "nir": "nir08",
    "swir16": "swir16",
    "swir22": "swir22",
    "qa_pixel": "qa_pixel",
}
WRS_PATH, WRS_ROW = 127, 42

# -- MODIS ----------------------------------------------------------------------------------
MODIS_CRS = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_PIXEL = 231.65635826395825  # 926.625433055833 / 4 (MODIS land grid, 4800 px per tile)
MODIS_ORIGIN = (-20015109.355798, 10007554.677899)  # upper-left of the global sinusoidal grid
MODIS_TILE_PX = 4800
MODIS_MARGIN = 1000.0
MODIS_DOYS = (193, 225)  # 16-day composites starting in July (the cloudy one) and August (non-leap DOY)
MODIS_CLOUDY_DOY = 193  # the composite of each year with the cloudy blob
MODIS_CLOUD_BLOB = (571700.0, 2932300.0, 500.0)  # in CRS (UTM) coordinates of pixel centres
MODIS_CLOUD_NDVI = 0.1
MODIS_EVI_FACTOR = 0.6
MODIS_FILL_NORTH = REGION_BOUNDS[3] + 700.0  # pixel centres north of this (UTM y) are fill (-1)
#: MOD13Q1 reflectance assets (x 1e-4, fill -1000) -> the end-member band they carry
#: (MODIS band 3 blue, 1 red, 2 nir, 7 MIR 2.1 um ~ Landsat swir22)
MODIS_REFLECTANCE_ASSETS = {
    "250m_16_days_blue_reflectance": "blue",
    "250m_16_days_red_reflectance": "red",
    "250m_16_days_NIR_reflectance": "nir",
    "250m_16_days_MIR_reflectance": "swir22",
}
MODIS_ASSETS = (
    "250m_16_days_NDVI",
    "250m_16_days_EVI",
    "250m_16_days_pixel_reliability",
    *MODIS_REFLECTANCE_ASSETS,
)

# -- climate --------------------------------------------------------------------------------
CLIMATE_RES = 0.04
CLIMATE_VARS: dict[str, dict[str, Any]] = {  # dtype, scale, unit, description
    "tmmx": {"dtype": "int16", "scale": 0.1, "unit": "degC", "title": "Maximum temperature"},
    "tmmn": {"dtype": "int16", "scale": 0.1, "unit": "degC", "title": "Minimum temperature"},
    "pr": {"dtype": "float32", "scale": None, "unit": "mm", "title": "Precipitation"},
    "srad": {"dtype": "int16", "scale": 0.1, "unit": "W m-2", "title": "Downward shortwave radiation"},
    "pet": {"dtype": "int16", "scale": 0.1, "unit": "mm", "title": "Reference evapotranspiration"},
    "vap": {"dtype": "int16", "scale": 0.001, "unit": "kPa", "title": "Vapour pressure"},
    "vs": {"dtype": "int16", "scale": 0.01, "unit": "m s-1", "title": "Wind speed"},
}

# -- land cover -----------------------------------------------------------------------------
WORLDCOVER_RES = 0.00027
WORLDCOVER_YEARS = {2020: "v100", 2021: "v200"}
WORLDCOVER_CODES = {10: "tree", 20: "shrub", 30: "grass", 40: "crop", 50: "built", 60: "bare", 80: "water"}
LANDCOVER_BAND = 300.0  # the pattern is made of 300 m east-west bands, cycling through 5 classes
LANDCOVER_PATTERN: dict[tuple[int, str], tuple[int, ...]] = {
    (2020, "greening"): (10, 20, 30, 40, 20),
    (2021, "greening"): (10, 10, 10, 40, 20),  # shrub and grass became tree
    (2020, "browning"): (10, 30, 40, 10, 20),
    (2021, "browning"): (60, 40, 40, 60, 20),  # tree became bare, grass became crop
    (2020, "stable"): (10, 30, 50, 80, 40),
    (2021, "stable"): (10, 30, 50, 80, 40),
}

# -- SoilGrids ------------------------------------------------------------------------------
SOIL_CRS = "+proj=igh +lat_0=0 +lon_0=0 +datum=WGS84 +units=m +no_defs"
SOIL_RES = 250.0
SOIL_MARGIN = 1000.0
SOIL_NODATA = -32768
SOIL_DEPTHS = ("0-5cm", "5-15cm", "15-30cm", "30-60cm", "60-100cm", "100-200cm")
#: Mean values per depth in SoilGrids' stored units (sand/silt/clay g/kg, soc dg/kg, bdod cg/cm3):
#: sand + silt + clay = 1000 g/kg at each depth; soc falls and bulk density rises with depth.
SOIL_VALUES: dict[str, tuple[int, ...]] = {
    "sand": (300, 295, 290, 280, 270, 260),
    "clay": (300, 310, 320, 340, 360, 380),
    "silt": (400, 395, 390, 380, 370, 360),
    "soc": (150, 110, 80, 50, 30, 20),
    "bdod": (120, 125, 130, 135, 140, 145),
}
SOIL_UNITS = {"sand": "g/kg", "silt": "g/kg", "clay": "g/kg", "soc": "dg/kg", "bdod": "cg/cm3"}


def zone_of(x: Any) -> Any:
    """Zone name of CRS x (m): ``greening`` west of 571000, ``browning`` to 572000, else ``stable``.

    A scalar gives a ``str``, an array an array of ``str``.
    """
    xa = np.asarray(x, dtype=float)
    z = np.where(xa < ZONE_EDGES[0], ZONES[0], np.where(xa < ZONE_EDGES[1], ZONES[1], ZONES[2]))
    return str(z) if z.ndim == 0 else z


def truth_ndvi(year: int, x: Any, y: Any = None) -> Any:
    """OLI-scale true growing-season NDVI of ``year`` at CRS x (m); ``y`` does not matter.

    West: 0.40 + 0.015 (year - 2010); middle: 0.65 - 0.010 (year - 2010); east: 0.55.
    """
    xa = np.asarray(x, dtype=float)
    if y is not None:
        xa = xa + np.zeros_like(np.asarray(y, dtype=float))
    t = year - 2010
    out = np.where(
        xa < ZONE_EDGES[0],
        GREENING_NDVI_2010 + GREENING_SLOPE * t,
        np.where(xa < ZONE_EDGES[1], BROWNING_NDVI_2010 + BROWNING_SLOPE * t, STABLE_NDVI),
    )
    return float(out) if out.ndim == 0 else out


def truth_fractions(year: int, x: Any) -> dict[str, np.ndarray]:
    """Vegetation, soil and rock fractions (summing to 1) of a clear pixel at CRS x in ``year``.

    Rock is :data:`ROCK_SHARE` of the zone times the non-vegetated part; the vegetation
    fraction is the one whose linear mix of :data:`ENDMEMBERS` has the NDVI of
    :func:`truth_ndvi`: with nir = v Nv + (1 - v) Nb and red likewise (Nb, Rb of the bare
    mix), NDVI = t gives v = (t (Nb + Rb) - (Nb - Rb)) / ((Nv - Rv) - (Nb - Rb) - t ((Nv + Rv) - (Nb + Rb))).
    """
    t = np.asarray(truth_ndvi(year, x), dtype=float)
    share = np.vectorize(ROCK_SHARE.__getitem__, otypes=[float])(np.asarray(zone_of(x)))
    em = ENDMEMBERS
    nv, rv = em["vegetation"]["nir"], em["vegetation"]["red"]
    nb = share * em["rock"]["nir"] + (1 - share) * em["soil"]["nir"]
    rb = share * em["rock"]["red"] + (1 - share) * em["soil"]["red"]
    v = (t * (nb + rb) - (nb - rb)) / ((nv - rv) - (nb - rb) - t * ((nv + rv) - (nb + rb)))
    if np.any((v < 0) | (v > 1)):
        raise ValueError("truth_fractions: a planted NDVI outside the end-members' range")
    return {"vegetation": v, "soil": (1 - share) * (1 - v), "rock": share * (1 - v)}


def truth_rock(year: int, x: Any) -> Any:
    """The planted bedrock exposure (rock fraction) at CRS x in ``year``."""
    r = truth_fractions(year, x)["rock"]
    return float(r) if r.ndim == 0 else r


def truth_reflectance(year: int, x: Any) -> dict[str, np.ndarray]:
    """OLI-scale surface reflectance of a clear pixel at CRS x: the fractions' mix of
    :data:`ENDMEMBERS` per band (:data:`REFLECTANCE_LAYERS`)."""
    f = truth_fractions(year, x)
    return {b: sum(f[em] * ENDMEMBERS[em][b] for em in ENDMEMBERS) for b in REFLECTANCE_LAYERS}


def truth_modis_ndvi(year: int, x: Any, y: Any = None) -> Any:
    """MODIS NDVI of a clear pixel centred at CRS (x, y): :func:`truth_ndvi` + :data:`SENSOR_OFFSET`."""
    v = np.asarray(truth_ndvi(year, x, y)) + SENSOR_OFFSET
    return float(v) if v.ndim == 0 else v


def truth_climate(var: str, year: int, month: int) -> float:
    """Monthly value of a climate variable (constant in space), rounded to its storage precision.

    tmean = 15.5 - 9.5 cos(2 pi (m - 1) / 12) (6 degC in January, 25 degC in July) + 0.02 degC/yr
    warming; tmmx/tmmn = tmean +- 4.5; pr = (120 + 100 cos(2 pi (m - 6) / 12)) (220 mm in June,
    20 mm in December, 33 mm in January) x (1 + 0.15 sin(2.1 (year - 2010))); pet = 80 - 50
    cos(2 pi (m - 1) / 12) (30..130 mm); srad 160 -+ 60 W m-2; vap 1.8 -+ 1.0 kPa; vs 2.0 + 0.5
    cos(2 pi (m - 3) / 12) m s-1 (windiest in March).
    """
    if var not in CLIMATE_VARS:
        raise KeyError(f"truth_climate: unknown climate variable {var!r}; expected one of {sorted(CLIMATE_VARS)}")
    if year not in YEARS or not 1 <= month <= 12:
        raise ValueError(f"truth_climate: no month {year}-{month:02d} in the catalogue ({YEARS[0]}..{YEARS[-1]})")
    c = math.cos(2 * math.pi * (month - 1) / 12)
    t = year - 2010
    tmean = 15.5 - 9.5 * c + 0.02 * t
    values = {
        "tmmx": tmean + 4.5,
        "tmmn": tmean - 4.5,
        "pr": (120 + 100 * math.cos(2 * math.pi * (month - 6) / 12)) * (1 + 0.15 * math.sin(2.1 * t)),
        "srad": 160 - 60 * c,
        "pet": 80 - 50 * c,
        "vap": 1.8 - 1.0 * c,
        "vs": 2.0 + 0.5 * math.cos(2 * math.pi * (month - 3) / 12),
    }
    scale = CLIMATE_VARS[var]["scale"] or 0.1  # pr (float32) is rounded to 0.1 mm
    return round(values[var] / scale) * scale


def truth_landcover(year: int, x: Any, y: Any) -> Any:
    """ESA WorldCover code at CRS (x, y) for 2020 or 2021: 300 m bands of the zone's pattern."""
    if (year, "stable") not in LANDCOVER_PATTERN:
        raise ValueError(f"truth_landcover: land cover exists for {sorted(WORLDCOVER_YEARS)}, not {year}")
    xa, ya = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    k = np.floor((ya - REGION_BOUNDS[1]) / LANDCOVER_BAND).astype(int) % 5
    z = np.asarray(zone_of(xa))
    out = np.zeros(xa.shape, np.uint8)
    for zone in ZONES:
        pattern = np.array(LANDCOVER_PATTERN[(year, zone)], np.uint8)
        out = np.where(z == zone, pattern[k], out)
    return int(out) if out.ndim == 0 else out


def truth_lithology(x: Any) -> Any:
    """``LITH_CODE`` of the lithology polygon at CRS x: C2h west, P1m middle, T3s east."""
    z = np.asarray(zone_of(x))
    out = np.vectorize(LITHOLOGY_UNITS.__getitem__, otypes=[object])(z)
    return str(out) if out.ndim == 0 else out.astype(str)


def truth_soil(prop: str, depth: str) -> int:
    """SoilGrids mean of ``prop`` at ``depth`` in the stored units (constant in space)."""
    if prop not in SOIL_VALUES or depth not in SOIL_DEPTHS:
        raise KeyError(f"truth_soil: expected prop in {sorted(SOIL_VALUES)} and depth in {SOIL_DEPTHS}")
    return SOIL_VALUES[prop][SOIL_DEPTHS.index(depth)]


# -- the catalogue --------------------------------------------------------------------------
@dataclass(frozen=True)
class KarstCatalog:
    """Paths of a generated catalogue and the constants it was built from."""

    root: Path
    catalog_json: Path
    aoi: Path
    lithology: Path
    soilgrids_dir: Path
    lithology_column: str = "LITH_CODE"
    collections: dict[str, str] = field(default_factory=lambda: dict(COLLECTIONS))
    item_counts: dict[str, int] = field(default_factory=dict)
    region_bounds: tuple[float, float, float, float] = REGION_BOUNDS
    crs: str = CRS
    resolution: float = RESOLUTION
    years: tuple[int, ...] = YEARS
    season_months: tuple[int, ...] = SEASON_MONTHS
    landsat_years: tuple[int, ...] = LANDSAT_YEARS
    modis_years: tuple[int, ...] = MODIS_YEARS
    sensor_offset: float = SENSOR_OFFSET
    greening_slope: float = GREENING_SLOPE
    browning_slope: float = BROWNING_SLOPE
    carbonate_units: tuple[str, ...] = CARBONATE_UNITS
    soil_properties: tuple[str, ...] = tuple(SOIL_VALUES)
    soil_depths: tuple[str, ...] = SOIL_DEPTHS

    def soilgrids_url(self, base_url: str) -> str:
        """Base URL of the SoilGrids layout on a server of :func:`serve_catalog`."""
        return soilgrids_url(base_url)


def soilgrids_url(base_url: str) -> str:
    """``<base_url>/soilgrids``: the static mount serves the catalog folder, soilgrids/ included."""
    return base_url.rstrip("/") + "/soilgrids"


def _write_cog(path: Path, data: np.ndarray, transform: Any, crs: Any, nodata: Any, blocksize: int = 128) -> None:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="deflate",
        blocksize=blocksize,
        overviews="NONE",
    ) as dst:
        dst.write(data, 1)


def _lonlat_bbox(bounds: tuple[float, float, float, float], crs: Any) -> list[float]:
    from rasterio.warp import transform_bounds

    return [float(v) for v in transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)]


def _polygon(bb: list[float]) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[bb[0], bb[1]], [bb[2], bb[1]], [bb[2], bb[3]], [bb[0], bb[3]], [bb[0], bb[1]]]],
    }


def _centres(transform: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the pixel centres of a north-up grid."""
    h, w = shape
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    return np.meshgrid(xs, ys)


def _in_blob(x: np.ndarray, y: np.ndarray, blob: tuple[float, float, float], extra: float = 0.0) -> np.ndarray:
    cx, cy, r = blob
    return np.hypot(x - cx, y - cy) <= r + extra


def _raster_band(dtype: str, nodata: Any, scale: float | None = None, offset: float | None = None, **kw: Any):
    band: dict[str, Any] = {"data_type": dtype, "nodata": nodata, **kw}
    if scale is not None:
        band["scale"] = scale
    if offset is not None:
        band["offset"] = offset
    return [band]


PROJ_EXT = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_EXT = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
EO_EXT = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"


def _proj_props(epsg: int | None, transform: Any, shape: tuple[int, int], wkt2: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "proj:epsg": epsg,
        "proj:code": f"EPSG:{epsg}" if epsg else None,
        "proj:shape": [int(shape[0]), int(shape[1])],
        "proj:transform": [transform.a, transform.b, transform.c, transform.d, transform.e, transform.f],
    }
    if wkt2:
        p["proj:wkt2"] = wkt2
    return p


def _collection(pystac: Any, cid: str, description: str, bbox: list[float], years: tuple[int, int]) -> Any:
    extent = pystac.Extent(
        pystac.SpatialExtent([bbox]),
        pystac.TemporalExtent(
            [[dt.datetime(years[0], 1, 1, tzinfo=dt.UTC), dt.datetime(years[1], 12, 31, 23, 59, 59, tzinfo=dt.UTC)]]
        ),
    )
    return pystac.Collection(id=cid, description=description, extent=extent, license="proprietary")


def landsat_grid() -> tuple[Any, tuple[int, int]]:
    """Transform and shape of the Landsat items: the region grid plus a 600 m margin."""
    from affine import Affine

    w, s, e, n = REGION_BOUNDS
    m = LANDSAT_MARGIN
    shape = (int(round((n - s + 2 * m) / RESOLUTION)), int(round((e - w + 2 * m) / RESOLUTION)))
    return Affine(RESOLUTION, 0.0, w - m, 0.0, -RESOLUTION, n + m), shape


def landsat_scene(year: int, scene: int) -> dict[str, np.ndarray]:
    """Stored DN of one Landsat scene (``scene`` 0 June, 1 August): blue, red, nir, swir16,
    swir22, qa_pixel."""
    platform = LANDSAT_PLATFORMS[year]
    transform, shape = landsat_grid()
    x, y = _centres(transform, shape)
    oli = {b: np.broadcast_to(v, shape).astype(float) for b, v in truth_reflectance(year, x).items()}
    if platform == "landsat-8":
        sr = oli
    else:  # the inverse of Roy et al. (2016): ETM = (OLI - intercept) / slope
        sr = {b: (v - ROY2016_ETM_TO_OLI[b][1]) / ROY2016_ETM_TO_OLI[b][0] for b, v in oli.items()}
    sr = {b: v.copy() for b, v in sr.items()}
    oli_sensor = platform == "landsat-8"
    # QA_PIXEL as USGS codes it: bit 6 clear plus low-confidence pairs (cloud 8-9, shadow 10-11,
    # snow 12-13, cirrus 14-15 on OLI only), e.g. 21824 clear on OLI, 5440 on TM/ETM+
    low = (1 << 8) | (1 << 10) | (1 << 12) | ((1 << 14) if oli_sensor else 0)
    qa = np.full(shape, (1 << 6) | low, np.uint16)
    if scene == 0:
        core = _in_blob(x, y, CLOUD_BLOB)
        ring = _in_blob(x, y, CLOUD_BLOB, CLOUD_DILATION) & ~core
        qa[core] = (1 << 3) | (3 << 8) | (1 << 10) | (1 << 12) | ((1 << 14) if oli_sensor else 0)
        qa[ring] = (1 << 1) | low
        for b in sr:
            sr[b][core] = CLOUD_REFL[b]
            sr[b][ring] = DILATED_REFL[b]
    else:
        shadow = _in_blob(x, y, SHADOW_BLOB)
        qa[shadow] = (1 << 4) | (1 << 8) | (3 << 10) | (1 << 12) | ((1 << 14) if oli_sensor else 0)
        for b in sr:
            sr[b][shadow] = SHADOW_REFL[b]
    out = {b: np.round((v - LANDSAT_OFFSET) / LANDSAT_SCALE).astype(np.uint16) for b, v in sr.items()}
    fill = x < FILL_STRIP_WEST
    for b in out:
        out[b][fill] = 0
    qa[fill] = 1
    out["qa_pixel"] = qa
    return out


def _landsat(pystac: Any, data_dir: Path, coll: Any) -> None:
    transform, shape = landsat_grid()
    bounds = (transform.c, transform.f + transform.e * shape[0], transform.c + transform.a * shape[1], transform.f)
    bb = _lonlat_bbox(bounds, CRS)
    prefix = {"landsat-5": "LT05", "landsat-7": "LE07", "landsat-8": "LC08"}
    instruments = {"landsat-5": ["tm"], "landsat-7": ["etm+"], "landsat-8": ["oli", "tirs"]}
    for year in LANDSAT_YEARS:
        platform = LANDSAT_PLATFORMS[year]
        for scene, (month, day) in enumerate(LANDSAT_DAYS):
            when = dt.datetime(year, month, day, 3, 10, 27, tzinfo=dt.UTC)
            item_id = f"{prefix[platform]}_L2SP_{WRS_PATH:03d}{WRS_ROW:03d}_{when:%Y%m%d}_{year + 10}0901_02_T1"
            props = {
                "platform": platform,
                "instruments": instruments[platform],
                "eo:cloud_cover": 8.4 if scene == 0 else 3.1,
                "landsat:cloud_cover_land": 8.4 if scene == 0 else 3.1,
                "landsat:wrs_path": f"{WRS_PATH:03d}",
                "landsat:wrs_row": f"{WRS_ROW:03d}",
                "landsat:collection_category": "T1",
                "landsat:collection_number": "02",
                "landsat:processing_level": "L2SP",
                "landsat:scene_id": f"{prefix[platform][:2]}{prefix[platform][3]}{WRS_PATH:03d}{WRS_ROW:03d}"
                f"{year}{when.timetuple().tm_yday:03d}LGN00",
                "view:sun_elevation": 68.2 if scene == 0 else 62.7,
                "gsd": 30,
                **_proj_props(32648, transform, shape),
            }
            item = pystac.Item(
                id=item_id,
                geometry=_polygon(bb),
                bbox=bb,
                datetime=when,
                properties=props,
                stac_extensions=[PROJ_EXT, RASTER_EXT, EO_EXT],
            )
            dns = landsat_scene(year, scene)
            for layer, key in LANDSAT_ASSETS.items():
                path = data_dir / item_id / f"{item_id}_{key.upper() if key == 'qa_pixel' else 'SR_' + key}.tif"
                _write_cog(path, dns[layer], transform, CRS, nodata=1 if layer == "qa_pixel" else 0)
                if layer == "qa_pixel":
                    bands = _raster_band("uint16", 1, unit="bit index", spatial_resolution=30)
                    roles = ["cloud", "cloud-shadow", "snow-ice", "water-mask"]
                    title = "Pixel Quality Assessment Band"
                else:
                    bands = _raster_band(
                        "uint16", 0, LANDSAT_SCALE, LANDSAT_OFFSET, unit="unitless", spatial_resolution=30
                    )
                    roles = ["data", "reflectance"]
                    title = f"{key} surface reflectance"
                item.add_asset(
                    key,
                    pystac.Asset(
                        href=str(path),
                        media_type=pystac.MediaType.COG,
                        roles=roles,
                        title=title,
                        extra_fields={"raster:bands": bands},
                    ),
                )
            coll.add_item(item)


def modis_grid() -> tuple[Any, tuple[int, int]]:
    """Transform and shape of the MODIS items: region + 1 km margin, snapped to the MODIS grid."""
    from affine import Affine
    from rasterio.warp import transform_bounds

    w, s, e, n = REGION_BOUNDS
    m = MODIS_MARGIN
    sw, ss, se, sn = transform_bounds(CRS, MODIS_CRS, w - m, s - m, e + m, n + m, densify_pts=21)
    x0, y0 = MODIS_ORIGIN
    c0, c1 = math.floor((sw - x0) / MODIS_PIXEL), math.ceil((se - x0) / MODIS_PIXEL)
    r0, r1 = math.floor((y0 - sn) / MODIS_PIXEL), math.ceil((y0 - ss) / MODIS_PIXEL)
    t = Affine(MODIS_PIXEL, 0.0, x0 + c0 * MODIS_PIXEL, 0.0, -MODIS_PIXEL, y0 - r0 * MODIS_PIXEL)
    return t, (r1 - r0, c1 - c0)


def modis_pixel_centres_in_crs() -> tuple[np.ndarray, np.ndarray]:
    """CRS (UTM) x, y of the MODIS item pixel centres (rows x cols)."""
    from rasterio.warp import transform as warp_transform

    t, shape = modis_grid()
    sx, sy = _centres(t, shape)
    ux, uy = warp_transform(MODIS_CRS, CRS, sx.ravel(), sy.ravel())
    return np.asarray(ux).reshape(shape), np.asarray(uy).reshape(shape)


def modis_composite(year: int, doy: int) -> dict[str, np.ndarray]:
    """Stored values of one MOD13Q1 composite: NDVI, EVI (int16 x 1e4), pixel reliability (int8)
    and the blue, red, NIR and MIR reflectance (int16 x 1e4, fill -1000)."""
    ux, uy = modis_pixel_centres_in_crs()
    ndvi = truth_modis_ndvi(year, ux)
    rel = np.zeros(ux.shape, np.int8)
    if doy == MODIS_CLOUDY_DOY:
        cloudy = _in_blob(ux, uy, MODIS_CLOUD_BLOB)
        rel[cloudy] = 3
        ndvi = np.where(cloudy, MODIS_CLOUD_NDVI, ndvi)
    n = np.round(ndvi * 10000).astype(np.int16)
    e = np.round(MODIS_EVI_FACTOR * ndvi * 10000).astype(np.int16)
    fill = uy > MODIS_FILL_NORTH
    n[fill] = -3000
    e[fill] = -3000
    rel[fill] = -1
    out = {"250m_16_days_NDVI": n, "250m_16_days_EVI": e, "250m_16_days_pixel_reliability": rel}
    # reflectance: the same surface (fractions of the OLI-scale truth) as Landsat sees; the
    # planted offset is one of the MODIS NDVI product, not of the surface
    refl = truth_reflectance(year, ux)
    for key, band in MODIS_REFLECTANCE_ASSETS.items():
        r = np.round(refl[band] * 10000).astype(np.int16)
        if doy == MODIS_CLOUDY_DOY:
            r[cloudy] = round(CLOUD_REFL[band] * 10000)
        r[fill] = -1000
        out[key] = r
    return out


def _modis(pystac: Any, data_dir: Path, coll: Any) -> None:
    from rasterio.crs import CRS as RioCRS

    t, shape = modis_grid()
    bounds = (t.c, t.f + t.e * shape[0], t.c + t.a * shape[1], t.f)
    bb = _lonlat_bbox(bounds, MODIS_CRS)
    h = int((t.c - MODIS_ORIGIN[0]) // (MODIS_PIXEL * MODIS_TILE_PX))
    v = int((MODIS_ORIGIN[1] - t.f) // (MODIS_PIXEL * MODIS_TILE_PX))
    wkt2 = RioCRS.from_string(MODIS_CRS).to_wkt()
    for year in MODIS_YEARS:
        for doy in MODIS_DOYS:
            start = dt.datetime(year, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=doy - 1)
            end = start + dt.timedelta(days=15, hours=23, minutes=59, seconds=59)
            item_id = f"MOD13Q1.A{year}{doy:03d}.h{h:02d}v{v:02d}.061"
            props = {
                "platform": "terra",
                "instruments": ["modis"],
                "start_datetime": start.isoformat().replace("+00:00", "Z"),
                "end_datetime": end.isoformat().replace("+00:00", "Z"),
                "modis:tile-id": f"h{h:02d}v{v:02d}",
                "modis:horizontal-tile": h,
                "modis:vertical-tile": v,
                "gsd": MODIS_PIXEL,
                **_proj_props(None, t, shape, wkt2),
            }
            item = pystac.Item(
                id=item_id,
                geometry=_polygon(bb),
                bbox=bb,
                datetime=start,
                properties=props,
                stac_extensions=[PROJ_EXT, RASTER_EXT],
            )
            layers = modis_composite(year, doy)
            for key, data in layers.items():
                path = data_dir / item_id / f"{item_id}_{key}.tif"
                if key.endswith("reliability"):
                    _write_cog(path, data, t, MODIS_CRS, nodata=-1)
                    bands = _raster_band("int8", -1, unit="rank", spatial_resolution=MODIS_PIXEL)
                    roles = ["data", "quality"]
                elif key.endswith("_reflectance"):
                    _write_cog(path, data, t, MODIS_CRS, nodata=-1000)
                    bands = _raster_band("int16", -1000, 0.0001, unit="reflectance")
                    roles = ["data", "reflectance"]
                else:
                    _write_cog(path, data, t, MODIS_CRS, nodata=-3000)
                    bands = _raster_band("int16", -3000, 0.0001, unit="NDVI" if "NDVI" in key else "EVI")
                    roles = ["data"]
                item.add_asset(
                    key,
                    pystac.Asset(
                        href=str(path),
                        media_type=pystac.MediaType.COG,
                        roles=roles,
                        title=key,
                        extra_fields={"raster:bands": bands},
                    ),
                )
            coll.add_item(item)


def _geographic_grid(res: float, margin_deg: float) -> tuple[Any, tuple[int, int]]:
    from affine import Affine

    bb = _lonlat_bbox(REGION_BOUNDS, CRS)
    w = math.floor((bb[0] - margin_deg) / res)
    e = math.ceil((bb[2] + margin_deg) / res)
    s = math.floor((bb[1] - margin_deg) / res)
    n = math.ceil((bb[3] + margin_deg) / res)
    # round the origin to the grid step so that it is exactly a multiple of res in decimal
    return Affine(res, 0.0, round(w * res, 8), 0.0, -res, round(n * res, 8)), (n - s, e - w)


def climate_grid() -> tuple[Any, tuple[int, int]]:
    """Transform and shape of the climate COGs: 0.04 degree cells covering region + one cell."""
    return _geographic_grid(CLIMATE_RES, CLIMATE_RES)


def worldcover_grid() -> tuple[Any, tuple[int, int]]:
    """Transform and shape of the WorldCover maps: 0.00027 degree cells, region + ~300 m margin."""
    return _geographic_grid(WORLDCOVER_RES, 0.003)


def _climate(pystac: Any, data_dir: Path, coll: Any) -> None:
    t, shape = climate_grid()
    bounds = (t.c, t.f + t.e * shape[0], t.c + t.a * shape[1], t.f)
    bb = [float(b) for b in bounds]
    for year in YEARS:
        for month in range(1, 13):
            when = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            nxt = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC) - dt.timedelta(seconds=1)
            item_id = f"terraclimate-{year}-{month:02d}"
            props = {
                "start_datetime": when.isoformat().replace("+00:00", "Z"),
                "end_datetime": nxt.isoformat().replace("+00:00", "Z"),
                **_proj_props(4326, t, shape),
            }
            item = pystac.Item(
                id=item_id,
                geometry=_polygon(bb),
                bbox=bb,
                datetime=when,
                properties=props,
                stac_extensions=[PROJ_EXT, RASTER_EXT],
            )
            for var, spec in CLIMATE_VARS.items():
                value = truth_climate(var, year, month)
                path = data_dir / item_id / f"{var}.tif"
                if spec["scale"] is None:
                    data = np.full(shape, value, np.float32)
                    nodata: Any = -9999.0
                    bands = _raster_band("float32", nodata, unit=spec["unit"])
                else:
                    data = np.full(shape, round(value / spec["scale"]), np.int16)
                    nodata = -32768
                    bands = _raster_band("int16", nodata, spec["scale"], 0.0, unit=spec["unit"])
                _write_cog(path, data, t, "EPSG:4326", nodata=nodata)
                item.add_asset(
                    var,
                    pystac.Asset(
                        href=str(path),
                        media_type=pystac.MediaType.COG,
                        roles=["data"],
                        title=spec["title"],
                        extra_fields={"raster:bands": bands},
                    ),
                )
            coll.add_item(item)


def worldcover_map(year: int) -> np.ndarray:
    """The stored WorldCover ``map`` of ``year``: :func:`truth_landcover` at the pixel centres."""
    from rasterio.warp import transform as warp_transform

    t, shape = worldcover_grid()
    lon, lat = _centres(t, shape)
    ux, uy = warp_transform("EPSG:4326", CRS, lon.ravel(), lat.ravel())
    return truth_landcover(year, np.asarray(ux), np.asarray(uy)).reshape(shape).astype(np.uint8)


def _worldcover(pystac: Any, data_dir: Path, coll: Any) -> None:
    t, shape = worldcover_grid()
    bounds = (t.c, t.f + t.e * shape[0], t.c + t.a * shape[1], t.f)
    bb = [float(b) for b in bounds]
    for year, version in WORLDCOVER_YEARS.items():
        item_id = f"ESA_WorldCover_10m_{year}_{version}_N24E105"
        start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        props = {
            "start_datetime": start.isoformat().replace("+00:00", "Z"),
            "end_datetime": f"{year}-12-31T23:59:59Z",
            "esa_worldcover:product_version": "1.0.0" if version == "v100" else "2.0.0",
            "esa_worldcover:product_tile": "N24E105",
            "mission": "sentinel-1, sentinel-2",
            **_proj_props(4326, t, shape),
        }
        item = pystac.Item(
            id=item_id, geometry=_polygon(bb), bbox=bb, datetime=start, properties=props, stac_extensions=[PROJ_EXT]
        )
        path = data_dir / item_id / f"{item_id}_Map.tif"
        _write_cog(path, worldcover_map(year), t, "EPSG:4326", nodata=0)
        classes = [{"value": k, "description": v} for k, v in WORLDCOVER_CODES.items()]
        item.add_asset(
            "map",
            pystac.Asset(
                href=str(path),
                media_type=pystac.MediaType.COG,
                roles=["data"],
                title="Land Cover Classes",
                extra_fields={"raster:bands": _raster_band("uint8", 0), "classification:classes": classes},
            ),
        )
        coll.add_item(item)


def soil_grid() -> tuple[Any, tuple[int, int]]:
    """Transform and shape of the SoilGrids COGs: region + 1 km in IGH, snapped to 250 m."""
    from affine import Affine
    from rasterio.warp import transform_bounds

    w, s, e, n = REGION_BOUNDS
    m = SOIL_MARGIN
    iw, is_, ie, in_ = transform_bounds(CRS, SOIL_CRS, w - m, s - m, e + m, n + m, densify_pts=21)
    c0, c1 = math.floor(iw / SOIL_RES), math.ceil(ie / SOIL_RES)
    r0, r1 = math.floor(is_ / SOIL_RES), math.ceil(in_ / SOIL_RES)
    return Affine(SOIL_RES, 0.0, c0 * SOIL_RES, 0.0, -SOIL_RES, r1 * SOIL_RES), (r1 - r0, c1 - c0)


def _vrt_xml(tif_rel: str, t: Any, shape: tuple[int, int], wkt: str, nodata: int) -> str:
    """A VRT of one Int16 band pointing at ``tif_rel`` (relative to the VRT), as gdalbuildvrt writes."""
    from xml.sax.saxutils import escape

    h, w = shape
    gt = ", ".join(f"{v:.16e}" for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    return (
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">\n'
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(wkt)}</SRS>\n'
        f"  <GeoTransform>{gt}</GeoTransform>\n"
        '  <VRTRasterBand dataType="Int16" band="1">\n'
        f"    <NoDataValue>{nodata}</NoDataValue>\n"
        "    <ColorInterp>Gray</ColorInterp>\n"
        "    <ComplexSource>\n"
        f'      <SourceFilename relativeToVRT="1">{escape(tif_rel)}</SourceFilename>\n'
        "      <SourceBand>1</SourceBand>\n"
        f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="Int16" '
        'BlockXSize="256" BlockYSize="256" />\n'
        f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />\n'
        f'      <DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />\n'
        f"      <NODATA>{nodata}</NODATA>\n"
        "    </ComplexSource>\n"
        "  </VRTRasterBand>\n"
        "</VRTDataset>\n"
    )


def _soilgrids(base: Path) -> None:
    from rasterio.crs import CRS as RioCRS

    t, shape = soil_grid()
    wkt = RioCRS.from_string(SOIL_CRS).to_wkt()
    for prop in SOIL_VALUES:
        for depth in SOIL_DEPTHS:
            name = f"{prop}_{depth}_mean"
            rel = f"{name}/tileSG-001-001/tileSG-001-001_1-1.tif"
            data = np.full(shape, truth_soil(prop, depth), np.int16)
            _write_cog(base / prop / rel, data, t, SOIL_CRS, nodata=SOIL_NODATA, blocksize=256)
            (base / prop / f"{name}.vrt").write_text(_vrt_xml(rel, t, shape, wkt, SOIL_NODATA))


def _vectors(root: Path) -> tuple[Path, Path]:
    import geopandas as gpd
    from shapely.geometry import box

    w, s, e, n = REGION_BOUNDS
    m = LANDSAT_MARGIN
    edges = (w - m, *ZONE_EDGES, e + m)
    zones = [box(edges[i], s - m, edges[i + 1], n + m) for i in range(3)]
    codes = [LITHOLOGY_UNITS[z] for z in ZONES]
    lith = gpd.GeoDataFrame(
        {"LITH_CODE": codes, "LITH_NAME": [LITHOLOGY_NAMES[c] for c in codes]}, geometry=zones, crs=CRS
    )
    lith_path = root / "user" / "lithology.gpkg"
    lith_path.parent.mkdir(parents=True, exist_ok=True)
    lith.to_file(lith_path, driver="GPKG", engine="pyogrio")
    # the AOI: the region rectangle densified (30 m steps) before reprojection so that it maps
    # back onto REGION_BOUNDS in UTM within centimetres
    aoi = gpd.GeoSeries([box(*REGION_BOUNDS).segmentize(30.0)], crs=CRS).to_crs("EPSG:4326")
    aoi_path = root / "user" / "aoi.gpkg"
    gpd.GeoDataFrame({"name": ["karst-e2e"]}, geometry=aoi).to_file(aoi_path, driver="GPKG", engine="pyogrio")
    return aoi_path, lith_path


def build_karst_catalog(root: Path) -> KarstCatalog:
    """Write the whole catalogue under ``root`` (catalog/ with the STAC catalog and soilgrids/, user/)."""
    import pystac

    root = Path(root)
    cat_dir = root / "catalog"
    data_dir = cat_dir / "data"
    cat = pystac.Catalog(id="karstflow-karst-e2e", description="Generated karst catalogue with planted signals")
    region_bb = _lonlat_bbox(REGION_BOUNDS, CRS)
    landsat = _collection(
        pystac, COLLECTIONS["landsat"], "Landsat Collection 2 Level-2", region_bb, (LANDSAT_YEARS[0], LANDSAT_YEARS[-1])
    )
    modis = _collection(
        pystac, COLLECTIONS["modis"], "MODIS Vegetation Indices 16-Day (250m)", region_bb, (MODIS_YEARS[0], 2021)
    )
    climate = _collection(
        pystac, COLLECTIONS["climate"], "Monthly climate (TerraClimate-like)", region_bb, (2010, 2021)
    )
    worldcover = _collection(pystac, COLLECTIONS["landcover"], "ESA WorldCover", region_bb, (2020, 2021))
    for coll in (landsat, modis, climate, worldcover):
        cat.add_child(coll)
    _landsat(pystac, data_dir / "landsat", landsat)
    _modis(pystac, data_dir / "modis", modis)
    _climate(pystac, data_dir / "climate", climate)
    _worldcover(pystac, data_dir / "worldcover", worldcover)
    cat.normalize_hrefs(str(cat_dir))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    soil_dir = cat_dir / "soilgrids"
    _soilgrids(soil_dir)
    aoi, lith = _vectors(root)
    counts = {
        COLLECTIONS["landsat"]: len(LANDSAT_YEARS) * len(LANDSAT_DAYS),
        COLLECTIONS["modis"]: len(MODIS_YEARS) * len(MODIS_DOYS),
        COLLECTIONS["climate"]: len(YEARS) * 12,
        COLLECTIONS["landcover"]: len(WORLDCOVER_YEARS),
    }
    return KarstCatalog(
        root=root,
        catalog_json=cat_dir / "catalog.json",
        aoi=aoi,
        lithology=lith,
        soilgrids_dir=soil_dir,
        item_counts=counts,
    )


# -- the server -----------------------------------------------------------------------------
@contextlib.contextmanager
def serve_catalog(catalog_json: Path) -> Iterator[str]:
    """Serve ``catalog_json`` with ``tests/stac_server.py`` (:func:`stac_server.serve`: a
    uvicorn subprocess on 127.0.0.1); yields the base URL. The SoilGrids layout is under
    :func:`soilgrids_url`."""
    from stac_server import serve

    catalog_json = Path(catalog_json).resolve()
    if not catalog_json.is_file():
        raise FileNotFoundError(f"serve_catalog: no catalog file at {catalog_json}")
    with serve(catalog_json) as url:
        yield url


def search_json(base_url: str, collection: str, limit: int = 200, **params: Any) -> list[dict[str, Any]]:
    """All items of ``collection`` from ``GET /search`` (following ``next`` links)."""
    from urllib.parse import urlencode

    query = {"collections": collection, "limit": limit, **params}
    url: str | None = f"{base_url}/search?{urlencode(query)}"
    items: list[dict[str, Any]] = []
    while url:
        with urllib.request.urlopen(url, timeout=30) as r:
            page = json.load(r)
        items.extend(page["features"])
        url = next((link["href"] for link in page.get("links", []) if link.get("rel") == "next"), None)
    return items
