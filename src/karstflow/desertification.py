"""Karst rocky desertification (RD): vegetation cover, bedrock exposure, grading, areas and transitions.

Pure functions over xarray / numpy (lazy on dask-backed cubes); no paths.

Fractional vegetation cover (FVC), the dimidiate pixel model (Gutman and Ignatov 1998;
with end-members at cumulative-frequency percentiles as in Li Miaomiao et al. 2004)::

    FVC = (NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil), clipped to [0, 1]

The NDVI end-members are percentiles of the land pixels only (:func:`fvc_endmembers`):
water and built-up land (land-cover classes, and NDVI < 0 everywhere) are left out, since
their low NDVI is not bare soil and would pull NDVI_soil down.

Bedrock exposure (:func:`exposure_method`) comes from, in order of preference: a
``bedrock_exposure`` layer the region gives; linear spectral unmixing of the annual
surface reflectance into vegetation, soil and rock (:func:`unmix`, fully constrained
least squares as Heinz and Chang 2001, end-members from the image by maximum simplex
volume as N-FINDR, Winter 1999, :func:`image_endmembers`, or from the config); or, only
when chosen, ``1 - FVC`` (then the grade is in effect the FVC grade, since the two
indicators carry the same information).

Grading. Each indicator gives a grade 0..5 (:data:`RD_GRADES`: none, potential, light,
moderate, severe, extremely severe) by five thresholds, with the boundaries as Xiong et
al. (2002) write their classes in whole percent (:data:`XIONG_INCLUSIVE`):

* bedrock exposure (fraction of rock outcrop), defaults 0.2, 0.3, 0.5, 0.7, 0.9: none
  < 20 %, potential 20-30 %, light 31-50 %, moderate 51-70 %, severe 71-90 %, extremely
  severe > 90 %; so potential is ``exposure >= 0.2`` and every further grade is
  ``exposure > t`` (30 % exactly is potential, above 30 % light);
* cover (FVC here; "vegetation + soil cover" in Xiong et al. 2002), defaults 0.7, 0.5,
  0.35, 0.2, 0.1: none > 70 %, potential 50-70 %, light 35-50 %, moderate 20-35 %, severe
  10-20 %, extremely severe < 10 %; so potential .. severe are ``cover <= t`` (70 % exactly
  is potential) and extremely severe is ``cover < 0.1``;
* slope (degrees; optional): grade = number of thresholds with ``slope >= t``; defaults
  15, 18, 22, 25, 30 deg (Xiong et al. 2002).

Values are compared with the thresholds in the values' own precision, so a float32
exposure of 0.3 is exactly on the boundary.

The pixel grade combines the indicators in use by ``combine``: ``"min"`` (the least
severe: a grade needs all its indicators, so low-NDVI land that is not rocky, e.g.
built-up land or water, and rocky land under closed vegetation are not graded as RD)
or ``"max"`` (the most severe). An indicator that is NaN at a pixel (e.g. a missing NDVI
year) is left out there; with none left, or outside the carbonate mask, the grade is
:data:`RD_NODATA` (255).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ENDMEMBERS",
    "EXPOSURE_LABELS",
    "EXPOSURE_METHODS",
    "RD_GRADES",
    "RD_NODATA",
    "UNMIXING_BANDS",
    "XIONG_INCLUSIVE",
    "check_grading_statistics",
    "configured_endmembers",
    "exposure_method",
    "fcls_unmix",
    "fvc_dimidiate",
    "fvc_endmember_mask",
    "fvc_endmembers",
    "grade_area_table",
    "grade_indicator",
    "image_endmembers",
    "rd_grade",
    "rd_summary",
    "transition_table",
    "unmix",
    "unmixing_bands",
]

RD_GRADES: dict[int, str] = {
    0: "none",
    1: "potential",
    2: "light",
    3: "moderate",
    4: "severe",
    5: "extremely severe",
}
RD_NODATA = 255

#: Xiong et al. (2002) thresholds: exposure and slope rise with the grade, cover falls.
DEFAULT_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "exposure": (0.2, 0.3, 0.5, 0.7, 0.9),
    "cover": (0.7, 0.5, 0.35, 0.2, 0.1),
    "slope_deg": (15.0, 18.0, 22.0, 25.0, 30.0),
}
#: Whether each threshold (potential .. extremely severe) is inclusive, as Xiong et al.
#: (2002) write the classes in whole percent: exposure "none < 20 %, potential 20-30 %,
#: light 31-50 % ... extremely severe > 90 %" (>= 0.2, then > t); cover "none > 70 %,
#: potential 50-70 %, light 35-50 % ... extremely severe < 10 %" (<= t, then < 0.1).
XIONG_INCLUSIVE: dict[str, tuple[bool, ...]] = {
    "exposure": (True, False, False, False, False),
    "cover": (True, True, True, True, False),
    "slope": (True, True, True, True, True),
}
_INDICATORS = ("exposure", "cover", "slope")
_THRESHOLD_KEY = {"exposure": "exposure", "cover": "cover", "slope": "slope_deg"}

#: How the bedrock exposure is obtained (config ``desertification.exposure_method``).
EXPOSURE_METHODS = ("auto", "layer", "unmixing", "one_minus_fvc")
#: End-members of the unmixing, in the order of the fractions.
ENDMEMBERS = ("vegetation", "soil", "rock")
#: Reflectance variables of the annual stack the unmixing uses (names and units of
#: :data:`karstflow.vegetation.REFLECTANCE_BANDS`: surface reflectance, fraction 0..1).
UNMIXING_BANDS = ("blue", "red", "nir", "swir1", "swir2")
#: What the cube's ``exposure_source`` attribute says for each method (the source file is added).
EXPOSURE_LABELS: dict[str, str] = {
    "layer": "bedrock exposure layer",
    "unmixing": "linear spectral unmixing (vegetation, soil, rock) of the annual reflectance",
    "one_minus_fvc": "1 - FVC (desertification.exposure_method: one_minus_fvc; not an independent exposure estimate)",
}


def fvc_dimidiate(ndvi: xr.DataArray, ndvi_soil: float, ndvi_veg: float) -> xr.DataArray:
    """FVC = (NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil) clipped to [0, 1]; NaN stays NaN."""
    if not np.isfinite(ndvi_soil) or not np.isfinite(ndvi_veg) or ndvi_veg <= ndvi_soil:
        raise ValueError(
            f"FVC end-members must be finite with NDVI_veg > NDVI_soil, found soil {ndvi_soil!r}, veg {ndvi_veg!r}"
        )
    fvc = ((ndvi - np.float32(ndvi_soil)) / np.float32(ndvi_veg - ndvi_soil)).clip(0.0, 1.0).astype(np.float32)
    fvc.name = "fvc"
    fvc.attrs = {
        "long_name": "fractional vegetation cover (dimidiate pixel model)",
        "units": "1",
        "ndvi_soil": float(ndvi_soil),
        "ndvi_veg": float(ndvi_veg),
    }
    return fvc


def _check_thresholds(name: str, t: Sequence[float], decreasing: bool) -> tuple[float, ...]:
    t = tuple(float(v) for v in t)
    if len(t) != 5:
        raise ValueError(f"{name} thresholds: expected 5 values (potential .. extremely severe), found {len(t)}")
    steps = np.diff(t)
    if (decreasing and not np.all(steps < 0)) or (not decreasing and not np.all(steps > 0)):
        order = "decreasing" if decreasing else "increasing"
        raise ValueError(f"{name} thresholds must be strictly {order}, found {list(t)}")
    return t


def grade_indicator(
    values: xr.DataArray,
    thresholds: Sequence[float],
    *,
    decreasing: bool = False,
    inclusive: Sequence[bool] | None = None,
) -> xr.DataArray:
    """Grade 0..5 of one indicator: the number of thresholds passed; 255 where NaN.

    ``decreasing=False``: passed means ``value >= t`` where ``inclusive`` (per threshold)
    and ``value > t`` otherwise (exposure, slope); ``decreasing=True``: ``value <= t`` /
    ``value < t`` (cover). ``inclusive`` defaults to ``>=`` for increasing and ``<`` for
    decreasing indicators; :func:`rd_grade` passes :data:`XIONG_INCLUSIVE`. Thresholds are
    cast to the values' float dtype first, so a float32 0.3 equals the threshold 0.3.
    """
    t = _check_thresholds(str(values.name or "indicator"), thresholds, decreasing)
    inc = tuple(bool(i) for i in inclusive) if inclusive is not None else (not decreasing,) * len(t)
    if len(inc) != len(t):
        raise ValueError(f"inclusive: expected {len(t)} flags, found {len(inc)}")
    kind = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype(np.float64)
    grade = xr.zeros_like(values, dtype=np.uint8)
    for thr, closed in zip(t, inc, strict=True):
        tv = kind.type(thr)
        if decreasing:
            passed = values <= tv if closed else values < tv
        else:
            passed = values >= tv if closed else values > tv
        grade = grade + passed.astype(np.uint8)
    return xr.where(values.isnull(), np.uint8(RD_NODATA), grade).astype(np.uint8)


def rd_grade(
    *,
    carbonate: xr.DataArray,
    exposure: xr.DataArray | None = None,
    cover: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    indicators: Sequence[str] = ("exposure", "cover"),
    combine: str = "min",
    thresholds: Mapping[str, Sequence[float]] | None = None,
) -> xr.DataArray:
    """RD grade (uint8, :data:`RD_GRADES`, nodata 255) within the carbonate mask.

    ``carbonate`` is True/1 on carbonate rock (NaN or 0 elsewhere); the indicators are
    broadcast against each other (e.g. ``(year, y, x)`` exposure and cover with a
    ``(y, x)`` slope). See the module docstring for the rule.
    """
    if combine not in ("min", "max"):
        raise ValueError(f"combine must be 'min' or 'max', found {combine!r}")
    if not indicators:
        raise ValueError("at least one RD indicator is needed (exposure, cover, slope)")
    bad = [i for i in indicators if i not in _INDICATORS]
    if bad:
        raise ValueError(f"unknown RD indicator(s) {bad}; expected some of {_INDICATORS}")
    thr = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    layers = {"exposure": exposure, "cover": cover, "slope": slope}
    grades = []
    for name in indicators:
        da = layers[name]
        if da is None:
            raise ValueError(f"RD indicator {name!r} is in use but no {name} layer was given")
        grades.append(
            grade_indicator(
                da.rename(name),
                thr[_THRESHOLD_KEY[name]],
                decreasing=name == "cover",
                inclusive=XIONG_INCLUSIVE[name],
            )
        )
    grades = list(xr.broadcast(*grades))
    # missing indicators drop out: 255 -> a value that loses the min / max
    if combine == "min":
        stacked = [g.astype(np.int16).where(g != RD_NODATA, 6) for g in grades]
        out = stacked[0]
        for g in stacked[1:]:
            out = cast(xr.DataArray, np.minimum(out, g))  # a DataArray through __array_ufunc__
        out = out.where(out != 6, RD_NODATA)
    else:
        stacked = [g.astype(np.int16).where(g != RD_NODATA, -1) for g in grades]
        out = stacked[0]
        for g in stacked[1:]:
            out = cast(xr.DataArray, np.maximum(out, g))
        out = out.where(out != -1, RD_NODATA)
    on_carbonate = carbonate.fillna(0) > 0
    out = xr.where(on_carbonate, out, RD_NODATA).astype(np.uint8)
    dims = [d for d in ("year",) if d in out.dims] + [d for d in out.dims if d != "year"]
    out = out.transpose(*dims)
    out.name = "rd_grade"
    out.attrs = {
        "long_name": "rocky desertification grade",
        "flag_values": list(RD_GRADES),
        "flag_meanings": " ".join(v.replace(" ", "_") for v in RD_GRADES.values()),
        "nodata": RD_NODATA,
        "indicators": ",".join(indicators),
        "combine": combine,
    }
    return out


# --------------------------------------------------------------------------------------
# FVC end-members without water and built-up land
# --------------------------------------------------------------------------------------


def fvc_endmember_mask(
    ndvi: xr.DataArray,
    landcover: Sequence[xr.DataArray] = (),
    exclude_classes: Sequence[int] = (7, 8),
) -> xr.DataArray:
    """Pixels that may serve as FVC end-members: True on land that is neither water nor built-up.

    Left out: pixels with NDVI < 0 (open water; also where no land-cover map is given), and
    pixels whose class is in ``exclude_classes`` (default 7 water, 8 built-up of the
    legend) in *any* of the ``landcover`` maps (``(y, x)``, codes; a pixel that was water
    or built-up in some year is not a reliable soil or vegetation end-member). Water and
    built-up land have low NDVI that is not bare soil: kept, they pull NDVI_soil down and
    inflate the FVC of every real bare pixel.
    """
    keep = ndvi >= 0
    codes = [int(c) for c in exclude_classes]
    for lc in landcover:
        bad = lc.isin(codes)
        keep = keep & ~bad
    return keep


def fvc_endmembers(
    ndvi: xr.DataArray,
    percentiles: Sequence[float] = (5.0, 95.0),
    *,
    mask: xr.DataArray | None = None,
) -> tuple[float, float]:
    """NDVI_soil and NDVI_veg: the ``percentiles`` of NDVI over ``mask`` (all years pooled).

    ``mask`` (see :func:`fvc_endmember_mask`) is broadcast against ``ndvi``; pixels outside
    it are left out of the percentiles.
    """
    from karstflow.greening import percentile_endmembers

    values = ndvi if mask is None else ndvi.where(mask)
    lo, hi = (float(p) for p in percentiles)
    return percentile_endmembers(values.rename(ndvi.name or "ndvi"), lo, hi)


# --------------------------------------------------------------------------------------
# bedrock exposure
# --------------------------------------------------------------------------------------


def unmixing_bands(names: Sequence[str]) -> list[str]:
    """The reflectance bands of :data:`UNMIXING_BANDS` among ``names`` usable for unmixing.

    Rock and soil differ most in the short-wave infrared (carbonate absorption near
    2.3 um, soil clay and iron features), so at least one SWIR band is needed, and at least
    three bands in all (three end-members under the sum-to-one constraint need two, a third
    leaves a residual to choose by); otherwise the list is empty.
    """
    have = [b for b in UNMIXING_BANDS if b in set(names)]
    if not ({"swir1", "swir2"} & set(have)) or len(have) < 3:
        return []
    return have


def exposure_method(configured: str, *, has_layer: bool, bands: Sequence[str], source: str = "") -> str:
    """The exposure method in use: ``layer``, ``unmixing`` or ``one_minus_fvc``.

    ``auto`` (the default): the region's ``bedrock_exposure`` layer when given, else
    unmixing when the annual stack has the bands (:func:`unmixing_bands`); without either
    it stops, since 1 - FVC is no independent exposure estimate: it is used only when
    ``desertification.exposure_method`` says ``one_minus_fvc``.
    """
    if configured not in EXPOSURE_METHODS:
        raise ValueError(
            f"config key desertification.exposure_method: expected one of {EXPOSURE_METHODS}, found {configured!r}"
        )
    usable = unmixing_bands(bands)
    if configured == "one_minus_fvc":
        return configured
    if configured == "layer" or (configured == "auto" and has_layer):
        if not has_layer:
            raise ValueError(
                "config key desertification.exposure_method: 'layer' needs the region input bedrock_exposure "
                "(regions.<id>.inputs.bedrock_exposure), which the region does not give"
            )
        return "layer"
    if not usable:
        need = "at least three of " + ", ".join(UNMIXING_BANDS) + " including swir1 or swir2"
        raise ValueError(
            f"{source or 'the annual stack'}: no bedrock exposure estimate is possible: the region gives no "
            f"bedrock_exposure layer and the stack has no reflectance bands to unmix (needs {need}; found "
            f"{sorted(bands) or 'none'}). Give regions.<id>.inputs.bedrock_exposure, build the stack from "
            "scenes with SWIR bands, or set config key desertification.exposure_method: one_minus_fvc "
            "(exposure = 1 - FVC, which makes the grade the FVC grade)"
        )
    return "unmixing"


def configured_endmembers(
    given: Mapping[str, Mapping[str, float]] | None, bands: Sequence[str]
) -> tuple[dict[str, dict[str, float]] | None, list[str]]:
    """The configured unmixing end-members over the stack's ``bands``, or None (image-derived).

    ``given`` is config ``desertification.unmixing.endmembers`` (end-member -> band ->
    reflectance). Returns the end-members over the bands every end-member gives and the
    stack has, and those bands; they must still be usable (:func:`unmixing_bands`).
    """
    if not given:
        return None, list(bands)
    missing = [em for em in ENDMEMBERS if em not in given]
    if missing:
        raise ValueError(
            f"config key desertification.unmixing.endmembers: missing end-member(s) {missing}; "
            f"expected {list(ENDMEMBERS)}, each band -> reflectance"
        )
    common = [b for b in bands if all(b in given[em] for em in ENDMEMBERS)]
    if not unmixing_bands(common):
        raise ValueError(
            "config key desertification.unmixing.endmembers: the end-members must give the reflectance of at "
            f"least three of the stack's bands {list(bands)} including swir1 or swir2; they give "
            f"{ {em: sorted(given[em]) for em in ENDMEMBERS} }"
        )
    return {em: {b: float(given[em][b]) for b in common} for em in ENDMEMBERS}, common


def check_grading_statistics(stats: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The region-wide figures the grading of every pixel (or tile) shares, checked.

    ``stats`` is what rule desertification_endmembers writes (``source``, its file):
    ``ndvi_soil`` and ``ndvi_veg`` (the FVC end-members, :func:`fvc_endmembers` over the
    whole region), ``fvc_percentiles``, ``fvc_endmember_exclusion``, ``exposure_method``
    (``layer``, ``unmixing`` or ``one_minus_fvc``, :func:`exposure_method`),
    ``exposure_source`` and, for unmixing, ``unmixing`` with ``bands``, ``endmembers``
    (:data:`ENDMEMBERS` -> band -> reflectance) and ``endmember_source``. Taken once for
    the region, they make a tile grade its pixels exactly as the whole region would.
    """
    required = (
        "ndvi_soil",
        "ndvi_veg",
        "fvc_percentiles",
        "fvc_endmember_exclusion",
        "exposure_method",
        "exposure_source",
    )
    missing = [k for k in required if k not in stats]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; expected {list(required)} (+ unmixing)")
    soil, veg = stats["ndvi_soil"], stats["ndvi_veg"]
    if not all(isinstance(v, int | float) and np.isfinite(v) for v in (soil, veg)) or veg <= soil:
        raise ValueError(
            f"{source}: ndvi_soil and ndvi_veg must be finite numbers with ndvi_veg > ndvi_soil, "
            f"found {soil!r}, {veg!r}"
        )
    method = stats["exposure_method"]
    if method not in EXPOSURE_LABELS:
        raise ValueError(f"{source}: exposure_method must be one of {list(EXPOSURE_LABELS)}, found {method!r}")
    out = dict(stats)
    if method == "unmixing":
        spec = stats.get("unmixing") or {}
        bands = list(spec.get("bands") or [])
        endmembers = spec.get("endmembers") or {}
        if not unmixing_bands(bands) or unmixing_bands(bands) != bands:
            raise ValueError(
                f"{source}: unmixing.bands must be at least three of {list(UNMIXING_BANDS)} in that order, "
                f"including swir1 or swir2; found {bands}"
            )
        absent = [(em, b) for em in ENDMEMBERS for b in bands if b not in (endmembers.get(em) or {})]
        if absent:
            raise ValueError(f"{source}: unmixing.endmembers lack the reflectance of {absent}")
        if "endmember_source" not in spec:
            raise ValueError(f"{source}: unmixing.endmember_source is missing")
    elif stats.get("unmixing") is not None:
        raise ValueError(f"{source}: unmixing end-members given with exposure_method {method!r}")
    return out


def fcls_unmix(spectra: np.ndarray, endmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fully constrained linear unmixing (fractions >= 0, summing to 1) of pixel spectra.

    ``spectra`` ``(..., b)``, ``endmembers`` ``(m, b)`` with m <= b + 1. Returns the
    fractions ``(..., m)`` and the RMS residual ``(...)``, NaN where a band is NaN.

    The sum-to-one least squares solution of a set E of end-members is closed-form
    (a Lagrange multiplier: f = f_u - A^-1 1 (1' f_u - 1) / (1' A^-1 1), A = E E',
    f_u = A^-1 E x); the non-negativity constraint is met exactly by solving every subset
    of end-members and keeping, per pixel, the feasible subset of least residual, which is
    the fully constrained solution of Heinz and Chang (2001) (the optimum lies on one face
    of the simplex). With three end-members that is seven small solves, vectorised.
    """
    from itertools import combinations

    x = np.asarray(spectra, dtype=np.float64)
    e = np.asarray(endmembers, dtype=np.float64)
    m = e.shape[0]
    flat = x.reshape(-1, x.shape[-1])
    ok = np.all(np.isfinite(flat), axis=1)
    xs = np.where(ok[:, None], flat, 0.0)
    best_res = np.full(len(xs), np.inf)
    best = np.zeros((len(xs), m))
    for k in range(m, 0, -1):
        for subset in combinations(range(m), k):
            sub = e[list(subset)]
            a = sub @ sub.T
            try:
                a_inv = np.linalg.inv(a)
            except np.linalg.LinAlgError:
                continue
            ones = np.ones(k)
            ai1 = a_inv @ ones
            fu = xs @ (sub.T @ a_inv.T)  # (n, k): A^-1 E x per pixel
            f = fu - np.outer(fu.sum(axis=1) - 1.0, ai1) / float(ones @ ai1)
            res = np.sqrt(np.mean((xs - f @ sub) ** 2, axis=1))
            feasible = np.all(f >= -1e-9, axis=1) & (res < best_res - 1e-15)
            if feasible.any():
                full = np.zeros((int(feasible.sum()), m))
                full[:, list(subset)] = np.clip(f[feasible], 0.0, None)
                best[feasible] = full
                best_res[feasible] = res[feasible]
    best[~ok] = np.nan
    best_res[~ok] = np.nan
    return best.reshape(*x.shape[:-1], m), best_res.reshape(x.shape[:-1])


def unmix(bands: xr.Dataset, endmembers: Mapping[str, Mapping[str, float]]) -> xr.Dataset:
    """Vegetation, soil and rock fractions of every pixel (and year) of ``bands``, lazily.

    ``bands``: reflectance variables (fraction 0..1) named as in :data:`UNMIXING_BANDS`,
    all of the same dims; ``endmembers``: ``{"vegetation": {band: reflectance}, "soil":
    ..., "rock": ...}`` over the same bands (:func:`image_endmembers` or the config).
    Returns float32 ``vegetation_fraction``, ``soil_fraction``, ``bedrock_exposure`` (the
    rock fraction) and ``unmixing_rmse`` (reflectance), by :func:`fcls_unmix`, one dask
    block at a time.
    """
    names = [str(b) for b in bands.data_vars]
    missing = [(em, b) for em in ENDMEMBERS for b in names if b not in endmembers.get(em, {})]
    if missing:
        raise ValueError(
            f"unmixing end-members: no reflectance for {missing} (end-members need {list(ENDMEMBERS)} over the "
            f"bands {names})"
        )
    e = np.array([[float(endmembers[em][b]) for b in names] for em in ENDMEMBERS])
    stacked = xr.concat([bands[b].astype(np.float32) for b in names], dim="band").transpose(..., "band")
    if stacked.chunks is not None:
        stacked = stacked.chunk({"band": -1})  # one block holds every band of its pixels

    def _block(x: np.ndarray) -> np.ndarray:
        f, r = fcls_unmix(x, e)
        return np.concatenate([f, r[..., None]], axis=-1).astype(np.float32)

    out = xr.apply_ufunc(
        _block,
        stacked,
        input_core_dims=[["band"]],
        output_core_dims=[["part"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"part": len(ENDMEMBERS) + 1}},
    )
    names_out = ("vegetation_fraction", "soil_fraction", "bedrock_exposure", "unmixing_rmse")
    ds = xr.Dataset({n: out.isel(part=i, drop=True) for i, n in enumerate(names_out)})
    long = {
        "vegetation_fraction": "vegetation fraction (linear spectral unmixing)",
        "soil_fraction": "bare soil fraction (linear spectral unmixing)",
        "bedrock_exposure": "bedrock exposure: rock fraction (linear spectral unmixing)",
        "unmixing_rmse": "RMS residual of the unmixing (reflectance)",
    }
    for n in names_out:
        ds[n].attrs = {"long_name": long[n], "units": "1"}
    return ds


def image_endmembers(
    bands: xr.Dataset,
    *,
    mask: xr.DataArray | None = None,
    max_samples: int = 200_000,
    vertex_px: int = 20,
) -> dict[str, dict[str, float]]:
    """Vegetation, soil and rock end-members from the image: the purest pixels.

    A regular subsample (every k-th pixel of each dim, at most ``max_samples``) of the
    pixels finite in every band and inside ``mask`` (e.g. carbonate land without water and
    built-up) is projected on its first two principal components; the three pixels
    spanning the triangle of largest area (maximum simplex volume, N-FINDR, Winter 1999,
    searched over the convex hull) are the purest, and each end-member is the mean
    spectrum of the ``vertex_px`` sample pixels nearest its vertex in that plane (noise).
    Points beyond the 0.1 / 99.9 percentiles of a component are left out first, so single
    outliers (cloud, shadow) do not become vertices. The vertex of highest NDVI is
    vegetation; of the two bare vertices the brighter in the SWIR is rock (bare limestone
    and dolomite reflect more in the SWIR than the clay- and iron-rich karst soils, which
    absorb there; e.g. the USGS spectral library, Kokaly et al. 2017), the other soil.
    Returns ``{end-member: {band: reflectance}}``.
    """
    from scipy.spatial import ConvexHull, QhullError

    names = [str(b) for b in bands.data_vars]
    if "red" not in names or "nir" not in names:
        raise ValueError(f"image end-members need the red and nir bands (to tell vegetation), found {names}")
    da0 = bands[names[0]]
    total = int(np.prod(da0.shape))
    step = max(1, int(np.ceil((total / max(int(max_samples), 1)) ** (1.0 / da0.ndim))))
    sel = {d: slice(None, None, step) for d in da0.dims}
    cols = [np.asarray(bands[b].isel(sel).values, dtype=np.float64).ravel() for b in names]
    x = np.stack(cols, axis=1)
    ok = np.all(np.isfinite(x), axis=1)
    if mask is not None:
        m = np.asarray(mask.broadcast_like(da0).isel(sel).values).ravel()
        ok &= m.astype(bool)
    x = x[ok]
    if len(x) < 3 * vertex_px:
        raise ValueError(
            f"image end-members: only {len(x)} sampled pixels have every band ({names}) on unmasked land; "
            "give desertification.unmixing.endmembers"
        )
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    pcs = (x - mean) @ vt[:2].T
    lo, hi = np.percentile(pcs, [0.1, 99.9], axis=0)
    inner = np.all((pcs >= lo) & (pcs <= hi), axis=1)
    pts = pcs[inner]
    try:
        hull = ConvexHull(pts)
    except QhullError as err:
        raise ValueError(f"image end-members: the sampled spectra span no plane ({err}); configure them") from None
    v = pts[hull.vertices]
    best, tri = -1.0, (0, 1, 2)
    n = len(v)
    for i in range(n):
        for j in range(i + 1, n):
            d1 = v[j] - v[i]
            d2 = v - v[i]
            area = np.abs(d1[0] * d2[:, 1] - d1[1] * d2[:, 0]) / 2.0
            k = int(np.argmax(area))
            if area[k] > best:
                best, tri = float(area[k]), (i, j, k)
    spectra = []
    xin = x[inner]
    for idx in tri:
        dist = np.hypot(*(pts - v[idx]).T)
        near = np.argsort(dist)[: int(vertex_px)]
        spectra.append(xin[near].mean(axis=0))
    red, nir = names.index("red"), names.index("nir")
    ndvi = [(s[nir] - s[red]) / (s[nir] + s[red]) for s in spectra]
    veg = int(np.argmax(ndvi))
    rest = [i for i in range(3) if i != veg]
    swir = [names.index(b) for b in ("swir1", "swir2") if b in names] or list(range(len(names)))
    bright = [float(np.mean(spectra[i][swir])) for i in rest]
    rock, soil = (rest[0], rest[1]) if bright[0] >= bright[1] else (rest[1], rest[0])
    out = {
        em: {b: float(spectra[i][k]) for k, b in enumerate(names)}
        for em, i in (("vegetation", veg), ("soil", soil), ("rock", rock))
    }
    log.info("image end-members over %d sampled pixels (%s): %s", len(x), ", ".join(names), out)
    return out


def grade_area_table(grades: xr.DataArray, pixel_area_km2: float) -> pd.DataFrame:
    """Area by grade and year: columns year, grade_code, grade, pixels, area_km2, share.

    ``share`` is of the graded pixels of that year (carbonate with data). Computes one
    year at a time, so a dask cube never has to fit in memory at once.
    """
    rows = []
    has_year = "year" in grades.dims
    years = grades["year"].values.tolist() if has_year else [None]
    for year in years:
        g = np.asarray((grades.sel(year=year) if has_year else grades).values).ravel()
        counts = np.bincount(g, minlength=256)
        graded = int(counts[: len(RD_GRADES)].sum())
        for code, name in RD_GRADES.items():
            n = int(counts[code])
            rows.append(
                {
                    "year": year,
                    "grade_code": code,
                    "grade": name,
                    "pixels": n,
                    "area_km2": n * pixel_area_km2,
                    "share": n / graded if graded else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def transition_table(
    first: xr.DataArray | np.ndarray, last: xr.DataArray | np.ndarray, pixel_area_km2: float, years: tuple[int, int]
) -> pd.DataFrame:
    """Complete grade-to-grade transition matrix in long form (every pair, zeros too).

    Columns: from_year, to_year, from_code, from_grade, to_code, to_grade, pixels,
    area_km2. Pixels without a grade in either year are left out.
    """
    a = np.asarray(first).ravel()
    b = np.asarray(last).ravel()
    if a.shape != b.shape:
        raise ValueError(f"grade maps differ in size: {a.shape} vs {b.shape}")
    ok = (a != RD_NODATA) & (b != RD_NODATA)
    k = len(RD_GRADES)
    counts = np.bincount(a[ok].astype(np.int64) * k + b[ok], minlength=k * k).reshape(k, k)
    rows = [
        {
            "from_year": int(years[0]),
            "to_year": int(years[1]),
            "from_code": i,
            "from_grade": RD_GRADES[i],
            "to_code": j,
            "to_grade": RD_GRADES[j],
            "pixels": int(counts[i, j]),
            "area_km2": int(counts[i, j]) * pixel_area_km2,
        }
        for i in range(k)
        for j in range(k)
    ]
    return pd.DataFrame(rows)


def rd_summary(area: pd.DataFrame, transitions: pd.DataFrame, *, rd_min_grade: int = 2) -> dict[str, Any]:
    """Headline RD figures from :func:`grade_area_table` and :func:`transition_table`.

    RD area is the area graded ``rd_min_grade`` (light) or worse. ``reduction_rate`` is
    ``(A_first - A_last) / A_first``; ``annual_change_km2_per_yr`` is the OLS slope of the
    yearly RD area; ``improved_km2`` / ``worsened_km2`` are the areas whose grade fell /
    rose from the first to the last year.
    """
    if rd_min_grade not in RD_GRADES or rd_min_grade == 0:
        raise ValueError(f"rd_min_grade must be one of 1..5, found {rd_min_grade!r}")
    rd = area[area["grade_code"] >= rd_min_grade].groupby("year")["area_km2"].sum().sort_index()
    by_grade = area.pivot(index="year", columns="grade", values="area_km2")
    years = rd.index.to_numpy()
    first, last = float(rd.iloc[0]), float(rd.iloc[-1])
    nan = float("nan")
    slope = float(np.polyfit(years.astype(float), rd.to_numpy(float), 1)[0]) if len(rd) > 1 else nan
    up = transitions["to_code"] > transitions["from_code"]
    down = transitions["to_code"] < transitions["from_code"]
    was_rd = transitions["from_code"] >= rd_min_grade
    now_rd = transitions["to_code"] >= rd_min_grade
    return {
        "rd_definition": f"grade {RD_GRADES[rd_min_grade]} or worse",
        "first_year": int(years[0]),
        "last_year": int(years[-1]),
        "rd_area_first_km2": first,
        "rd_area_last_km2": last,
        "reduction_rate": (first - last) / first if first > 0 else nan,
        "annual_change_km2_per_yr": slope,
        "rd_area_km2_by_year": {str(int(cast(int, y))): float(v) for y, v in rd.items()},
        "grade_area_first_km2": {str(k): float(v) for k, v in by_grade.iloc[0].items()},
        "grade_area_last_km2": {str(k): float(v) for k, v in by_grade.iloc[-1].items()},
        "improved_km2": float(transitions.loc[down, "area_km2"].sum()),
        "worsened_km2": float(transitions.loc[up, "area_km2"].sum()),
        "restored_from_rd_km2": float(transitions.loc[was_rd & ~now_rd, "area_km2"].sum()),
        "new_rd_km2": float(transitions.loc[~was_rd & now_rd, "area_km2"].sum()),
    }


# --------------------------------------------------------------------------------------
# carbonate rock from a lithology map
# --------------------------------------------------------------------------------------


def carbonate_from_lithology(lithology: Any, carbonate_units: Sequence[str], grid: Any, *, source: str) -> np.ndarray:
    """Carbonate-rock mask (uint8: 1 carbonate, 0 other, 255 outside the map) on ``grid``.

    ``lithology`` is the harmonised lithology layer (a GeoDataFrame in the grid CRS with a
    ``unit`` column); a pixel is carbonate when its centre falls in a polygon whose unit is
    one of ``carbonate_units`` (rasterio's default centre rule, so areas are unbiased at the
    polygon edges). Units named in the config that the map does not have stop the stage:
    a misspelt unit would silently shrink the carbonate area.
    """
    from rasterio.features import rasterize

    units = {str(u) for u in carbonate_units}
    present = {str(u) for u in lithology["unit"].dropna().unique()}
    absent = sorted(units - present)
    if absent:
        raise ValueError(
            f"{source}: carbonate unit(s) {absent} (regions.<id>.carbonate_units) are not in the lithology map; "
            f"its units: {sorted(present)[:30]}"
        )
    is_carbonate = lithology["unit"].astype(str).isin(units).to_numpy()
    shapes = [(geom, 1 if c else 0) for geom, c in zip(lithology.geometry, is_carbonate, strict=True) if geom]
    out = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=255, dtype="uint8")
    log.info(
        "%s: %d of %d polygons carbonate (%s); %.1f %% of the mapped pixels carbonate",
        source,
        int(is_carbonate.sum()),
        len(is_carbonate),
        ", ".join(sorted(units)),
        100.0 * float((out == 1).sum()) / max(int((out != 255).sum()), 1),
    )
    return out
