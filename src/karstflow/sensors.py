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
