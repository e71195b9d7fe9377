"""Server-side Earth Engine products: one ``ee.Image`` per product, built from catalog ids.

Every function takes the ``ee`` module (initialised by the caller) and returns an image
whose bands are ready to be pulled with ``computePixels`` (see
:class:`~karstflow.sources.earthengine.EarthEngineSource`): the compositing, scaling and
masking happen on Earth Engine's side, so one request per cache tile and period carries
the finished product instead of every scene.

* :func:`vegetation_composite`: ``ndvi``, ``evi``, ``kndvi`` and ``clear_count`` of a
  period from Landsat Collection 2 Level-2 (TM, ETM+, OLI, OLI-2), Sentinel-2 L2A
  (``COPERNICUS/S2_SR_HARMONIZED`` with Cloud Score+) or MODIS MOD13Q1 v061, then the
  composited surface reflectance ``blue``, ``red``, ``nir``, ``swir1``, ``swir2`` (MODIS:
  no ``swir1``) the rocky-desertification unmixing reads (:func:`composite_bands`);
* :func:`climate_monthly` (+ :func:`climate_units`): the twelve months of a year of
  ERA5-Land (``ECMWF/ERA5_LAND/MONTHLY_AGGR``) or TerraClimate
  (``IDAHO_EPSCOR/TERRACLIMATE``) in physical units;
* :func:`soilgrids` (+ :func:`soil_units`): ISRIC SoilGrids 250 m v2.0 means in mapped units;
* :func:`landcover`: ESA WorldCover (2020 v100, 2021 v200) or the annual China Land Cover
  Dataset (CLCD), one band ``landcover`` of provider codes;
* :func:`worldpop`: WorldPop 100 m population of a year (``WorldPop/GP/100m/pop``) as a
  density (persons per km2) that any grid can resample without changing totals.

Constants (scale factors, QA bits, harmonisation coefficients) come from
:mod:`karstflow.sensors` and :mod:`karstflow.greening`; the band names and scale factors of
the climate and soil products are those of the Earth Engine catalog pages cited per table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from karstflow import climate
from karstflow.greening import EVI_COEFFICIENTS
from karstflow.sensors import (
    LANDSAT_QA_BITS,
    LANDSAT_SR_OFFSET,
    LANDSAT_SR_SCALE,
    LANDSAT_SR_VALID_DN,
    MODIS_VI_SCALE,
    MODIS_VI_VALID_DN,
    ROY2016_ETM_TO_OLI,
    S2_DN_NODATA,
    S2_QUANTIFICATION,
)
from karstflow.vegetation import MODIS_REFLECTANCE_VALID_DN, REFLECTANCE_BANDS

#: Index bands of a vegetation composite (float32), then the clear-observation count.
INDEX_BANDS: tuple[str, ...] = ("ndvi", "evi", "kndvi")
COMPOSITE_BANDS: tuple[str, ...] = (*INDEX_BANDS, "clear_count")
COMPOSITE_UNITS: dict[str, str] = {
    "ndvi": "1",
    "evi": "1",
    "kndvi": "1",
    "clear_count": "count",
    **{b: "1" for b in REFLECTANCE_BANDS},  # surface reflectance, fraction
}
METHODS: tuple[str, ...] = ("median", "max-ndvi")

# -- Landsat Collection 2 Level-2, Tier 1 (EE catalog LANDSAT_L*_C02_T1_L2) -------------------
#: collection id -> (SR band names for blue, red, nir, swir 1.6 um, swir 2.2 um; harmonise
#: TM/ETM+ to OLI): TM/ETM+ SR_B1, B3, B4, B5, B7; OLI SR_B2, B4, B5, B6, B7 (LSDS-1618/1619)
LANDSAT_COLLECTIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    "LANDSAT/LT05/C02/T1_L2": (("SR_B1", "SR_B3", "SR_B4", "SR_B5", "SR_B7"), True),
    "LANDSAT/LE07/C02/T1_L2": (("SR_B1", "SR_B3", "SR_B4", "SR_B5", "SR_B7"), True),
    "LANDSAT/LC08/C02/T1_L2": (("SR_B2", "SR_B4", "SR_B5", "SR_B6", "SR_B7"), False),
    "LANDSAT/LC09/C02/T1_L2": (("SR_B2", "SR_B4", "SR_B5", "SR_B6", "SR_B7"), False),
}
LANDSAT_QA_BAND = "QA_PIXEL"
#: Canonical reflectance names (the keys of ROY2016_ETM_TO_OLI) in the order above.
REFLECTANCE = ("blue", "red", "nir", "swir16", "swir22")
#: The same as the composite's reflectance bands (karstflow.vegetation.REFLECTANCE_BANDS).
LANDSAT_REFLECTANCE_BANDS = ("blue", "red", "nir", "swir1", "swir2")

# -- Sentinel-2 L2A and Cloud Score+ (EE catalog COPERNICUS_S2_SR_HARMONIZED, GOOGLE_CLOUD_SCORE_PLUS_V1)
S2_COLLECTION = "COPERNICUS/S2_SR_HARMONIZED"
CS_PLUS_COLLECTION = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
S2_REFLECTANCE_BANDS = ("B2", "B4", "B8", "B11", "B12")  # blue, red, nir, swir 1.61 um, swir 2.19 um
CS_BAND = "cs_cdf"

# -- MODIS MOD13Q1 v061 (EE catalog MODIS_061_MOD13Q1) ------------------------------------------
MODIS_COLLECTION = "MODIS/061/MOD13Q1"
MODIS_BANDS = ("NDVI", "EVI")
MODIS_QA_BAND = "SummaryQA"
#: MOD13Q1 surface reflectance of the composited day (DN x 1e-4, valid 0..10000): band 3
#: blue, 1 red, 2 nir, 7 MIR 2.1 um (MOD13Q1 has no band 6), named as the composite's bands.
MODIS_REFLECTANCE: dict[str, str] = {
    "sur_refl_b03": "blue",
    "sur_refl_b01": "red",
    "sur_refl_b02": "nir",
    "sur_refl_b07": "swir2",
}
#: Reflectance bands of each sensor's composite, in the order of REFLECTANCE_BANDS.
SENSOR_REFLECTANCE: dict[str, tuple[str, ...]] = {
    "landsat": LANDSAT_REFLECTANCE_BANDS,
    "sentinel-2": LANDSAT_REFLECTANCE_BANDS,
    "modis": tuple(b for b in REFLECTANCE_BANDS if b in MODIS_REFLECTANCE.values()),
}

# -- climate ------------------------------------------------------------------------------------
#: ERA5-Land monthly aggregates (EE catalog ECMWF_ERA5_LAND_MONTHLY_AGGR): band -> unit. Values are
#: stored in the provider's physical units (no scale factor); the *_sum bands are monthly sums.
ERA5_LAND_COLLECTION = "ECMWF/ERA5_LAND/MONTHLY_AGGR"
ERA5_LAND_BANDS = climate.ERA5_LAND_BANDS  # one table: the units the climate stage converts from
#: TerraClimate (EE catalog IDAHO_EPSCOR_TERRACLIMATE): band -> (scale factor, unit after scaling).
TERRACLIMATE_COLLECTION = "IDAHO_EPSCOR/TERRACLIMATE"
TERRACLIMATE_BANDS: dict[str, tuple[float, str]] = {
    "tmmx": (0.1, "degC"),
    "tmmn": (0.1, "degC"),
    "pr": (1.0, "mm"),
    "srad": (0.1, "W m-2"),
    "pet": (0.1, "mm"),
    "vap": (0.001, "kPa"),
    "vs": (0.01, "m s-1"),
}
CLIMATE_PRODUCTS: tuple[str, ...] = ("era5-land", "terraclimate")

# -- soil ---------------------------------------------------------------------------------------
#: ISRIC SoilGrids 250 m v2.0 on Earth Engine (``projects/soilgrids-isric/<prop>_mean``, bands
#: ``<prop>_<depth>_mean``): property -> (divide by, mapped unit), the conversion factors of the
#: SoilGrids FAQ ("mapped units" -> "conventional units").
SOILGRIDS_ASSET = "projects/soilgrids-isric/{prop}_mean"
SOILGRIDS_PROPERTIES: dict[str, tuple[float, str]] = {
    "bdod": (100.0, "kg dm-3"),  # cg cm-3
    "cec": (10.0, "cmol(c) kg-1"),  # mmol(c) kg-1
    "cfvo": (10.0, "cm3 100cm-3"),  # cm3 dm-3 -> vol %
    "clay": (10.0, "%"),  # g kg-1
    "sand": (10.0, "%"),
    "silt": (10.0, "%"),
    "nitrogen": (100.0, "g kg-1"),  # cg kg-1
    "phh2o": (10.0, "pH"),  # pH x 10
    "soc": (10.0, "g kg-1"),  # dg kg-1
    "ocd": (10.0, "kg m-3"),  # hg m-3
}
SOILGRIDS_DEPTHS: tuple[str, ...] = ("0-5cm", "5-15cm", "15-30cm", "30-60cm", "60-100cm", "100-200cm")

# -- land cover ---------------------------------------------------------------------------------
#: ESA WorldCover 10 m (EE catalog ESA_WorldCover_v100 / v200; ImageCollections of one image).
WORLDCOVER: dict[int, str] = {2020: "ESA/WorldCover/v100", 2021: "ESA/WorldCover/v200"}
WORLDCOVER_BAND = "Map"
#: The annual China Land Cover Dataset (Yang & Huang 2021, ESSD 13, 3907-3925) is not in Google's
#: catalog; its community-catalog asset id could not be verified offline, so the caller names it
#: (``clcd_asset``, a template with ``{year}``). Years: 1985 and 1990 onwards.
CLCD_YEARS: tuple[int, ...] = (1985, *range(1990, 2024))
CLCD_BAND = "b1"
LANDCOVER_PRODUCTS: tuple[str, ...] = ("worldcover", "clcd")


# ------------------------------------------------------------------------------------------------
# vegetation
# ------------------------------------------------------------------------------------------------


def _date(d: dt.date | str) -> str:
    return d.isoformat() if isinstance(d, dt.date) else str(d)


def _indices(ee: Any, refl: Any) -> Any:
    """``ndvi``, ``evi``, ``kndvi`` of a ``blue``/``red``/``nir`` reflectance image (0..1).

    EVI as in :func:`karstflow.greening.evi` (Huete et al. 2002); kNDVI = tanh(NDVI^2)
    (Camps-Valls et al. 2021, Sci. Adv. 7, eabc7447, with sigma = (NIR + red) / 2).
    """
    blue, red, nir = refl.select("blue"), refl.select("red"), refl.select("nir")
    ndvi = nir.subtract(red).divide(nir.add(red)).rename("ndvi")
    c = EVI_COEFFICIENTS
    evi = (
        nir.subtract(red)
        .multiply(c["g"])
        .divide(nir.add(red.multiply(c["c1"])).subtract(blue.multiply(c["c2"])).add(c["l"]))
        .rename("evi")
    )
    kndvi = ndvi.pow(2).tanh().rename("kndvi")
    return ee.Image.cat([ndvi, evi, kndvi]).toFloat()


def landsat_qa_mask_bits(rules: Any) -> int:
    """The QA_PIXEL bit mask of ``rules.landsat_qa_not_clear`` (names of LANDSAT_QA_BITS)."""
    names = tuple(rules.landsat_qa_not_clear)
    unknown = [n for n in names if n not in LANDSAT_QA_BITS]
    if unknown:
        raise ValueError(
            f"vegetation.landsat_qa_not_clear: expected names of QA_PIXEL bits {sorted(LANDSAT_QA_BITS)}, "
            f"found {unknown}"
        )
    mask = 0
    for n in names:
        mask |= 1 << LANDSAT_QA_BITS[n]
    return mask


def landsat_indices(ee: Any, start: str, end: str, region: Any, rules: Any) -> Any:
    """Per-scene masked indices and surface reflectance (``blue``, ``red``, ``nir``,
    ``swir1``, ``swir2``, TM/ETM+ harmonised to OLI) of Landsat 5/7/8/9 C2 L2, merged
    (an ImageCollection). Each reflectance band is masked where its DN is outside the valid
    range or QA_PIXEL is not clear, as the local path does (karstflow.vegetation)."""
    bits = landsat_qa_mask_bits(rules)
    lo, hi = LANDSAT_SR_VALID_DN
    merged = None
    for coll_id, (bands, harmonise) in LANDSAT_COLLECTIONS.items():

        def prep(img: Any, bands: tuple[str, ...] = bands, harmonise: bool = harmonise) -> Any:
            dn = img.select(list(bands), list(REFLECTANCE))
            valid = dn.gte(lo).And(dn.lte(hi))
            sr = dn.multiply(LANDSAT_SR_SCALE).add(LANDSAT_SR_OFFSET)
            if harmonise:  # TM/ETM+ -> OLI, Roy et al. (2016) OLS: OLI = intercept + slope * ETM+
                slopes = [ROY2016_ETM_TO_OLI[b][0] for b in REFLECTANCE]
                intercepts = [ROY2016_ETM_TO_OLI[b][1] for b in REFLECTANCE]
                sr = sr.multiply(ee.Image.constant(slopes)).add(ee.Image.constant(intercepts)).rename(list(REFLECTANCE))
            clear = img.select(LANDSAT_QA_BAND).bitwiseAnd(bits).eq(0)
            masked = sr.updateMask(valid).updateMask(clear)
            refl = masked.rename(list(LANDSAT_REFLECTANCE_BANDS)).toFloat()
            out = _indices(ee, masked).addBands(refl)
            return out.copyProperties(img, ["system:time_start"])

        coll = ee.ImageCollection(coll_id).filterBounds(region).filterDate(start, end).map(prep)
        merged = coll if merged is None else merged.merge(coll)
    return merged


def sentinel2_indices(ee: Any, start: str, end: str, region: Any, rules: Any, cs_cdf_threshold: float) -> Any:
    """Per-scene masked indices and surface reflectance (``blue``, ``red``, ``nir``,
    ``swir1`` B11, ``swir2`` B12) of S2_SR_HARMONIZED with Cloud Score+ linked.

    Clear where ``cs_cdf >= cs_cdf_threshold``; where a scene has no Cloud Score+ image,
    where its SCL class is not in ``rules.scl_not_clear``. DN / 10000 is reflectance (the
    harmonised collection has no BOA offset); DN 0 and 65535 are no data
    (:data:`karstflow.sensors.S2_DN_NODATA`).
    """
    scl_bad = [int(v) for v in rules.scl_not_clear]
    cs = ee.ImageCollection(CS_PLUS_COLLECTION)
    coll = ee.ImageCollection(S2_COLLECTION).filterBounds(region).filterDate(start, end).linkCollection(cs, [CS_BAND])

    def prep(img: Any) -> Any:
        dn = img.select(list(S2_REFLECTANCE_BANDS), list(LANDSAT_REFLECTANCE_BANDS))
        lo, hi = S2_DN_NODATA  # 0 and 65535 are no data: the uint16 DNs strictly between are valid
        refl = dn.updateMask(dn.gt(lo).And(dn.lt(hi))).divide(S2_QUANTIFICATION)
        scl = img.select("SCL")
        scl_clear = ee.Image.constant(1)
        for code in scl_bad:
            scl_clear = scl_clear.And(scl.neq(code))
        has_cs = img.bandNames().contains(CS_BAND)
        cs_clear = ee.Image(
            ee.Algorithms.If(has_cs, img.select(CS_BAND).gte(cs_cdf_threshold), ee.Image.constant(0).selfMask())
        )
        # a pixel without a score (no linked image, or masked there) falls back to SCL
        clear = cs_clear.unmask(scl_clear)
        masked = refl.updateMask(clear)
        out = _indices(ee, masked).addBands(masked.toFloat())
        return out.copyProperties(img, ["system:time_start"])

    return coll.map(prep)


def modis_indices(ee: Any, start: str, end: str, region: Any, rules: Any) -> Any:
    """Per-composite masked indices of MOD13Q1 v061 (NDVI/EVI x 0.0001, SummaryQA clear set)
    and its surface reflectance ``blue``, ``red``, ``nir``, ``swir2`` (:data:`MODIS_REFLECTANCE`,
    DN x 0.0001, valid 0..10000)."""
    ok = [int(v) for v in rules.modis_reliability_clear]
    lo, hi = MODIS_VI_VALID_DN
    rlo, rhi = MODIS_REFLECTANCE_VALID_DN

    def prep(img: Any) -> Any:
        qa = img.select(MODIS_QA_BAND)
        clear = ee.Image.constant(0)
        for code in ok:
            clear = clear.Or(qa.eq(code))
        dn = img.select(list(MODIS_BANDS))
        vi = dn.updateMask(dn.gte(lo).And(dn.lte(hi))).multiply(MODIS_VI_SCALE).updateMask(clear)
        ndvi = vi.select("NDVI").rename("ndvi")
        evi = vi.select("EVI").rename("evi")
        kndvi = ndvi.pow(2).tanh().rename("kndvi")
        rdn = img.select(list(MODIS_REFLECTANCE), list(MODIS_REFLECTANCE.values()))
        # the MOD13Q1 reflectance scale is the VI one (0.0001; MOD13 User's Guide C6.1)
        refl = rdn.updateMask(rdn.gte(rlo).And(rdn.lte(rhi))).multiply(MODIS_VI_SCALE).updateMask(clear)
        refl = refl.select(list(SENSOR_REFLECTANCE["modis"]))
        return ee.Image.cat([ndvi, evi, kndvi, refl]).toFloat().copyProperties(img, ["system:time_start"])

    return ee.ImageCollection(MODIS_COLLECTION).filterBounds(region).filterDate(start, end).map(prep)


def composite_bands(sensor: str, *, reflectance: bool = True) -> list[str]:
    """Band names of :func:`vegetation_composite` for ``sensor``: :data:`COMPOSITE_BANDS`,
    then (``reflectance``) the sensor's :data:`SENSOR_REFLECTANCE` bands."""
    if sensor not in SENSOR_REFLECTANCE:
        raise ValueError(f"vegetation composite sensor: expected one of landsat, sentinel-2, modis; found {sensor!r}")
    return [*COMPOSITE_BANDS, *(SENSOR_REFLECTANCE[sensor] if reflectance else ())]


def vegetation_composite(
    ee: Any,
    sensor: str,
    start: dt.date | str,
    end: dt.date | str,
    region: Any,
    *,
    method: str = "median",
    rules: Any,
    cs_cdf_threshold: float = 0.60,
    reflectance: bool = True,
) -> Any:
    """Composite of ``[start, end)`` over ``region`` (an ``ee.Geometry``) of one sensor family.

    Bands ``ndvi``, ``evi``, ``kndvi`` (float32) and ``clear_count`` (float32, the number of
    clear observations of NDVI), then with ``reflectance`` the surface reflectance bands of
    :func:`composite_bands` (float32 fraction; Landsat TM/ETM+ on the OLI scale). ``method``:
    ``median`` (per-band median of the clear observations, reflectance included) or
    ``max-ndvi`` (``qualityMosaic("ndvi")``: every band of the observation with the highest
    NDVI), the rules of :func:`karstflow.vegetation.composite_year`. ``rules``:
    :class:`karstflow.sensors.SensorRules` (any object with ``landsat_qa_not_clear``,
    ``scl_not_clear`` and ``modis_reliability_clear``).
    """
    if method not in METHODS:
        raise ValueError(f"vegetation composite method: expected one of {list(METHODS)}, found {method!r}")
    bands = composite_bands(sensor, reflectance=reflectance)  # validates sensor
    s, e = _date(start), _date(end)
    if sensor == "landsat":
        coll = landsat_indices(ee, s, e, region, rules)
    elif sensor == "sentinel-2":
        coll = sentinel2_indices(ee, s, e, region, rules, float(cs_cdf_threshold))
    else:
        coll = modis_indices(ee, s, e, region, rules)
    values = [*INDEX_BANDS, *bands[len(COMPOSITE_BANDS) :]]
    stack = coll.select(values)
    comp = stack.median() if method == "median" else stack.qualityMosaic("ndvi").select(values)
    count = stack.select("ndvi").count().rename("clear_count")
    return comp.toFloat().addBands(count.toFloat()).select(bands)  # the order of composite_bands


# ------------------------------------------------------------------------------------------------
# climate
# ------------------------------------------------------------------------------------------------


def _months(year: int) -> list[tuple[str, str, str]]:
    out = []
    for m in range(1, 13):
        nxt = dt.date(year + (m == 12), m % 12 + 1, 1)
        out.append((f"{year}-{m:02d}", f"{year}-{m:02d}-01", nxt.isoformat()))
    return out


def climate_units(product: str) -> dict[str, str]:
    """Unit of each variable of ``product`` as :func:`climate_monthly` returns it."""
    if product == "era5-land":
        return dict(ERA5_LAND_BANDS)
    if product == "terraclimate":
        return {b: u for b, (_, u) in TERRACLIMATE_BANDS.items()}
    raise ValueError(f"climate product: expected one of {list(CLIMATE_PRODUCTS)}, found {product!r}")


def climate_band_names(product: str, year: int) -> list[str]:
    """``<variable>_<YYYY-MM>`` for the 12 months (month-major, variables in table order)."""
    variables = list(climate_units(product))
    return [f"{v}_{ym}" for ym, _, _ in _months(int(year)) for v in variables]


def climate_monthly(ee: Any, product: str, year: int, region: Any = None) -> Any:
    """The 12 months of ``year`` of ``product`` as one image, bands ``<variable>_<YYYY-MM>``.

    ``era5-land``: ``ECMWF/ERA5_LAND/MONTHLY_AGGR`` as stored (K, Pa, m s-1, J m-2, m);
    ``terraclimate``: ``IDAHO_EPSCOR/TERRACLIMATE`` times the catalog scale factors (degC,
    mm, W m-2, kPa, m s-1). Units per band: :func:`climate_units`.
    """
    units = climate_units(product)  # validates product
    variables = list(units)
    year = int(year)
    coll_id = ERA5_LAND_COLLECTION if product == "era5-land" else TERRACLIMATE_COLLECTION
    coll = ee.ImageCollection(coll_id)
    if region is not None:
        coll = coll.filterBounds(region)
    months = []
    for ym, first, nxt in _months(year):
        img = ee.Image(coll.filterDate(first, nxt).first()).select(variables)
        if product == "terraclimate":
            img = img.multiply(ee.Image.constant([TERRACLIMATE_BANDS[v][0] for v in variables]))
        months.append(img.toFloat().rename([f"{v}_{ym}" for v in variables]))
    return ee.Image.cat(months)


# ------------------------------------------------------------------------------------------------
# soil and land cover
# ------------------------------------------------------------------------------------------------


def soil_units(properties: Sequence[str]) -> dict[str, str]:
    return {p: SOILGRIDS_PROPERTIES[p][1] for p in properties}


def soil_band_names(properties: Sequence[str], depths: Sequence[str]) -> list[str]:
    return [f"{p}_{d}" for p in properties for d in depths]


def soilgrids(ee: Any, properties: Sequence[str], depths: Sequence[str]) -> Any:
    """SoilGrids means of ``properties`` at ``depths`` in mapped units, bands ``<prop>_<depth>``."""
    bad = [p for p in properties if p not in SOILGRIDS_PROPERTIES]
    if bad:
        raise ValueError(f"soil properties: expected names among {sorted(SOILGRIDS_PROPERTIES)}, found {bad}")
    bad = [d for d in depths if d not in SOILGRIDS_DEPTHS]
    if bad:
        raise ValueError(f"soil depths: expected names among {list(SOILGRIDS_DEPTHS)}, found {bad}")
    if not properties or not depths:
        raise ValueError("soil: at least one property and one depth are needed")
    bands = []
    for p in properties:
        img = ee.Image(SOILGRIDS_ASSET.format(prop=p))
        factor = SOILGRIDS_PROPERTIES[p][0]
        for d in depths:
            bands.append(img.select(f"{p}_{d}_mean").divide(factor).toFloat().rename(f"{p}_{d}"))
    return ee.Image.cat(bands)


def landcover(ee: Any, product: str, year: int, *, clcd_asset: str | None = None) -> Any:
    """Land cover of ``year``: one band ``landcover`` of the provider's class codes.

    ``worldcover``: 2020 (v100) or 2021 (v200), band ``Map``; ``clcd``: the asset named by
    ``clcd_asset`` (a template with ``{year}``), band ``b1``. A year the product lacks is an
    error naming the years it has.
    """
    year = int(year)
    if product == "worldcover":
        if year not in WORLDCOVER:
            raise ValueError(f"landcover product worldcover has the years {sorted(WORLDCOVER)}; found {year}")
        return ee.ImageCollection(WORLDCOVER[year]).first().select(WORLDCOVER_BAND).rename("landcover")
    if product == "clcd":
        if year not in CLCD_YEARS:
            raise ValueError(
                f"landcover product clcd has the years 1985 and {CLCD_YEARS[1]}-{CLCD_YEARS[-1]}; found {year}"
            )
        if not clcd_asset or "{year}" not in clcd_asset:
            raise ValueError(
                "landcover product clcd: the Earth Engine asset of CLCD is not in Google's catalog; set "
                "earthengine.clcd_asset to its asset id template with {year}, found "
                f"{clcd_asset!r}"
            )
        return ee.Image(clcd_asset.format(year=year)).select(CLCD_BAND).rename("landcover")
    raise ValueError(f"landcover product: expected one of {list(LANDCOVER_PRODUCTS)}, found {product!r}")


# ------------------------------------------------------------------------------------------------
# population
# ------------------------------------------------------------------------------------------------

#: WorldPop Global Project Population Data, 100 m, 2000-2020 (EE catalog WorldPop_GP_100m_pop;
#: Stevens, Gaughan, Linard & Tatem 2015, PLoS ONE 10(2): e0107042; WorldPop 2018, doi:
#: 10.5258/SOTON/WP00645): one image per country and year, band ``population`` in persons
#: per pixel, properties ``year`` and ``country`` (ISO 3166-1 alpha-3).
WORLDPOP_COLLECTION = "WorldPop/GP/100m/pop"
WORLDPOP_BAND = "population"
WORLDPOP_YEARS = range(2000, 2021)
#: Band of :func:`worldpop` and its unit: a density, so resampling keeps totals.
WORLDPOP_DENSITY_BAND = "population_density"
WORLDPOP_UNITS = {WORLDPOP_DENSITY_BAND: "persons km-2"}


def worldpop(ee: Any, year: int, region: Any = None, country: str | None = "CHN") -> Any:
    """WorldPop population of ``year`` as persons per km2, one band ``population_density``.

    The country images of the year (``filter(year)``, ``country`` when given, else every
    image that touches ``region``) are mosaicked, keeping the 100 m projection of the
    first. Totals are kept whatever the grid: WorldPop counts persons per ~100 m pixel, so
    the count is first turned into a density by dividing by each pixel's true area
    (``ee.Image.pixelArea()``, m2, at the native scale) and the density is averaged
    (``reduceResolution(mean)``) onto coarser grid pixels or resampled onto finer ones
    when Earth Engine reprojects the request. A persons-per-pixel raster on the region
    grid is then the density times the grid pixel's area (km2): the sum over a region is
    the WorldPop sum up to the area the edge pixels share, whereas resampling the counts
    themselves would scale totals by the ratio of pixel areas (9 x too many at 30 m from
    100 m counts ... 1/9 too few, depending on direction).
    """
    year = int(year)
    if year not in WORLDPOP_YEARS:
        raise ValueError(
            f"population product worldpop has the years {WORLDPOP_YEARS[0]}-{WORLDPOP_YEARS[-1]}; found {year}"
        )
    coll = ee.ImageCollection(WORLDPOP_COLLECTION).filter(ee.Filter.eq("year", year))
    if country:
        coll = coll.filter(ee.Filter.eq("country", country))
    if region is not None:
        coll = coll.filterBounds(region)
    native = coll.first().select(WORLDPOP_BAND).projection()
    counts = coll.select(WORLDPOP_BAND).mosaic().setDefaultProjection(native)
    density = counts.divide(ee.Image.pixelArea()).multiply(1e6)
    return (
        density.reduceResolution(reducer=ee.Reducer.mean(), maxPixels=1024)
        .toFloat()
        .rename(WORLDPOP_DENSITY_BAND)
    )


def persons_per_pixel(density_km2: Any, pixel_area_m2: float) -> Any:
    """Persons per pixel of a grid from :func:`worldpop`'s density: density x pixel area (km2)."""
    if not pixel_area_m2 > 0:
        raise ValueError(f"pixel_area_m2: expected a positive pixel area, found {pixel_area_m2}")
    return density_km2 * (pixel_area_m2 / 1e6)
