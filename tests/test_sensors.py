"""Decoding Landsat C2 L2, Sentinel-2 L2A and MOD13Q1 pixels (karstflow.sensors).

Hand calculations for the scale factors, QA bits and the Roy et al. (2016) ETM+ to OLI
transform; the real sen2r Sentinel-2 L2A files (NDVI against sen2r's own NDVI, SCL at 20 m
onto the 10 m grid against the README's class counts) and the real MOD13Q1 NDVI dates of
the R package sits (NDVI = DN * 1e-4).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from karstflow import greening
from karstflow.grid import RegionGrid
from karstflow.sensors import (
    LANDSAT_QA_BITS,
    LANDSAT_QA_NOT_CLEAR,
    ROY2016_ETM_TO_OLI,
    SensorError,
    SensorRules,
    decode,
    harmonise_to_oli,
    indices_from_reflectance,
)
from karstflow.sources import Layer
from karstflow.sources.rasters import read_layers

PROJECT_ROOT = Path(__file__).resolve().parents[1]
S2_DATA = PROJECT_ROOT.parent / "shared" / "data" / "sen2r-s2l2a"
MODIS_DATA = PROJECT_ROOT.parent / "shared" / "data" / "modis-mod13q1"

needs_s2 = pytest.mark.skipif(not S2_DATA.is_dir(), reason=f"real Sentinel-2 L2A data (sen2r) not found at {S2_DATA}")
needs_modis = pytest.mark.skipif(not MODIS_DATA.is_dir(), reason=f"real MOD13Q1 data (sits) not found at {MODIS_DATA}")


def ones(shape=(1,), value=True):
    return np.full(shape, value, dtype=bool)


def landsat(red, nir, blue, qa, valid=True):
    values = {
        "red": np.atleast_1d(np.asarray(red, dtype=np.uint16)),
        "nir": np.atleast_1d(np.asarray(nir, dtype=np.uint16)),
        "blue": np.atleast_1d(np.asarray(blue, dtype=np.uint16)),
        "qa_pixel": np.atleast_1d(np.asarray(qa, dtype=np.uint16)),
    }
    shape = values["red"].shape
    return values, {k: np.broadcast_to(np.asarray(valid), shape).copy() for k in values}


# -- rules ---------------------------------------------------------------------------------


def test_rules_defaults_and_validation():
    r = SensorRules()
    assert r.landsat_qa_not_clear == LANDSAT_QA_NOT_CLEAR
    assert r.scl_not_clear == (0, 1, 3, 8, 9, 10, 11)
    assert r.modis_reliability_clear == (0, 1)
    # fill 0, dilated 1, cirrus 2, cloud 3, shadow 4, snow 5
    assert r.landsat_qa_mask == 0b111111
    with pytest.raises(ValueError, match=r"vegetation\.landsat_qa_not_clear.*'clouds'"):
        SensorRules(landsat_qa_not_clear=("clouds",))
    with pytest.raises(ValueError, match=r"vegetation\.landsat_qa_not_clear"):
        SensorRules(landsat_qa_not_clear=("cloud", "clear"))
    with pytest.raises(ValueError, match=r"vegetation\.scl_not_clear.*12"):
        SensorRules(scl_not_clear=(3, 12))
    with pytest.raises(ValueError, match=r"vegetation\.modis_reliability_clear.*5"):
        SensorRules(modis_reliability_clear=(0, 5))
    with pytest.raises(ValueError, match=r"vegetation\.scl_not_clear"):
        SensorRules.from_config({"scl_not_clear": 3})
    assert SensorRules.from_config({"scl_not_clear": [3, 8]}).scl_not_clear == (3, 8)


# -- Landsat -------------------------------------------------------------------------------


def test_landsat_oli_hand_calculation():
    # red DN 10000 -> 10000 * 2.75e-5 - 0.2 = 0.075; NIR 25000 -> 0.4875; blue 8000 -> 0.02
    values, valid = landsat(10000, 25000, 8000, 1 << 6)
    d = decode("landsat", values, valid, platform="landsat-8")
    ndvi = (0.4875 - 0.075) / (0.4875 + 0.075)  # 0.733333
    evi = 2.5 * (0.4875 - 0.075) / (0.4875 + 6 * 0.075 - 7.5 * 0.02 + 1)  # 0.576923
    assert d.clear.tolist() == [True]
    assert d.ndvi.dtype == np.float32 and d.evi.dtype == np.float32 and d.kndvi.dtype == np.float32
    assert d.ndvi[0] == pytest.approx(ndvi, abs=1e-6)
    assert d.ndvi[0] == pytest.approx(0.733333, abs=1e-6)
    assert d.evi[0] == pytest.approx(evi, abs=1e-6)
    assert d.evi[0] == pytest.approx(0.576923, abs=1e-6)
    assert d.kndvi[0] == pytest.approx(math.tanh(ndvi**2), abs=1e-6)
    # Landsat 9 (OLI-2) is OLI too: no harmonisation
    d9 = decode("landsat", values, valid, platform="LANDSAT_9")
    assert d9.ndvi[0] == d.ndvi[0]


@pytest.mark.parametrize("bit", LANDSAT_QA_NOT_CLEAR)
def test_landsat_each_qa_bit_masks(bit):
    qa = np.array([1 << 6, (1 << 6) | (1 << LANDSAT_QA_BITS[bit]), 1 << LANDSAT_QA_BITS[bit]], dtype=np.uint16)
    values, valid = landsat([10000] * 3, [25000] * 3, [8000] * 3, qa)
    d = decode("landsat", values, valid, platform="landsat-8")
    assert d.clear.tolist() == [True, False, False]
    assert np.isfinite(d.ndvi[0]) and np.isnan(d.ndvi[1:]).all() and np.isnan(d.evi[1:]).all()
    # dropping that bit from the rules keeps the pixel
    rules = SensorRules(landsat_qa_not_clear=tuple(b for b in LANDSAT_QA_NOT_CLEAR if b != bit))
    assert decode("landsat", values, valid, platform="landsat-8", rules=rules).clear.tolist() == [True, True, True]


def test_landsat_water_and_clear_bits_and_dn_range():
    # water (7) and clear (6) never mask
    values, valid = landsat([10000] * 2, [25000] * 2, [8000] * 2, [1 << 7, (1 << 6) | (1 << 7)])
    assert decode("landsat", values, valid, platform="landsat-8").clear.all()
    # DN just outside 7273..43636 (red, nir) or invalid -> not clear; inside edges clear
    values, valid = landsat([7272, 7273, 10000, 10000, 10000], [25000, 25000, 43636, 43637, 25000], [8000] * 5, 0)
    valid["nir"][4] = False
    assert decode("landsat", values, valid, platform="landsat-8").clear.tolist() == [False, True, True, False, False]
    # blue out of range: NDVI stays, EVI NaN
    values, valid = landsat(10000, 25000, 7000, 0)
    d = decode("landsat", values, valid, platform="landsat-8")
    assert d.clear[0] and np.isfinite(d.ndvi[0]) and np.isnan(d.evi[0])
    # invalid QA pixel -> not clear
    values, valid = landsat(10000, 25000, 8000, 0)
    valid["qa_pixel"][:] = False
    assert not decode("landsat", values, valid, platform="landsat-8").clear[0]


@pytest.mark.parametrize("platform", ["landsat-7", "landsat-5", "landsat-4"])
def test_landsat_roy_transform_of_etm_and_tm(platform):
    values, valid = landsat(10000, 25000, 8000, 0)
    sr = {"red": 0.075, "nir": 0.4875, "blue": 0.02}
    # OLI = intercept + slope * ETM+ (Roy et al. 2016, Table 2 OLS), by hand
    red = 0.0061 + 0.9047 * 0.075
    nir = 0.0412 + 0.8462 * 0.4875
    blue = 0.0003 + 0.8474 * 0.02
    d = decode("landsat", values, valid, platform=platform)
    assert d.ndvi[0] == pytest.approx((nir - red) / (nir + red), abs=1e-6)
    assert d.ndvi[0] == pytest.approx(0.71970, abs=1e-5)  # vs 0.73333 untransformed
    assert d.evi[0] == pytest.approx(2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1), abs=1e-6)
    for band, x in sr.items():
        slope, intercept = ROY2016_ETM_TO_OLI[band]
        assert harmonise_to_oli(band, np.array([x]), "etm")[0] == pytest.approx(intercept + slope * x, abs=1e-7)
        assert harmonise_to_oli(band, np.array([x]), "oli")[0] == pytest.approx(x, abs=1e-7)
    assert np.isnan(harmonise_to_oli("red", np.array([np.nan]), "tm")[0])


def test_landsat_platform_errors():
    values, valid = landsat(10000, 25000, 8000, 0)
    with pytest.raises(SensorError, match="landsat-6"):
        decode("landsat", values, valid, platform="landsat-6")
    with pytest.raises(SensorError, match="platform"):
        decode("landsat", values, valid, platform=None)
    with pytest.raises(SensorError, match="qa_pixel"):
        decode("landsat", {k: v for k, v in values.items() if k != "qa_pixel"}, valid, platform="landsat-8")
    with pytest.raises(SensorError, match="unknown sensor 'avhrr'"):
        decode("avhrr", values, valid)
    with pytest.raises(SensorError, match="instrument"):
        harmonise_to_oli("red", np.array([0.1]), "mss")


def test_numpy_kernels_agree_with_greening():
    rng = np.random.default_rng(0)
    blue, red, nir = (rng.uniform(0.0, 0.6, (5, 7)).astype(np.float32) for _ in range(3))
    red[0, 0] = nir[0, 0] = 0.0  # zero denominator -> NaN in both
    clear = np.ones((5, 7), dtype=bool)
    nd, ev, kn = indices_from_reflectance(blue, red, nir, clear)
    x = {k: xr.DataArray(v, dims=("y", "x")) for k, v in (("blue", blue), ("red", red), ("nir", nir))}
    np.testing.assert_array_equal(nd, greening.ndvi(x["red"], x["nir"]).values)
    np.testing.assert_array_equal(ev, greening.evi(x["blue"], x["red"], x["nir"]).values)
    np.testing.assert_array_equal(kn, greening.kndvi(greening.ndvi(x["red"], x["nir"])).values)
    # and both are the textbook formulas
    c = greening.EVI_COEFFICIENTS
    b64, r64, n64 = (a.astype(np.float64) for a in (blue, red, nir))
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(nd, (n64 - r64) / (n64 + r64), atol=1e-6)
        np.testing.assert_allclose(
            ev, c["g"] * (n64 - r64) / (n64 + c["c1"] * r64 - c["c2"] * b64 + c["l"]), rtol=1e-4, atol=1e-6
        )
    assert np.isnan(nd[0, 0])


# -- Sentinel-2 ----------------------------------------------------------------------------


def test_sentinel2_hand_calculation_and_scl():
    codes = np.arange(12, dtype=np.uint8)
    n = codes.size
    values = {
        "B2": np.full(n, 500, np.uint16),
        "B4": np.full(n, 800, np.uint16),
        "B8": np.full(n, 3200, np.uint16),
        "SCL": codes,
    }
    valid = {k: np.ones(n, bool) for k in values}
    d = decode("sentinel-2", values, valid)
    assert d.clear.tolist() == [c not in (0, 1, 3, 8, 9, 10, 11) for c in range(12)]
    ok = d.clear
    assert d.ndvi[ok] == pytest.approx((0.32 - 0.08) / (0.32 + 0.08), abs=1e-6)  # 0.6
    assert d.evi[ok] == pytest.approx(2.5 * 0.24 / (0.32 + 0.48 - 0.375 + 1), abs=1e-6)
    assert np.isnan(d.ndvi[~ok]).all()
    # DN 0 / 65535 are no data; snow (11) is clear only if the rules say so
    values["B8"][4], values["B4"][5] = 0, 65535
    d = decode("sentinel-2", values, valid, rules=SensorRules(scl_not_clear=(0, 1, 3, 8, 9, 10)))
    assert not d.clear[4] and not d.clear[5] and d.clear[11]


# -- MODIS ---------------------------------------------------------------------------------


def test_modis_hand_calculation():
    nd = np.array([5000, -2000, 10000, -3000, -2001, 10001, 5000, 5000, 5000, 5000], dtype=np.int16)
    ev = np.array([3000, 0, 0, 0, 0, 0, -3000, 3000, 3000, 3000], dtype=np.int16)
    rel = np.array([0, 1, 0, 0, 0, 0, 0, 2, 3, -1], dtype=np.int8)
    values = {"ndvi": nd, "evi": ev, "pixel_reliability": rel}
    valid = {k: np.ones(nd.size, bool) for k in values}
    d = decode("modis", values, valid)
    assert d.clear.tolist() == [True, True, True, False, False, False, True, False, False, False]
    assert d.ndvi[0] == pytest.approx(0.5, abs=1e-7) and d.evi[0] == pytest.approx(0.3, abs=1e-7)
    assert d.ndvi[1] == pytest.approx(-0.2, abs=1e-7) and d.ndvi[2] == pytest.approx(1.0, abs=1e-7)
    assert d.kndvi[0] == pytest.approx(math.tanh(0.25), abs=1e-7)
    assert np.isnan(d.evi[6]) and d.clear[6]  # EVI fill on a clear NDVI pixel
    # marginal (1) excluded by stricter rules
    d = decode("modis", values, valid, rules=SensorRules(modis_reliability_clear=(0,)))
    assert not d.clear[1]
    # EVI is optional (NDVI-only distributions): all NaN, NDVI unchanged
    d = decode("modis", {"ndvi": nd, "pixel_reliability": rel}, valid)
    assert np.isnan(d.evi).all() and d.ndvi[0] == pytest.approx(0.5, abs=1e-7)


@needs_modis
def test_modis_real_ndvi_is_dn_times_1e4():
    path = MODIS_DATA / "TERRA_MODIS_012010_NDVI_2013-09-14.tif"
    grid = RegionGrid.from_raster(path)
    layers = {"ndvi": (Layer(str(path), 1),)}
    values, valid = read_layers(layers, ["ndvi"], grid, (0, 0, grid.height, grid.width))
    dn = values["ndvi"]
    assert dn.dtype == np.int16 and dn.shape == (147, 255)
    values["pixel_reliability"] = np.zeros(dn.shape, np.int8)
    valid["pixel_reliability"] = np.ones(dn.shape, bool)
    d = decode("modis", values, valid)
    assert d.clear.all()
    np.testing.assert_array_equal(d.ndvi, dn.astype(np.float32) * np.float32(1e-4))
    # the README's valid range of this date: 171..9163
    assert float(d.ndvi.min()) == pytest.approx(0.0171, abs=1e-7)
    assert float(d.ndvi.max()) == pytest.approx(0.9163, abs=1e-7)
    np.testing.assert_allclose(d.kndvi, np.tanh(dn.astype(np.float64) ** 2 * 1e-8), atol=1e-6)
    # later dates carry DNs outside -2000..10000 (e.g. -3301, 10238): not clear
    path = MODIS_DATA / "TERRA_MODIS_012010_NDVI_2013-11-17.tif"
    with rasterio.open(path) as src:
        dn = src.read(1)
    d = decode(
        "modis",
        {"ndvi": dn, "pixel_reliability": np.zeros(dn.shape, np.int8)},
        {"ndvi": np.ones(dn.shape, bool), "pixel_reliability": np.ones(dn.shape, bool)},
    )
    out = (dn < -2000) | (dn > 10000)
    assert out.any()
    np.testing.assert_array_equal(d.clear, ~out)


# -- real Sentinel-2 L2A (sen2r) ------------------------------------------------------------


def s2_layers(date: str) -> dict[str, tuple[Layer, ...]]:
    boa = str(S2_DATA / f"S2A2A_{date}_022_Barbellino_BOA_10.tif")
    scl = str(S2_DATA / f"S2A2A_{date}_022_Barbellino_SCL_10.tif")
    # BOA band order B1 B2 B3 B4 B5 B6 B7 B8 B9 B11 B12 (1-based indexes)
    return {"B2": (Layer(boa, 2),), "B4": (Layer(boa, 4),), "B8": (Layer(boa, 8),), "SCL": (Layer(scl, 1),)}


@needs_s2
@pytest.mark.parametrize("date", ["20170703", "20190723"])
def test_sentinel2_real_ndvi_matches_sen2r(date):
    layers = s2_layers(date)
    grid = RegionGrid.from_raster(layers["B4"][0].path)
    values, valid = read_layers(layers, ["B2", "B4", "B8", "SCL"], grid, (0, 0, grid.height, grid.width))
    # every class clear here, to compare all pixels
    d = decode("sentinel-2", values, valid, rules=SensorRules(scl_not_clear=()))
    assert d.clear.all()
    with rasterio.open(S2_DATA / f"S2A2A_{date}_022_Barbellino_NDVI_10.tif") as src:
        ref = src.read(1)
    # sen2r stores round(NDVI * 10000) as int16: the decoded NDVI is within half a unit
    # of the last digit (5e-5), plus float32 rounding (NDVI < 1: < 1e-7)
    diff = np.abs(d.ndvi.astype(np.float64) - ref * 1e-4)
    assert diff.max() <= 5e-5 + 1e-6
    assert diff.max() > 4e-5  # the rounding is visible: the comparison is not vacuous
    np.testing.assert_array_equal(np.round(d.ndvi.astype(np.float64) * 1e4).astype(np.int16), ref)


@needs_s2
@pytest.mark.parametrize(
    ("date", "counts"),
    [
        ("20170703", {2: 30, 4: 101, 5: 13, 6: 11, 7: 64, 8: 30, 9: 3}),
        ("20190723", {2: 3, 4: 134, 5: 3, 6: 65, 7: 47}),
    ],
)
def test_sentinel2_real_scl_20m_onto_10m_masks_its_classes(date, counts):
    layers = s2_layers(date)
    grid = RegionGrid.from_raster(layers["B4"][0].path)  # 10 m, 42 x 24
    assert grid.resolution == 10.0
    values, valid = read_layers(
        layers, ["B2", "B4", "B8", "SCL"], grid, (0, 0, grid.height, grid.width), resampling={"SCL": "nearest"}
    )
    scl = values["SCL"]
    # nearest from 20 m onto the aligned 10 m grid: each class pixel becomes 2 x 2
    with rasterio.open(layers["SCL"][0].path) as src:
        native = src.read(1)
    np.testing.assert_array_equal(scl, np.kron(native, np.ones((2, 2), np.uint8)))
    found = dict(zip(*np.unique(scl, return_counts=True), strict=True))
    assert {int(k): int(v) for k, v in found.items()} == {k: 4 * v for k, v in counts.items()}
    d = decode("sentinel-2", values, valid)
    masked = np.isin(scl, (0, 1, 3, 8, 9, 10, 11))
    np.testing.assert_array_equal(d.clear, ~masked)
    expected_masked = 4 * sum(v for k, v in counts.items() if k in (0, 1, 3, 8, 9, 10, 11))
    assert int((~d.clear).sum()) == expected_masked  # 2017: 4 * (30 + 3) = 132; 2019: 0
    assert np.isnan(d.ndvi[~d.clear]).all() and np.isfinite(d.ndvi[d.clear]).all()
