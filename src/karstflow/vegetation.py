"""Annual growing-season vegetation composites per sensor and the cross-calibrated annual cube.

The greening trend needs one value of NDVI (and EVI, kNDVI) per pixel and year over a long
record that several sensors cover (:mod:`karstflow.sensors`): Landsat from 1984, MODIS
from 2000, Sentinel-2 from 2017, the sensor of each year chosen in the config. This module

1. composites the scenes of one year's growing season (:func:`season_period`) into the
   per-pixel median (or the maximum-NDVI observation) of the clear observations of each
   index (:func:`composite_year`), lazily, one dask task per spatial block;
2. fits and applies the linear cross-calibration that maps one sensor's index onto the
   reference sensor's scale in an overlap year (:func:`fit_calibration`,
   :func:`apply_calibration`), so that a sensor switch does not show up as a trend
   (the approach of e.g. Roy et al. 2016 for ETM+/OLI and of the NDVI-continuity
   literature for AVHRR/MODIS/Landsat: reference ~ offset + gain * other over pixels
   clear in both);
3. stacks the years into the cube the greening stage reads (:func:`annual_cube`):
   dims ``(year, y, x)``, float32 ``ndvi``, ``evi``, ``kndvi``, uint16 ``clear_count``,
   a ``sensor`` coordinate on ``year`` (see :func:`karstflow.greening.vegetation_index_cube`).

When every scene of a composite carries a short-wave infrared band, the composite (and,
when every year has them, the annual cube) also carries season-composite surface
reflectance, :data:`REFLECTANCE_BANDS` (``blue``, ``red``, ``nir``, ``swir1`` ~1.6 um,
``swir2`` ~2.2 um; fraction 0..1, from the layers of :data:`REFLECTANCE_LAYERS`), which
the rocky-desertification stage unmixes into vegetation, soil and rock
(:func:`karstflow.desertification.unmix`). Without SWIR no band is composited, so the
composite costs what it did.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.grid import RegionGrid, check_same_grid
from karstflow.sensors import LAYERS, QA_LAYER, SENSORS, SensorRules, decode, instrument_of, required_layers
from karstflow.sources import MissingBandError, Period, Scene

log = logging.getLogger(__name__)

__all__ = [
    "BANDS",
    "COMPOSITE_METHODS",
    "CALIBRATION_METHODS",
    "Calibration",
    "annual_cube",
    "apply_calibration",
    "calibration_from_config",
    "composite_summary_of_year",
    "composite_year",
    "fit_calibration",
    "read_composite",
    "season_period",
]

COMPOSITE_METHODS = ("median", "max-ndvi")
CALIBRATION_METHODS = ("ols", "offset")
#: Variables of a composite (in the order of the planes of a composite block).
VARIABLES = ("ndvi", "evi", "kndvi", "clear_count")
#: The band order of a composite written as a GeoTIFF (the same names); reflectance bands,
#: when the composite has them, follow in the order of :data:`REFLECTANCE_BANDS`.
BANDS = VARIABLES
#: Surface reflectance bands a composite may carry (fraction 0..1, unitless).
REFLECTANCE_BANDS = ("blue", "red", "nir", "swir1", "swir2")
#: Reflectance band -> the canonical scene layer it is read from, per sensor: Landsat C2 L2
#: SR_B2..B7 by common name (OLI blue B2, red B4, nir B5, swir16 B6, swir22 B7; TM/ETM+
#: B1, B3, B4, B5, B7), harmonised to OLI with Roy et al. (2016); Sentinel-2 L2A B2, B4,
#: B8, B11 (1.61 um), B12 (2.19 um); MOD13Q1 v061 blue, red, NIR and MIR (2.1 um, band 7)
#: reflectance of the composited day (MOD13 User's Guide C6.1, Didan et al. 2019).
REFLECTANCE_LAYERS: dict[str, dict[str, str]] = {
    "landsat": {"blue": "blue", "red": "red", "nir": "nir", "swir1": "swir16", "swir2": "swir22"},
    "sentinel-2": {"blue": "B2", "red": "B4", "nir": "B8", "swir1": "B11", "swir2": "B12"},
    "modis": {
        "blue": "blue_reflectance",
        "red": "red_reflectance",
        "nir": "nir_reflectance",
        "swir2": "mir_reflectance",
    },
}
#: MOD13Q1 reflectance: DN * 1e-4, valid 0..10000, fill -1000 (same guide).
MODIS_REFLECTANCE_VALID_DN = (0, 10000)


# --------------------------------------------------------------------------------------
# growing season
# --------------------------------------------------------------------------------------


def season_period(year: int, months: Sequence[int]) -> Period:
    """The growing season of ``year``: from the first day of ``months[0]`` to the last of ``months[-1]``.

    ``months`` are consecutive calendar months (1..12) in season order, e.g. ``[4, ..., 10]``.
    A season crossing the year end, e.g. ``[11, 12, 1, 2, 3]`` (the southern-hemisphere
    summer), belongs to the year of its *last* month: season 2014 runs from 2013-11-01 to
    2014-03-31. That way every season of year ``Y`` ends in ``Y`` and no two years share a
    scene. The period is named ``"season-<year>"``.
    """
    ms = [int(m) for m in months]
    if not ms or len(ms) > 12:
        raise ValueError(f"config key vegetation.season_months: expected 1 to 12 months, found {list(months)}")
    bad = [m for m in ms if not 1 <= m <= 12]
    if bad:
        raise ValueError(f"config key vegetation.season_months: months must be 1..12, found {bad}")
    for a, b in zip(ms, ms[1:], strict=False):
        if b != a % 12 + 1:
            raise ValueError(
                "config key vegetation.season_months: months must be consecutive in season order "
                f"(e.g. [4, 5, 6, 7, 8, 9, 10] or [11, 12, 1, 2]); found {ms} ({b} after {a})"
            )
    first, last = ms[0], ms[-1]
    start_year = int(year) - 1 if first > last else int(year)
    start = dt.date(start_year, first, 1)
    end = dt.date(int(year), last, calendar.monthrange(int(year), last)[1])
    return Period(f"season-{int(year)}", start, end)


# --------------------------------------------------------------------------------------
# compositing one year
# --------------------------------------------------------------------------------------


def _check_scenes(scenes: Sequence[Scene], sensor: str) -> list[Scene]:
    if sensor not in LAYERS:
        raise ValueError(f"composite_year: unknown sensor {sensor!r}; expected one of {list(LAYERS)}")
    if not scenes:
        raise ValueError(f"composite_year: no {sensor} scenes to composite")
    for s in scenes:
        found = s.meta.get("sensor")
        if found != sensor:
            raise ValueError(
                f"composite_year: scene {s.id} ({s.date}) has meta['sensor'] = {found!r}, expected {sensor!r}; "
                "a composite takes the scenes of one sensor"
            )
        missing = [n for n in required_layers(sensor) if n not in s.layers]
        if missing:
            raise MissingBandError(
                f"scene {s.id} ({s.date}, {sensor}): missing layer(s) {missing}; expected {list(LAYERS[sensor])} "
                f"(all but {[n for n in LAYERS[sensor] if n not in required_layers(sensor)]} required), "
                f"found {list(s.layers)} (files {', '.join(s.files)})"
            )
        if sensor == "landsat":
            instrument_of(s.meta.get("platform"), item=f"scene {s.id} ({s.date})")
    return sorted(scenes, key=lambda s: (s.date, s.id))


def _split(n: int, c: int) -> tuple[int, ...]:
    full, rest = divmod(n, c)
    return (c,) * full + ((rest,) if rest else ())


def _reduce(
    nd: np.ndarray,
    ev: np.ndarray,
    kn: np.ndarray,
    clear: np.ndarray,
    method: str,
    refl: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """``(t, h, w)`` indices (NaN where not clear) -> ``(4 + len(refl), h, w)``: ndvi, evi,
    kndvi, clear count, then each reflectance band of ``refl`` (median of its clear
    observations, or the greenest date's value)."""
    from karstflow.composite import nanmedian_time

    t, h, w = nd.shape
    out = np.full((4 + len(refl), h, w), np.nan, dtype=np.float32)
    count = clear.sum(axis=0)
    out[3] = count
    if t == 0:
        out[3] = 0
        return out
    series = (nd, ev, kn, *refl)
    planes = (0, 1, 2, *range(4, 4 + len(refl)))
    if method == "median":
        for k, a in zip(planes, series, strict=True):
            out[k] = nanmedian_time(a)
    else:  # max-ndvi: the whole observation (all indices and bands) of the greenest clear date
        key = np.where(clear, nd, -np.inf)
        idx = np.argmax(key, axis=0)[None]  # first date wins a tie
        has = count > 0
        for k, a in zip(planes, series, strict=True):
            out[k] = np.where(has, np.take_along_axis(a, idx, axis=0)[0], np.float32(np.nan))
    return out


def _reflectance(
    sensor: str,
    band: str,
    values: Mapping[str, np.ndarray],
    valid: Mapping[str, np.ndarray],
    clear: np.ndarray,
    platform: str | None,
) -> np.ndarray:
    """Surface reflectance (float32 fraction, NaN where not clear or not valid) of one band
    of one scene block, decoded with the constants of :mod:`karstflow.sensors`."""
    from karstflow import sensors

    layer = REFLECTANCE_LAYERS[sensor][band]
    dn = np.asarray(values[layer])
    ok = clear & np.asarray(valid[layer], dtype=bool)
    if sensor == "landsat":
        lo, hi = sensors.LANDSAT_SR_VALID_DN
        ok &= (dn >= lo) & (dn <= hi)
        sr = dn.astype(np.float32) * np.float32(sensors.LANDSAT_SR_SCALE) + np.float32(sensors.LANDSAT_SR_OFFSET)
        sr = sensors.harmonise_to_oli(layer, sr, sensors.instrument_of(platform))
    elif sensor == "sentinel-2":
        ok &= ~np.isin(dn, sensors.S2_DN_NODATA)
        sr = dn.astype(np.float32) / np.float32(sensors.S2_QUANTIFICATION)
    else:
        lo, hi = MODIS_REFLECTANCE_VALID_DN
        ok &= (dn >= lo) & (dn <= hi)
        sr = dn.astype(np.float32) * np.float32(sensors.MODIS_VI_SCALE)
    return np.where(ok, sr, np.float32(np.nan)).astype(np.float32)


def reflectance_bands_of(scenes: Sequence[Scene], sensor: str) -> tuple[str, ...]:
    """The :data:`REFLECTANCE_BANDS` every scene has a layer for, or ``()`` without SWIR.

    Reflectance is composited only when it can serve the unmixing, i.e. when a SWIR band
    is among them (:func:`karstflow.desertification.unmixing_bands`).
    """
    if not scenes:
        return ()
    have = tuple(b for b, layer in REFLECTANCE_LAYERS.get(sensor, {}).items() if all(layer in s.layers for s in scenes))
    return have if {"swir1", "swir2"} & set(have) else ()


def _composite_block(
    scenes: Sequence[Scene],
    grid: RegionGrid,
    sensor: str,
    rules: SensorRules,
    method: str,
    resampling: str,
    bands: tuple[str, ...] = (),
    block_info: Any = None,
) -> np.ndarray:
    from karstflow.sources.rasters import read_layers_many

    (_, _), (r0, r1), (c0, c1) = block_info[None]["array-location"]
    window = (r0, c0, r1 - r0, c1 - c0)
    shape = (r1 - r0, c1 - c0)
    qa = QA_LAYER[sensor]
    band_layers = [REFLECTANCE_LAYERS[sensor][b] for b in bands]
    names = list(LAYERS[sensor]) + [n for n in band_layers if n not in LAYERS[sensor]]
    how = {n: ("nearest" if n == qa else resampling) for n in names}
    t = len(scenes)
    nd = np.empty((t, *shape), dtype=np.float32)
    ev = np.empty_like(nd)
    kn = np.empty_like(nd)
    refl = [np.empty_like(nd) for _ in bands]
    clear = np.empty((t, *shape), dtype=bool)
    # Consecutive scenes sharing their files (bands of a time stack) are read in one call
    # per file; otherwise scene by scene, so only one scene's raw pixels are in memory
    # next to the (t, h, w) index stacks.
    i = 0
    while i < t:
        files = scenes[i].files
        end = i + 1
        while end < t and scenes[end].files == files:
            end += 1
        group = scenes[i:end]
        read = read_layers_many(
            [(s.layers, [n for n in names if n in s.layers]) for s in group], grid, window, resampling=how
        )
        for k, (s, (values, valid)) in enumerate(zip(group, read, strict=True)):
            d = decode(
                sensor, values, valid, platform=s.meta.get("platform"), rules=rules, item=f"scene {s.id} ({s.date})"
            )
            nd[i + k], ev[i + k], kn[i + k], clear[i + k] = d
            for j, b in enumerate(bands):
                refl[j][i + k] = _reflectance(sensor, b, values, valid, d.clear, s.meta.get("platform"))
        del read
        i = end
    return _reduce(nd, ev, kn, clear, method, refl)


def composite_year(
    scenes: Sequence[Scene],
    grid: RegionGrid,
    sensor: str,
    *,
    rules: SensorRules = SensorRules(),  # noqa: B008 - frozen, so a shared default is safe
    method: str = "median",
    chunk_px: int = 512,
    resampling: str = "nearest",
) -> xr.Dataset:
    """Lazy growing-season composite of one sensor's scenes on ``grid``.

    Every scene is decoded by :func:`karstflow.sensors.decode` (clear mask, indices) after
    reading its layers onto the grid (:func:`karstflow.sources.rasters.read_layers_many`):
    the QA layer (``qa_pixel``, ``SCL``, ``pixel_reliability``) always with nearest
    resampling (classes and bit flags must not be averaged), the reflectance / index
    layers with ``resampling``.

    ``method``: ``"median"``, the per-pixel median of the clear observations of each index
    separately; ``"max-ndvi"``, the clear observation of maximum NDVI (first date on a tie)
    with its EVI and kNDVI.

    Returns a Dataset on ``grid.coords()`` with float32 ``ndvi``, ``evi``, ``kndvi`` (NaN
    where there is no clear observation) and uint16 ``clear_count``, plus float32 surface
    reflectance of :func:`reflectance_bands_of` the scenes (when every scene has a SWIR
    layer; per band the median of its clear observations, or the max-NDVI date's value;
    NaN where the band is invalid; Landsat TM/ETM+ harmonised to OLI), CRS and transform
    written, attrs ``sensor``, ``method``, ``scenes`` (count), ``scene_ids`` and ``dates``
    (comma-separated). All four variables are slices of one dask array whose tasks read one
    ``chunk_px`` block of every scene: a task holds ``scenes x 3 x chunk_px**2 x 4`` bytes
    of index stacks (plus one scene's raw layers), whatever the region size. Compute the
    variables together (e.g. ``dask.compute`` or ``ds.load()``) so each block is read once.
    With reflectance bands a task holds ``scenes x (3 + bands) x chunk_px**2 x 4`` bytes.

    Raises ``ValueError`` for an unknown sensor or method, no scenes, a scene whose
    ``meta["sensor"]`` is not ``sensor``, a Landsat scene without a known platform, and
    :class:`karstflow.sources.MissingBandError` for a scene without a layer it needs.
    """
    import dask.array as da
    from dask.base import tokenize

    if method not in COMPOSITE_METHODS:
        raise ValueError(
            f"config key vegetation.composite: method must be one of {COMPOSITE_METHODS}, found {method!r}"
        )
    from rasterio.enums import Resampling

    if resampling not in Resampling.__members__:
        raise ValueError(
            f"config key vegetation.resampling: unknown resampling {resampling!r}; expected a rasterio "
            f"Resampling name such as 'nearest', 'bilinear', 'average'"
        )
    scenes = _check_scenes(scenes, sensor)
    bands = reflectance_bands_of(scenes, sensor)
    c = max(int(chunk_px), 1)
    h, w = grid.shape
    chunks = ((len(VARIABLES) + len(bands),), _split(h, c), _split(w, c))
    name = "karstflow-vegetation-" + tokenize(
        [(s.id, s.date.isoformat(), s.files, sorted(map(str, s.meta.items()))) for s in scenes],
        grid.to_dict(),
        sensor,
        rules,
        method,
        resampling,
        c,
        bands,
    )
    arr = da.map_blocks(
        _composite_block,
        dtype=np.float32,
        chunks=chunks,
        name=name,
        meta=np.empty((0, 0, 0), dtype=np.float32),
        scenes=list(scenes),
        grid=grid,
        sensor=sensor,
        rules=rules,
        method=method,
        resampling=resampling,
        bands=bands,
    )
    long_names = {
        "ndvi": "normalized difference vegetation index",
        "evi": "enhanced vegetation index (MODIS coefficients)",
        "kndvi": "kernel NDVI, tanh(NDVI^2)",
    }
    data_vars: dict[str, Any] = {}
    for k, var in enumerate(VARIABLES[:3]):
        data_vars[var] = xr.DataArray(
            arr[k],
            dims=("y", "x"),
            attrs={"long_name": f"{method} growing-season {long_names[var]}", "units": "1", "sensor": sensor},
        )
    data_vars["clear_count"] = xr.DataArray(
        arr[3].astype(np.uint16),
        dims=("y", "x"),
        attrs={"long_name": "clear observations in the growing season", "units": "1", "sensor": sensor},
    )
    for k, b in enumerate(bands, start=len(VARIABLES)):
        data_vars[b] = xr.DataArray(
            arr[k],
            dims=("y", "x"),
            attrs={
                "long_name": f"{method} growing-season {b} surface reflectance",
                "units": "1",
                "sensor": sensor,
                "layer": REFLECTANCE_LAYERS[sensor][b],
            },
        )
    ds = xr.Dataset(data_vars, coords=grid.coords())
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    ds.attrs = {
        "sensor": sensor,
        "method": method,
        "scenes": len(scenes),
        "scene_ids": ",".join(s.id for s in scenes),
        "dates": ",".join(s.date.isoformat() for s in scenes),
        "resampling": resampling,
        "rules": json.dumps(asdict(rules)),
    }
    return ds


def composite_summary_of_year(ds: xr.Dataset, *, year: int | None = None) -> dict[str, Any]:
    """Headline figures of one composite (computes its ``clear_count``).

    ``sensor``, ``method``, ``scenes``, ``dates``, ``pixels``, ``clear_share`` (share of
    pixels with at least one clear observation), ``clear_count_mean``, ``clear_count_max``
    and ``all_cloudy`` (see :func:`karstflow.composite.composite_summary`, which warns when
    no pixel is clear).
    """
    from karstflow.composite import composite_summary

    cc = np.nan_to_num(np.asarray(ds["clear_count"].values, dtype=np.float64), nan=0.0).astype(np.int64)
    name = f"season-{year}" if year is not None else "season"
    sensor = str(ds.attrs.get("sensor", ""))
    scenes = ds.attrs.get("scenes", 0)
    try:
        n_scenes = int(scenes)
    except (TypeError, ValueError):  # e.g. "server-side" for a composite made by Earth Engine
        n_scenes = 0
    out = composite_summary(
        pixels=int(cc.size),
        pixels_with_clear=int((cc > 0).sum()),
        clear_count_sum=int(cc.sum()),
        clear_count_max=int(cc.max(initial=0)),
        n_scenes=n_scenes,
        period=name,
        context=f"{sensor} composite {name}",
    )
    dates = [d for d in str(ds.attrs.get("dates", "")).split(",") if d]
    return {
        "sensor": sensor,
        "method": str(ds.attrs.get("method", "")),
        **out,
        "scenes": n_scenes if str(n_scenes) == str(scenes) else str(scenes),
        "first_date": dates[0] if dates else None,
        "last_date": dates[-1] if dates else None,
    }


def read_composite(path: str, chunk_px: int | None = None) -> xr.Dataset:
    """A composite GeoTIFF (as rule vegetation_composite writes it) as a Dataset: the index
    bands, then any reflectance bands, named by its band descriptions; dask-backed in
    ``chunk_px`` blocks when given.

    Composites written before the bands were named hold the :data:`BANDS` in order. Raises
    ``ValueError`` naming the file when its band count fits neither.
    """
    import rasterio

    from karstflow.io import read_raster

    chunks = {"band": -1, "y": chunk_px, "x": chunk_px} if chunk_px else None
    da = read_raster(path, chunks=chunks)
    with rasterio.open(path) as src:
        names = [d or "" for d in src.descriptions]
    if len(names) == len(BANDS) or names[: len(BANDS)] != list(BANDS):
        names = list(BANDS)  # composites written before the bands were named
    if len(names) != da.sizes["band"]:
        raise ValueError(f"{path}: {da.sizes['band']} bands, expected {len(names)} ({names})")
    return da.assign_coords(band=names).to_dataset("band")


# --------------------------------------------------------------------------------------
# cross-calibration
# --------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """``target ~ offset + gain * source`` for one index: maps ``source_sensor`` onto ``target_sensor``.

    ``n_pixels`` and ``r2`` describe the fit (0 and NaN for configured coefficients);
    ``method`` is ``"ols"``, ``"offset"`` or ``"configured"``; ``year`` the overlap year
    of the fit (None if configured); ``index`` the index it was fitted on.
    """

    source_sensor: str
    target_sensor: str
    gain: float
    offset: float
    n_pixels: int
    r2: float
    method: str
    year: int | None
    index: str = "ndvi"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (NaN r2 becomes None)."""
        d = asdict(self)
        if isinstance(d["r2"], float) and not math.isfinite(d["r2"]):
            d["r2"] = None
        return d


def _sensor_of(da: xr.DataArray, given: str | None, what: str) -> str:
    s = given if given is not None else da.attrs.get("sensor")
    if s is None:
        # composites read back from GeoTIFFs carry no attribute; the caller names the pair
        return "unknown"
    if s not in SENSORS:
        raise ValueError(f"fit_calibration: {what} sensor must be one of {SENSORS}, found {s!r}")
    return str(s)


def fit_calibration(
    reference: xr.DataArray,
    other: xr.DataArray,
    *,
    year: int,
    method: str = "ols",
    min_pixels: int = 100,
    reference_sensor: str | None = None,
    other_sensor: str | None = None,
    index: str | None = None,
    window_px: int = 1,
    max_std: float | None = None,
) -> Calibration:
    """Fit ``reference ~ offset + gain * other`` on the pixels finite in both composites of ``year``.

    ``window_px`` / ``max_std``: fit only on homogeneous pixels, those whose
    ``window_px`` x ``window_px`` neighbourhood varies by at most ``max_std`` (standard
    deviation) in both composites (:func:`homogeneous_pixels`). Two sensors of different
    pixel size see a mixed neighbourhood differently (a 250 m MODIS pixel resampled to 30 m
    smooths an edge the Landsat composite keeps), and least squares on such pixels
    attenuates the gain (errors in the regressor): on a record whose true relation is an
    offset alone, all pixels gave gain 0.92 where the homogeneous ones give 1.00. The
    window should span a few pixels of the coarser sensor.

    ``method``: ``"ols"`` (ordinary least squares, gain = cov / var(other)) or ``"offset"``
    (gain 1, offset = mean(reference - other): a bias correction that cannot change the
    trend slope of a sensor's own years). ``r2`` = 1 - SS_res / SS_tot of the fitted
    relation. Sensors default to the arrays' ``sensor`` attribute (set by
    :func:`composite_year`; ``"unknown"`` without one: then set ``source_sensor`` /
    ``target_sensor`` of the result, e.g. with :func:`dataclasses.replace`), ``index`` to
    ``reference.name``.

    Raises ``ValueError`` when the arrays are on different grids or fewer than
    ``min_pixels`` pixels are clear in both.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"fit_calibration: method expected one of {CALIBRATION_METHODS}, found {method!r}")
    ref_s = _sensor_of(reference, reference_sensor, "reference")
    oth_s = _sensor_of(other, other_sensor, "other")
    check_same_grid(reference, other, f"the {ref_s} composite of {year}", f"the {oth_s} composite of {year}")
    a = np.asarray(reference.values, dtype=np.float64)
    b = np.asarray(other.values, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if max_std is not None and window_px > 1:
        ok &= homogeneous_pixels(a, window_px, max_std) & homogeneous_pixels(b, window_px, max_std)
    a, b, ok = a.ravel(), b.ravel(), ok.ravel()
    n = int(ok.sum())
    if n < int(min_pixels):
        raise ValueError(
            f"fit_calibration: only {n} pixels are clear in both the {ref_s} and the {oth_s} composite of "
            f"{year} (of {a.size})"
            + (f" and homogeneous (std <= {max_std} in {window_px} px windows)" if max_std is not None else "")
            + f"; at least {int(min_pixels)} are needed. Loosen vegetation.calibration_max_std or "
            "vegetation.calibration_window_m, choose other sensor ranges, or configure vegetation.coefficients"
        )
    y, x = a[ok], b[ok]
    if method == "ols":
        xm, ym = x.mean(), y.mean()
        var = float(((x - xm) ** 2).sum())
        if var == 0.0:
            raise ValueError(
                f"fit_calibration: the {oth_s} composite of {year} is constant over the {n} common pixels; "
                "no gain can be fitted (use method 'offset')"
            )
        gain = float(((x - xm) * (y - ym)).sum() / var)
        offset = float(ym - gain * xm)
    else:
        gain, offset = 1.0, float((y - x).mean())
    res = y - (offset + gain * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((res**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    cal = Calibration(
        source_sensor=oth_s,
        target_sensor=ref_s,
        gain=gain,
        offset=offset,
        n_pixels=n,
        r2=r2,
        method=method,
        year=int(year),
        index=str(index or reference.name or "ndvi"),
    )
    log.info(
        "calibration %s -> %s (%s, %d): %s = %.4f + %.4f * %s, n = %d, r2 = %.3f",
        oth_s, ref_s, cal.index, year, ref_s, offset, gain, oth_s, n, r2,
    )  # fmt: skip
    return cal


def homogeneous_pixels(values: np.ndarray, window_px: int, max_std: float) -> np.ndarray:
    """Pixels whose ``window_px`` square neighbourhood is complete (no NaN) and varies by at
    most ``max_std`` (population standard deviation), as a boolean (y, x) array."""
    from scipy.ndimage import uniform_filter

    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    filled = np.where(finite, v, 0.0)
    size = int(window_px)
    share = uniform_filter(finite.astype(np.float64), size=size, mode="constant")
    mean = uniform_filter(filled, size=size, mode="constant")
    mean_sq = uniform_filter(filled**2, size=size, mode="constant")
    complete = share > 1.0 - 1e-9
    var = np.where(complete, mean_sq - mean**2, np.inf)
    return complete & (np.sqrt(np.maximum(var, 0.0)) <= float(max_std))


def apply_calibration(da: xr.DataArray, cal: Calibration) -> xr.DataArray:
    """``offset + gain * da`` (float32, NaN stays NaN), attrs recording the calibration.

    Raises ``ValueError`` when ``da`` carries a ``sensor`` attribute other than
    ``cal.source_sensor``.
    """
    s = da.attrs.get("sensor")
    if s is not None and s != cal.source_sensor:
        raise ValueError(
            f"apply_calibration: the array is from {s!r} but the calibration maps {cal.source_sensor!r} "
            f"onto {cal.target_sensor!r}"
        )
    out = (np.float32(cal.offset) + np.float32(cal.gain) * da.astype(np.float32)).astype(np.float32)
    out.name = da.name
    out.attrs = {
        **da.attrs,
        "sensor": cal.target_sensor,
        "calibrated_from": cal.source_sensor,
        "calibration": json.dumps(cal.to_dict()),
    }
    return out


def calibration_from_config(mapping: Mapping[str, Any], *, key: str = "vegetation.calibration") -> Calibration:
    """A configured calibration, e.g. ``{"from": "modis", "to": "landsat", "gain": 1.0, "offset": -0.04}``.

    Optional keys: ``index`` (default ``ndvi``), ``year`` (informative). ``key`` names the
    config entry in errors.
    """
    if not isinstance(mapping, Mapping):
        raise ValueError(f"config key {key}: expected a mapping with from, to, gain, offset; found {mapping!r}")
    unknown = sorted(set(mapping) - {"from", "to", "gain", "offset", "index", "year"})
    if unknown:
        raise ValueError(f"config key {key}: unknown entries {unknown}; expected from, to, gain, offset, index, year")
    for k in ("from", "to"):
        if mapping.get(k) not in SENSORS:
            raise ValueError(f"config key {key}.{k}: expected one of {SENSORS}, found {mapping.get(k)!r}")
    if mapping["from"] == mapping["to"]:
        raise ValueError(f"config key {key}: 'from' and 'to' are both {mapping['from']!r}")
    coef = {}
    for k, default in (("gain", 1.0), ("offset", 0.0)):
        v = mapping.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
            raise ValueError(f"config key {key}.{k}: expected a finite number, found {v!r}")
        coef[k] = float(v)
    if coef["gain"] <= 0:
        raise ValueError(f"config key {key}.gain: expected a positive gain, found {coef['gain']}")
    index = str(mapping.get("index", "ndvi"))
    if index not in ("ndvi", "evi"):
        raise ValueError(f"config key {key}.index: expected 'ndvi' or 'evi', found {index!r}")
    year = mapping.get("year")
    return Calibration(
        source_sensor=str(mapping["from"]),
        target_sensor=str(mapping["to"]),
        gain=coef["gain"],
        offset=coef["offset"],
        n_pixels=0,
        r2=float("nan"),
        method="configured",
        year=int(year) if year is not None else None,
        index=index,
    )


# --------------------------------------------------------------------------------------
# the annual cube
# --------------------------------------------------------------------------------------


def _pick(calibrations: Sequence[Calibration], source: str, target: str, index: str) -> Calibration | None:
    found = [c for c in calibrations if (c.source_sensor, c.target_sensor, c.index) == (source, target, index)]
    if len(found) > 1:
        raise ValueError(
            f"annual_cube: {len(found)} calibrations of {index} from {source} to {target} "
            f"({[c.to_dict() for c in found]}); give one"
        )
    return found[0] if found else None


def annual_cube(
    composites: Mapping[int, xr.Dataset],
    sensor_of_year: Mapping[int, str],
    calibrations: Sequence[Calibration],
    *,
    reference: str,
) -> xr.Dataset:
    """Stack yearly composites on ``year`` with every year on the ``reference`` sensor's scale.

    Years of another sensor ``S`` get the calibration ``S -> reference``: NDVI with the
    ``ndvi`` calibration, EVI with the ``evi`` calibration if one is given, else with the
    ``ndvi`` one (logged). Calibrated NDVI is clipped to [-1, 1] (its range by definition).
    kNDVI of *every* year is recomputed as tanh(NDVI^2) from the cube's NDVI
    (:func:`karstflow.greening.kndvi`), never calibrated itself (a linear map of kNDVI is
    not the kNDVI of the calibrated NDVI), so all years share one definition.

    Returns ``(year, y, x)`` float32 ``ndvi``, ``evi``, ``kndvi`` and uint16
    ``clear_count``, and the :data:`REFLECTANCE_BANDS` every composite has (when a SWIR
    band is among them; float32 surface reflectance, fraction, of each year's own sensor:
    the index calibration does not apply to reflectance, and the unmixing that reads it
    takes its end-members from the same cube); ``year`` int32 with a ``sensor`` coordinate; attrs ``reference_sensor``,
    ``calibrations`` (a JSON list of the calibrations used) and ``methods``. Lazy on dask
    input. It is the stack :func:`karstflow.greening.vegetation_index_cube` takes.

    Raises ``ValueError`` for years without a sensor (or sensor attribute differing from
    ``sensor_of_year``), composites on different grids, or a sensor without a calibration
    to ``reference``.
    """
    from karstflow.greening import kndvi

    if reference not in SENSORS:
        raise ValueError(f"config key vegetation.reference_sensor: expected one of {SENSORS}, found {reference!r}")
    if not composites:
        raise ValueError("annual_cube: no composites")
    years = sorted(int(y) for y in composites)
    missing = [y for y in years if y not in sensor_of_year]
    if missing:
        raise ValueError(
            f"annual_cube: no sensor given for year(s) {missing} (sensor_of_year has {sorted(sensor_of_year)})"
        )
    first = composites[years[0]]
    # reflectance bands only when every year has them (the unmixing grades every year)
    common = [b for b in REFLECTANCE_BANDS if all(b in composites[y].data_vars for y in years)]
    if not {"swir1", "swir2"} & set(common):
        common = []
    partial = sorted({str(b) for y in years for b in composites[y].data_vars if b in REFLECTANCE_BANDS} - set(common))
    if partial:
        log.info("annual_cube: reflectance band(s) %s not in every year's composite: left out of the cube", partial)
    used: dict[tuple[str, str], Calibration] = {}
    parts = []
    for y in years:
        ds = composites[y]
        sensor = str(sensor_of_year[y])
        if sensor not in SENSORS:
            raise ValueError(f"annual_cube: year {y}: unknown sensor {sensor!r}; expected one of {SENSORS}")
        attr = ds.attrs.get("sensor")
        if attr is not None and attr != sensor:
            raise ValueError(f"annual_cube: the composite of {y} is from {attr!r} but sensor_of_year says {sensor!r}")
        for var in ("ndvi", "evi", "clear_count"):
            if var not in ds.data_vars:
                found = sorted(map(str, ds.data_vars))
                raise ValueError(f"annual_cube: the composite of {y} has no {var!r} (found {found})")
        check_same_grid(first, ds, f"the composite of {years[0]}", f"the composite of {y}")
        nd = ds["ndvi"].astype(np.float32)
        ev = ds["evi"].astype(np.float32)
        nd.attrs, ev.attrs = {}, {}
        if sensor != reference:
            cal_nd = _pick(calibrations, sensor, reference, "ndvi")
            if cal_nd is None:
                raise ValueError(
                    f"annual_cube: year {y} is from {sensor} but no calibration maps {sensor} onto the reference "
                    f"sensor {reference} (give one in vegetation.calibration or an overlap year to fit it)"
                )
            cal_ev = _pick(calibrations, sensor, reference, "evi")
            if cal_ev is None:
                log.info("annual_cube: no EVI calibration %s -> %s; EVI takes the NDVI one", sensor, reference)
                cal_ev = cal_nd
            nd = apply_calibration(nd, cal_nd).clip(-1.0, 1.0)
            ev = apply_calibration(ev, cal_ev)
            used[(sensor, "ndvi")] = cal_nd
            used[(sensor, "evi")] = cal_ev
        part = xr.Dataset(
            {
                "ndvi": nd,
                "evi": ev,
                "kndvi": kndvi(nd),
                "clear_count": ds["clear_count"].fillna(0).astype(np.uint16),
                **{b: ds[b].astype(np.float32).drop_attrs() for b in common},
            }
        )
        parts.append(part.expand_dims(year=[y]))
    cube = xr.concat(parts, dim="year", coords="minimal", compat="override", join="exact")
    cube = cube.assign_coords(
        year=np.asarray(years, dtype=np.int32), sensor=("year", [str(sensor_of_year[y]) for y in years])
    )
    attrs = {
        "ndvi": {"long_name": "growing-season NDVI on the reference sensor's scale", "units": "1"},
        "evi": {"long_name": "growing-season EVI on the reference sensor's scale", "units": "1"},
        "kndvi": {"long_name": "kernel NDVI, tanh(NDVI^2) of the cube's NDVI", "units": "1"},
        "clear_count": {"long_name": "clear observations in the growing season", "units": "1"},
        **{
            b: {
                "long_name": f"growing-season {b} surface reflectance of the year's sensor (not cross-calibrated)",
                "units": "1",
            }
            for b in common
        },
    }
    for var, a in attrs.items():
        cube[var].attrs = {**a, "reference_sensor": reference}
    # the composites' CF grid mapping (spatial_ref, with CRS and transform) comes through
    # the concatenation; write it only for composites that have none
    if "spatial_ref" not in cube.coords:
        try:
            crs = first.rio.crs
        except Exception:  # noqa: BLE001 - a composite without CRS stays without
            crs = None
        if crs is not None:
            cube = cube.rio.write_crs(crs)
    if "spatial_ref" in cube.coords:
        for data in cube.data_vars.values():
            # the CF link as an attribute: karstflow.io.write_netcdf keeps it
            data.attrs["grid_mapping"] = "spatial_ref"
    cube.attrs = {
        "reference_sensor": reference,
        "calibrations": json.dumps([{**c.to_dict(), "applied_to": k[1]} for k, c in used.items()]),
        "methods": ",".join(sorted({str(composites[y].attrs.get("method", "")) for y in years} - {""})),
    }
    return cube
