"""Sensors of the long vegetation record: what each product's pixels mean.

The annual vegetation cube (:mod:`karstflow.vegetation`) is built from three families of
products; every source (local files, STAC, Earth Engine) hands over their pixels under the
*canonical layer names* below, as stored by the provider (digital numbers, no scaling
applied), and this module turns them into surface reflectance, vegetation indices and a
clear-observation mask:

* ``landsat``: Landsat Collection 2 Level-2 surface reflectance (TM on Landsat 4/5, ETM+
  on Landsat 7, OLI/OLI-2 on Landsat 8/9), layers ``blue``, ``red``, ``nir`` (uint16 DN)
  and ``qa_pixel`` (uint16 bit flags); the platform of each scene (``landsat-5`` ...
  ``landsat-9``) decides the harmonisation of TM/ETM+ to OLI;
* ``sentinel-2``: Sentinel-2 L2A, layers ``B2``, ``B4``, ``B8`` (uint16 DN, BOA offset
  already removed by the acquisition layer) and ``SCL``;
* ``modis``: MODIS MOD13Q1 v061 (250 m, 16-day), layers ``ndvi``, ``evi`` (int16 x 10000)
  and ``pixel_reliability`` (int8; SummaryQA in Earth Engine).

Constants are the providers' documented values; each cites its source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

#: Sensor families the ``vegetation.sensors`` config may name.
SENSORS: tuple[str, ...] = ("landsat", "sentinel-2", "modis")

#: Canonical layer names each family's scenes carry (the contract with the sources).
LAYERS: dict[str, tuple[str, ...]] = {
    "landsat": ("blue", "red", "nir", "qa_pixel"),
    "sentinel-2": ("B2", "B4", "B8", "SCL"),
    "modis": ("ndvi", "evi", "pixel_reliability"),
}

#: First year of each family's record (Landsat 5 TM 1984, MOD13Q1 Feb 2000, S2A mid 2015;
#: Sentinel-2 L2A is global from 2017, which is the default start).
FIRST_YEAR: dict[str, int] = {"landsat": 1984, "sentinel-2": 2017, "modis": 2000}

#: Native pixel size (m) of each family's vegetation bands.
NATIVE_RESOLUTION_M: dict[str, float] = {"landsat": 30.0, "sentinel-2": 10.0, "modis": 231.656358}

# -- Landsat Collection 2 Level-2 ----------------------------------------------------------
#: Surface reflectance = DN * scale + offset (USGS Landsat 8-9 / 4-7 Collection 2 Level-2
#: Science Product Guides, LSDS-1619 / LSDS-1618: 2.75e-05 and -0.2; valid DN 7273-43636).
LANDSAT_SR_SCALE = 2.75e-05
LANDSAT_SR_OFFSET = -0.2
LANDSAT_SR_VALID_DN = (7273, 43636)
#: QA_PIXEL bits (same Product Guides, table "Pixel Quality Assessment"): bit -> meaning.
LANDSAT_QA_BITS: dict[str, int] = {
    "fill": 0,
    "dilated_cloud": 1,
    "cirrus": 2,  # OLI only; always 0 on TM/ETM+
    "cloud": 3,
    "cloud_shadow": 4,
    "snow": 5,
    "clear": 6,
    "water": 7,
}
#: Bits that make a pixel not clear by default (``vegetation.landsat_qa_not_clear``).
LANDSAT_QA_NOT_CLEAR: tuple[str, ...] = ("fill", "dilated_cloud", "cirrus", "cloud", "cloud_shadow", "snow")
#: Platform -> instrument.
LANDSAT_INSTRUMENT: dict[str, str] = {
    "landsat-4": "tm",
    "landsat-5": "tm",
    "landsat-7": "etm",
    "landsat-8": "oli",
    "landsat-9": "oli",
}
#: ETM+ (and TM) to OLI surface reflectance, OLI = intercept + slope * ETM+, per band: the
#: ordinary-least-squares functions of Roy et al. (2016), Table 2, "Characterization of
#: Landsat-7 to Landsat-8 reflective wavelength and normalized difference vegetation index
#: continuity", Remote Sensing of Environment 185, 57-70, doi:10.1016/j.rse.2015.12.024.
#: They were fitted on ETM+; applying them to TM (whose bands ETM+ continues) is the common
#: practice the paper's authors and the USGS harmonisation notes follow.
ROY2016_ETM_TO_OLI: dict[str, tuple[float, float]] = {  # band: (slope, intercept)
    "blue": (0.8474, 0.0003),
    "green": (0.8483, 0.0088),
    "red": (0.9047, 0.0061),
    "nir": (0.8462, 0.0412),
    "swir16": (0.8937, 0.0254),
    "swir22": (0.9071, 0.0172),
}

# -- Sentinel-2 L2A -------------------------------------------------------------------------
#: Reflectance = (DN + BOA offset) / 10000; the acquisition layer removes the offset.
S2_QUANTIFICATION = 10000.0

# -- MODIS MOD13Q1 v061 ---------------------------------------------------------------------
#: NDVI/EVI = DN * 0.0001, valid DN -2000..10000, fill -3000 (MOD13 User's Guide, C6.1, K.
#: Didan et al. 2019, table 2).
MODIS_VI_SCALE = 1e-4
MODIS_VI_VALID_DN = (-2000, 10000)
MODIS_VI_FILL = -3000
#: Pixel reliability (SummaryQA): -1 fill, 0 good, 1 marginal, 2 snow/ice, 3 cloudy (same
#: guide, table 4). Clear by default: good and marginal (``vegetation.modis_reliability_clear``).
MODIS_RELIABILITY: dict[int, str] = {-1: "fill", 0: "good", 1: "marginal", 2: "snow_ice", 3: "cloudy"}
MODIS_RELIABILITY_CLEAR: tuple[int, ...] = (0, 1)


# -- decoding ------------------------------------------------------------------------------

#: The layer of each family that says which pixels are clear (read with nearest resampling).
QA_LAYER: dict[str, str] = {"landsat": "qa_pixel", "sentinel-2": "SCL", "modis": "pixel_reliability"}
#: Sentinel-2 L2A SCL codes not clear for vegetation by default: 0 no data, 1 saturated or
#: defective, 3 cloud shadow, 8/9 cloud medium/high probability, 10 thin cirrus, 11 snow
#: (Sen2Cor SCL legend, ESA Sentinel-2 L2A product specification).
S2_SCL_NOT_CLEAR: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
#: Layers a scene may lack: without them EVI is NaN (NDVI and kNDVI are unaffected), e.g.
#: NDVI-only MOD13Q1 distributions such as the R package sits' sample cube.
OPTIONAL_LAYERS: dict[str, tuple[str, ...]] = {"landsat": ("blue",), "sentinel-2": ("B2",), "modis": ("evi",)}
#: Sen2Cor SCL classes 0..11.
S2_SCL_CLASSES: tuple[int, ...] = tuple(range(12))
#: Sentinel-2 DNs that are no data whatever the baseline: 0 (L2A NO_DATA) and 65535 (the
#: nodata of many distributions, e.g. sen2r and GDAL-converted products).
S2_DN_NODATA: tuple[int, ...] = (0, 65535)


class SensorError(ValueError):
    """Pixels of a sensor cannot be decoded (unknown sensor or platform, missing layer)."""


@dataclass(frozen=True)
class SensorRules:
    """Which pixels of each family count as clear (config section ``vegetation``).

    ``landsat_qa_not_clear``: names of :data:`LANDSAT_QA_BITS` whose set bit makes a pixel
    not clear; ``scl_not_clear``: Sentinel-2 SCL codes not clear (snow, 11, included: snow
    is no vegetation observation); ``modis_reliability_clear``: MOD13Q1 pixel reliability
    codes that are clear (0 good, 1 marginal).
    """

    landsat_qa_not_clear: tuple[str, ...] = LANDSAT_QA_NOT_CLEAR
    scl_not_clear: tuple[int, ...] = S2_SCL_NOT_CLEAR
    modis_reliability_clear: tuple[int, ...] = MODIS_RELIABILITY_CLEAR

    def __post_init__(self) -> None:
        bits = tuple(str(b) for b in self.landsat_qa_not_clear)
        unknown = [b for b in bits if b not in LANDSAT_QA_BITS]
        if unknown:
            raise ValueError(
                f"config key vegetation.landsat_qa_not_clear: unknown QA_PIXEL bit name(s) {unknown}; "
                f"expected names among {sorted(LANDSAT_QA_BITS, key=LANDSAT_QA_BITS.__getitem__)}"
            )
        if "clear" in bits or "water" in bits:
            # "clear" is set on good pixels and "water" is land cover, not a cloud: masking
            # them would drop clear observations (water is masked by the land-cover stage)
            raise ValueError(
                "config key vegetation.landsat_qa_not_clear: the bits 'clear' and 'water' describe clear "
                f"pixels and cannot make a pixel not clear; found {list(bits)}"
            )
        object.__setattr__(self, "landsat_qa_not_clear", bits)
        object.__setattr__(
            self, "scl_not_clear", _int_codes(self.scl_not_clear, S2_SCL_CLASSES, "vegetation.scl_not_clear")
        )
        object.__setattr__(
            self,
            "modis_reliability_clear",
            _int_codes(self.modis_reliability_clear, tuple(MODIS_RELIABILITY), "vegetation.modis_reliability_clear"),
        )

    @property
    def landsat_qa_mask(self) -> int:
        """The QA_PIXEL bit mask of :attr:`landsat_qa_not_clear`."""
        mask = 0
        for name in self.landsat_qa_not_clear:
            mask |= 1 << LANDSAT_QA_BITS[name]
        return mask

    @classmethod
    def from_config(cls, vegetation: Mapping[str, Any] | None) -> SensorRules:
        """Rules from the ``vegetation`` config section (absent keys take the defaults)."""
        v = dict(vegetation or {})
        kw: dict[str, Any] = {}
        for key in ("landsat_qa_not_clear", "scl_not_clear", "modis_reliability_clear"):
            if v.get(key) is not None:
                value = v[key]
                if isinstance(value, str | int):
                    raise ValueError(f"config key vegetation.{key}: expected a list, found {value!r}")
                kw[key] = tuple(value)
        return cls(**kw)


def _int_codes(codes: Any, allowed: tuple[int, ...], key: str) -> tuple[int, ...]:
    out = []
    for c in codes:
        if isinstance(c, bool) or not isinstance(c, int | np.integer):
            raise ValueError(f"config key {key}: codes must be integers among {list(allowed)}, found {c!r}")
        if int(c) not in allowed:
            raise ValueError(f"config key {key}: unknown code {int(c)}; expected codes among {list(allowed)}")
        out.append(int(c))
    return tuple(out)


class Decoded(NamedTuple):
    """Vegetation indices of one scene block: float32, NaN where not clear; ``clear`` bool."""

    ndvi: np.ndarray
    evi: np.ndarray
    kndvi: np.ndarray
    clear: np.ndarray


def instrument_of(platform: str | None, *, item: str = "scene") -> str:
    """``tm``, ``etm`` or ``oli`` for a Landsat ``platform`` (``landsat-4`` .. ``landsat-9``).

    Accepts the STAC spellings ``landsat-8``, ``LANDSAT_8`` and ``Landsat 8``.
    """
    if platform is None:
        raise SensorError(
            f"{item}: a Landsat scene needs meta['platform'] (one of {sorted(LANDSAT_INSTRUMENT)}) to decide the "
            "TM/ETM+ to OLI harmonisation; found none"
        )
    key = str(platform).strip().lower().replace("_", "-").replace(" ", "-")
    if key not in LANDSAT_INSTRUMENT:
        raise SensorError(
            f"{item}: unknown Landsat platform {platform!r}; expected one of {sorted(LANDSAT_INSTRUMENT)}"
        )
    return LANDSAT_INSTRUMENT[key]


def harmonise_to_oli(band: str, reflectance: np.ndarray, instrument: str) -> np.ndarray:
    """Surface reflectance of ``band`` from ``instrument`` on the OLI scale (float32).

    TM and ETM+: OLI = intercept + slope * ETM+ (:data:`ROY2016_ETM_TO_OLI`, Roy et al.
    2016, Table 2 OLS); OLI is returned unchanged. NaN stays NaN.
    """
    r = np.asarray(reflectance, dtype=np.float32)
    if instrument == "oli":
        return r
    if instrument not in ("tm", "etm"):
        raise SensorError(f"harmonise_to_oli: instrument must be 'tm', 'etm' or 'oli', found {instrument!r}")
    if band not in ROY2016_ETM_TO_OLI:
        raise SensorError(f"harmonise_to_oli: no Roy et al. (2016) coefficients for band {band!r}")
    slope, intercept = ROY2016_ETM_TO_OLI[band]
    return (np.float32(intercept) + np.float32(slope) * r).astype(np.float32)


def _np(f: Any, *arrays: np.ndarray) -> np.ndarray:
    """Apply an index of :mod:`karstflow.greening` (xarray) to numpy arrays: one definition."""
    import xarray as xr

    dims = tuple(f"d{i}" for i in range(arrays[0].ndim))
    return np.asarray(f(*(xr.DataArray(a, dims=dims) for a in arrays)).values, dtype=np.float32)


def indices_from_reflectance(
    blue: np.ndarray | None,
    red: np.ndarray,
    nir: np.ndarray,
    clear: np.ndarray,
    blue_ok: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NDVI, EVI and kNDVI (float32, NaN where not ``clear``) from reflectance fractions.

    The formulas are those of :func:`karstflow.greening.ndvi`, :func:`~karstflow.greening.evi`
    (MODIS coefficients :data:`karstflow.greening.EVI_COEFFICIENTS`) and
    :func:`~karstflow.greening.kndvi`, called on the arrays. EVI is NaN where ``blue_ok``
    (default ``clear``) is False, and everywhere when ``blue`` is None.
    """
    from karstflow.greening import evi, kndvi, ndvi

    nan = np.float32(np.nan)
    r, n = (np.where(clear, np.asarray(a, dtype=np.float32), nan) for a in (red, nir))
    nd = _np(ndvi, r, n)
    if blue is None:
        ev = np.full(nd.shape, nan, dtype=np.float32)
    else:
        ok = clear if blue_ok is None else blue_ok
        b = np.where(ok, np.asarray(blue, dtype=np.float32), nan)
        ev = _np(evi, b, r, n)
    return nd, ev, _np(kndvi, nd)


def _need(values: Mapping[str, np.ndarray], valid: Mapping[str, np.ndarray], sensor: str, item: str) -> None:
    missing = [n for n in required_layers(sensor) if n not in values or n not in valid]
    if missing:
        raise SensorError(
            f"{item}: {sensor} pixels need the layers {list(required_layers(sensor))}; missing {missing} "
            f"(found {sorted(values)})"
        )


def required_layers(sensor: str) -> tuple[str, ...]:
    """Layers of :data:`LAYERS` ``[sensor]`` a scene must have (all but :data:`OPTIONAL_LAYERS`)."""
    return tuple(n for n in LAYERS[sensor] if n not in OPTIONAL_LAYERS[sensor])


def decode(
    sensor: str,
    values: Mapping[str, np.ndarray],
    valid: Mapping[str, np.ndarray],
    *,
    platform: str | None = None,
    rules: SensorRules = SensorRules(),  # noqa: B008 - frozen, so a shared default is safe
    item: str = "scene",
) -> Decoded:
    """Decode one block of one scene's canonical layers into NDVI, EVI, kNDVI and clear.

    ``values`` / ``valid``: per layer of :data:`LAYERS` ``[sensor]``, the stored digital
    numbers and whether the pixel holds data (from :func:`karstflow.sources.rasters.read_layers`);
    the layers of :data:`OPTIONAL_LAYERS` (blue, EVI) may be absent, EVI is then NaN.

    * ``landsat``: SR = DN * :data:`LANDSAT_SR_SCALE` + :data:`LANDSAT_SR_OFFSET`; a pixel is
      clear where blue, red and NIR are valid with DN in :data:`LANDSAT_SR_VALID_DN` and no
      QA_PIXEL bit of ``rules.landsat_qa_not_clear`` is set (blue out of range leaves
      EVI NaN only); TM/ETM+ reflectance (from
      ``platform``) is harmonised to OLI (:func:`harmonise_to_oli`) before the indices.
    * ``sentinel-2``: reflectance = DN / :data:`S2_QUANTIFICATION` (the BOA offset is removed
      upstream); DN 0 / 65535 are no data; clear where the SCL is valid and not in
      ``rules.scl_not_clear``.
    * ``modis``: NDVI / EVI = DN * :data:`MODIS_VI_SCALE`; clear where the NDVI DN is valid,
      not :data:`MODIS_VI_FILL`, within :data:`MODIS_VI_VALID_DN`, and the pixel reliability
      is in ``rules.modis_reliability_clear``; an EVI DN out of range is NaN on a clear
      pixel; kNDVI = tanh(NDVI^2).

    ``item`` names the scene in errors.
    """
    if sensor not in LAYERS:
        raise SensorError(f"{item}: unknown sensor {sensor!r}; expected one of {list(LAYERS)}")
    _need(values, valid, sensor, item)
    nan = np.float32(np.nan)
    if sensor == "landsat":
        instrument = instrument_of(platform, item=item)
        lo, hi = LANDSAT_SR_VALID_DN
        clear = np.asarray(valid["qa_pixel"], dtype=bool).copy()
        for band in ("red", "nir"):
            dn = np.asarray(values[band])
            clear &= np.asarray(valid[band], dtype=bool) & (dn >= lo) & (dn <= hi)
        qa = np.asarray(values["qa_pixel"]).astype(np.int64)
        clear &= (qa & rules.landsat_qa_mask) == 0
        sr = {
            b: harmonise_to_oli(
                b,
                np.asarray(values[b]).astype(np.float32) * np.float32(LANDSAT_SR_SCALE) + np.float32(LANDSAT_SR_OFFSET),
                instrument,
            )
            for b in ("blue", "red", "nir")
            if b in values
        }
        # blue enters EVI only: an invalid blue leaves NDVI/kNDVI clear and EVI NaN
        blue_ok = clear.copy()
        if "blue" in values:
            dn = np.asarray(values["blue"])
            blue_ok &= np.asarray(valid["blue"], dtype=bool) & (dn >= lo) & (dn <= hi)
        nd, ev, kn = indices_from_reflectance(sr.get("blue"), sr["red"], sr["nir"], clear, blue_ok)
    elif sensor == "sentinel-2":
        scl = np.asarray(values["SCL"])
        clear = np.asarray(valid["SCL"], dtype=bool) & ~np.isin(scl, rules.scl_not_clear)
        for band in ("B4", "B8"):
            dn = np.asarray(values[band])
            clear &= np.asarray(valid[band], dtype=bool) & ~np.isin(dn, S2_DN_NODATA)
        q = np.float32(S2_QUANTIFICATION)
        refl = {b: np.asarray(values[b]).astype(np.float32) / q for b in ("B2", "B4", "B8") if b in values}
        blue_ok = clear.copy()
        if "B2" in values:
            blue_ok &= np.asarray(valid["B2"], dtype=bool) & ~np.isin(np.asarray(values["B2"]), S2_DN_NODATA)
        nd, ev, kn = indices_from_reflectance(refl.get("B2"), refl["B4"], refl["B8"], clear, blue_ok)
    else:  # modis
        from karstflow.greening import kndvi

        lo, hi = MODIS_VI_VALID_DN
        dn = np.asarray(values["ndvi"])
        rel = np.asarray(values["pixel_reliability"])
        clear = (
            np.asarray(valid["ndvi"], dtype=bool)
            & (dn != MODIS_VI_FILL)
            & (dn >= lo)
            & (dn <= hi)
            & np.asarray(valid["pixel_reliability"], dtype=bool)
            & np.isin(rel, rules.modis_reliability_clear)
        )
        scale = np.float32(MODIS_VI_SCALE)
        nd = np.where(clear, dn.astype(np.float32) * scale, nan).astype(np.float32)
        if "evi" in values:
            edn = np.asarray(values["evi"])
            evi_ok = clear & np.asarray(valid["evi"], dtype=bool) & (edn != MODIS_VI_FILL) & (edn >= lo) & (edn <= hi)
            ev = np.where(evi_ok, edn.astype(np.float32) * scale, nan).astype(np.float32)
        else:
            ev = np.full(nd.shape, nan, dtype=np.float32)
        kn = _np(kndvi, nd)
    # an index undefined on a clear pixel (zero denominator) leaves it without an observation
    clear = clear & np.isfinite(nd)
    return Decoded(ndvi=nd, evi=ev, kndvi=kn, clear=clear)
