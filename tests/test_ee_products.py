"""Server-side Earth Engine products (:mod:`karstflow.sources.ee_products`), checked offline.

Earth Engine cannot be reached from here. The ``ee`` objects are built the way
earthengine-api's own tests build them (``ee.apitestcase.ApiTestCase.InitializeApi``): the
algorithm signatures come from the ``algorithms.json`` fixture shipped in the package and no
Cloud API resource is installed, so nothing goes over a network. What is checked is the
serialised computation (``ee.Image.serialize()``): the collections, date filters, band
selections, scale/offset constants, QA bit masks, Roy et al. (2016) coefficients and
reducers each product sends to Earth Engine.
"""

from __future__ import annotations

import json

import pytest

from karstflow.sensors import (
    LANDSAT_QA_BITS,
    LANDSAT_SR_OFFSET,
    LANDSAT_SR_SCALE,
    MODIS_VI_SCALE,
    ROY2016_ETM_TO_OLI,
    SensorRules,
)
from karstflow.sources import ee_products as P

ee = pytest.importorskip("ee")


@pytest.fixture()
def offline_ee(monkeypatch):
    from ee import apitestcase

    ee.Reset()
    monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
    monkeypatch.setattr(ee.data, "getAlgorithms", apitestcase.GetAlgorithms)
    ee.Initialize(None, "", project="my-project")
    yield ee
    ee.Reset()


def graph(img) -> dict:
    """The expression tree as sent to Earth Engine, unrolled (no shared-value references)."""
    from ee import serializer

    return serializer.encode(img, is_compound=False, for_cloud_api=True)


def calls(node, name: str) -> list[dict]:
    """Every invocation of algorithm ``name`` anywhere in the serialised graph."""
    out = []

    def walk(n):
        if isinstance(n, dict):
            fi = n.get("functionInvocationValue")
            if isinstance(fi, dict) and fi.get("functionName") == name:
                out.append(fi["arguments"])
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return out


def constants(node) -> list:
    out = []

    def walk(n):
        if isinstance(n, dict):
            if "constantValue" in n:
                out.append(n["constantValue"])
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return out


def loaded(node, algo: str) -> list[str]:
    return [a["id"]["constantValue"] for a in calls(node, algo)]


REGION = [115.0, 24.0, 116.0, 25.0]


@pytest.mark.parametrize("method", ["median", "max-ndvi"])
def test_landsat_composite_merges_four_platforms_scales_masks_and_harmonises(offline_ee, method):
    rules = SensorRules(landsat_qa_not_clear=("fill", "cloud", "cloud_shadow"))
    img = P.vegetation_composite(
        ee, "landsat", "2020-01-01", "2021-01-01", ee.Geometry.Rectangle(REGION), method=method, rules=rules
    )
    g = graph(img)
    # the per-scene collection, once (the composite refers to it twice: indices and count)
    s = graph(P.landsat_indices(ee, "2020-01-01", "2021-01-01", ee.Geometry.Rectangle(REGION), rules))
    assert sorted(loaded(s, "ImageCollection.load")) == sorted(
        ["LANDSAT/LT05/C02/T1_L2", "LANDSAT/LE07/C02/T1_L2", "LANDSAT/LC08/C02/T1_L2", "LANDSAT/LC09/C02/T1_L2"]
    )
    assert set(loaded(g, "ImageCollection.load")) == set(loaded(s, "ImageCollection.load"))
    assert len(calls(s, "ImageCollection.merge")) == 3
    # per platform: the body of the function mapped over its collection
    bodies = {}
    for m in calls(s, "Collection.map"):
        ids = loaded(m["collection"], "ImageCollection.load")
        if len(set(ids)) == 1:
            bodies[ids[0]] = constants(m["baseAlgorithm"])
    assert len(bodies) == 4
    bands = ("blue", "red", "nir", "swir16", "swir22")
    slopes = [ROY2016_ETM_TO_OLI[b][0] for b in bands]
    intercepts = [ROY2016_ETM_TO_OLI[b][1] for b in bands]
    # Roy et al. (2016) Table 2 OLS, blue, red, nir, SWIR 1.6 um, SWIR 2.2 um
    assert slopes == [0.8474, 0.9047, 0.8462, 0.8937, 0.9071]
    assert intercepts == [0.0003, 0.0061, 0.0412, 0.0254, 0.0172]
    # QA_PIXEL bits 0, 3 and 4 -> mask 1 + 8 + 16 = 25
    assert (1 << LANDSAT_QA_BITS["fill"]) + (1 << LANDSAT_QA_BITS["cloud"]) + (
        1 << LANDSAT_QA_BITS["cloud_shadow"]
    ) == 25
    for coll_id, c in bodies.items():
        tm_etm = coll_id in ("LANDSAT/LT05/C02/T1_L2", "LANDSAT/LE07/C02/T1_L2")
        # band renames per platform: TM/ETM+ SR_B1/B3/B4/B5/B7, OLI SR_B2/B4/B5/B6/B7 -> blue,
        # red, nir, swir16, swir22 (SR_B4 is nir on TM, red on OLI)
        tm_bands, oli_bands = (
            ["SR_B1", "SR_B3", "SR_B4", "SR_B5", "SR_B7"],
            ["SR_B2", "SR_B4", "SR_B5", "SR_B6", "SR_B7"],
        )
        assert (tm_bands if tm_etm else oli_bands) in c and (oli_bands if tm_etm else tm_bands) not in c
        assert ["blue", "red", "nir", "swir16", "swir22"] in c
        # the harmonised, masked reflectance goes on under the composite's band names
        assert ["blue", "red", "nir", "swir1", "swir2"] in c
        # SR = DN * 2.75e-05 - 0.2, valid DN 7273..43636, QA mask 25
        assert LANDSAT_SR_SCALE in c and LANDSAT_SR_OFFSET in c and 7273 in c and 43636 in c
        assert ["QA_PIXEL"] in c and 25 in c
        # Roy et al. (2016) ETM+ -> OLI on TM and ETM+ only
        assert (slopes in c and intercepts in c) == tm_etm
        assert 2.5 in c and 6.0 in c and 7.5 in c  # EVI gain and aerosol terms
    c = constants(s)
    # date filter of the period on each collection
    assert "2020-01-01" in json.dumps(s) and "2021-01-01" in json.dumps(s)
    assert len(calls(s, "Filter.dateRangeContains")) == 4
    # indices: tanh for kNDVI, EVI gain 2.5 / C1 6 / C2 7.5
    assert calls(g, "Image.tanh") and 2.5 in c and 6.0 in c and 7.5 in c
    # reducer: median of the index bands, or a quality mosaic on ndvi; clear_count a count
    if method == "median":
        assert len(calls(g, "reduce.median")) == 1 and len(calls(g, "reduce.count")) == 1
        assert not calls(g, "ImageCollection.qualityMosaic")
    else:
        (qm,) = calls(g, "ImageCollection.qualityMosaic")
        assert qm["qualityBand"]["constantValue"] == "ndvi"
        assert not calls(g, "reduce.median") and len(calls(g, "reduce.count")) == 1
    assert ["clear_count"] in constants(g) and ["ndvi"] in constants(g)
    # reflectance composited by the same rule as the indices: the median of every band, or
    # every band of the max-NDVI observation (karstflow.vegetation.composite_year)
    values = ["ndvi", "evi", "kndvi", "blue", "red", "nir", "swir1", "swir2"]
    reduced = calls(g, "reduce.median") if method == "median" else calls(g, "ImageCollection.qualityMosaic")
    (arg,) = [a["collection"] for a in reduced]
    assert calls(arg, "Image.select") and values in [
        a["bandSelectors"]["constantValue"] for a in calls(arg, "Image.select") if "bandSelectors" in a
    ]
    top = g["functionInvocationValue"]
    assert top["functionName"] == "Image.select"
    assert top["arguments"]["bandSelectors"]["constantValue"] == P.composite_bands("landsat")
    assert P.composite_bands("landsat") == [
        "ndvi",
        "evi",
        "kndvi",
        "clear_count",
        "blue",
        "red",
        "nir",
        "swir1",
        "swir2",
    ]


def test_sentinel2_links_cloud_score_plus_and_divides_by_10000(offline_ee):
    rules = SensorRules()
    img = P.vegetation_composite(
        ee, "sentinel-2", "2023-04-01", "2023-10-01", ee.Geometry.Rectangle(REGION), rules=rules, cs_cdf_threshold=0.65
    )
    g = graph(P.sentinel2_indices(ee, "2023-04-01", "2023-10-01", ee.Geometry.Rectangle(REGION), rules, 0.65))
    assert set(loaded(graph(img), "ImageCollection.load")) == set(loaded(g, "ImageCollection.load"))
    assert sorted(loaded(g, "ImageCollection.load")) == [
        "COPERNICUS/S2_SR_HARMONIZED",
        "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED",
    ]
    links = calls(g, "Image.linkCollection")  # the client maps ImageCollection.linkCollection per image
    assert links and all(a["linkedBands"]["constantValue"] == ["cs_cdf"] for a in links)
    assert set(loaded(links[0]["imageCollection"], "ImageCollection.load")) == {
        "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
    }
    c = constants(g)
    assert 10000.0 in c and 0.65 in c and ["B2", "B4", "B8", "B11", "B12"] in c
    assert ["blue", "red", "nir", "swir1", "swir2"] in c
    # DN 0 and 65535 are no data (karstflow.sensors.S2_DN_NODATA)
    assert {
        a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"] for a in calls(g, "Image.gt")
    } == {0}
    assert 65535 in {
        a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"] for a in calls(g, "Image.lt")
    }
    # SCL fallback: one neq per not-clear class
    neq = {a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"] for a in calls(g, "Image.neq")}
    assert neq == set(rules.scl_not_clear) and ["SCL"] in c


def test_modis_scales_and_keeps_the_clear_summary_qa(offline_ee):
    rules = SensorRules(modis_reliability_clear=(0,))
    img = P.vegetation_composite(ee, "modis", "2010-01-01", "2011-01-01", ee.Geometry.Rectangle(REGION), rules=rules)
    assert set(loaded(graph(img), "ImageCollection.load")) == {"MODIS/061/MOD13Q1"}
    g = graph(P.modis_indices(ee, "2010-01-01", "2011-01-01", ee.Geometry.Rectangle(REGION), rules))
    assert loaded(g, "ImageCollection.load") == ["MODIS/061/MOD13Q1"]
    c = constants(g)
    assert MODIS_VI_SCALE in c and ["NDVI", "EVI"] in c and ["SummaryQA"] in c
    # MOD13Q1 reflectance: band 3 blue, 1 red, 2 nir, 7 MIR (2.1 um) -> the composite's names
    assert ["sur_refl_b03", "sur_refl_b01", "sur_refl_b02", "sur_refl_b07"] in c
    assert ["blue", "red", "nir", "swir2"] in c and 10000 in c
    assert P.composite_bands("modis")[4:] == ["blue", "red", "nir", "swir2"]
    eqs = {a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"] for a in calls(g, "Image.eq")}
    assert eqs == {0}


def test_reflectance_can_be_left_out_of_the_composite(offline_ee):
    r = ee.Geometry.Rectangle(REGION)
    img = P.vegetation_composite(ee, "modis", "2010-01-01", "2011-01-01", r, rules=SensorRules(), reflectance=False)
    g = graph(img)
    selects = [a["bandSelectors"]["constantValue"] for a in calls(g, "Image.select") if "bandSelectors" in a]
    assert ["ndvi", "evi", "kndvi"] in selects and [
        "ndvi",
        "evi",
        "kndvi",
        "blue",
        "red",
        "nir",
        "swir2",
    ] not in selects
    assert P.composite_bands("modis", reflectance=False) == ["ndvi", "evi", "kndvi", "clear_count"]


def test_unknown_sensor_method_or_qa_bit_is_named(offline_ee):
    r = ee.Geometry.Rectangle(REGION)
    with pytest.raises(ValueError, match="sensor: expected one of landsat, sentinel-2, modis; found 'spot'"):
        P.vegetation_composite(ee, "spot", "2020-01-01", "2021-01-01", r, rules=SensorRules())
    with pytest.raises(ValueError, match="method: expected one of"):
        P.vegetation_composite(ee, "modis", "2020-01-01", "2021-01-01", r, method="mean", rules=SensorRules())

    class Rules:
        landsat_qa_not_clear = ("cloud", "haze")
        scl_not_clear = (3,)
        modis_reliability_clear = (0,)

    with pytest.raises(ValueError, match=r"landsat_qa_not_clear.*\['haze'\]"):
        P.vegetation_composite(ee, "landsat", "2020-01-01", "2021-01-01", r, rules=Rules())


def test_era5_land_twelve_months_in_provider_units(offline_ee):
    img = P.climate_monthly(ee, "era5-land", 2020, ee.Geometry.Rectangle(REGION))
    g = graph(img)
    assert set(loaded(g, "ImageCollection.load")) == {"ECMWF/ERA5_LAND/MONTHLY_AGGR"}
    names = P.climate_band_names("era5-land", 2020)
    assert (
        len(names) == 12 * 11
        and names[0] == "temperature_2m_2020-01"
        and names[-1] == "total_precipitation_sum_2020-12"
    )
    renames = [a["names"]["constantValue"] for a in calls(g, "Image.rename")]
    assert [n for r in renames for n in r] == names
    text = json.dumps(g)
    assert '"2020-12-01"' in text and '"2021-01-01"' in text and '"2020-02-01"' in text
    assert not calls(g, "Image.multiply")  # stored in physical units already
    assert P.climate_units("era5-land")["total_precipitation_sum"] == "m"
    assert P.climate_units("era5-land")["temperature_2m_min"] == "K"


def test_terraclimate_scale_factors_make_physical_units(offline_ee):
    img = P.climate_monthly(ee, "terraclimate", 2005)
    g = graph(img)
    assert set(loaded(g, "ImageCollection.load")) == {"IDAHO_EPSCOR/TERRACLIMATE"}
    c = constants(g)
    # tmmx, tmmn 0.1 degC; pr 1 mm; srad 0.1 W m-2; pet 0.1 mm; vap 0.001 kPa; vs 0.01 m s-1
    assert c.count([0.1, 0.1, 1.0, 0.1, 0.1, 0.001, 0.01]) == 12
    assert P.climate_units("terraclimate") == {
        "tmmx": "degC",
        "tmmn": "degC",
        "pr": "mm",
        "srad": "W m-2",
        "pet": "mm",
        "vap": "kPa",
        "vs": "m s-1",
    }
    with pytest.raises(ValueError, match="climate product: expected one of"):
        P.climate_monthly(ee, "cru", 2005)


def test_soilgrids_bands_and_mapped_unit_factors(offline_ee):
    img = P.soilgrids(ee, ["clay", "bdod", "phh2o"], ["0-5cm", "30-60cm"])
    g = graph(img)
    assert sorted(set(loaded(g, "Image.load"))) == [
        "projects/soilgrids-isric/bdod_mean",
        "projects/soilgrids-isric/clay_mean",
        "projects/soilgrids-isric/phh2o_mean",
    ]
    c = constants(g)
    assert ["clay_0-5cm_mean"] in c and ["bdod_30-60cm_mean"] in c
    divisors = [
        a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"] for a in calls(g, "Image.divide")
    ]
    assert divisors == [10.0, 10.0, 100.0, 100.0, 10.0, 10.0]  # g/kg -> %, cg/cm3 -> kg/dm3, pH*10 -> pH
    assert [r["names"]["constantValue"] for r in calls(g, "Image.rename")] == [
        ["clay_0-5cm"],
        ["clay_30-60cm"],
        ["bdod_0-5cm"],
        ["bdod_30-60cm"],
        ["phh2o_0-5cm"],
        ["phh2o_30-60cm"],
    ]
    with pytest.raises(ValueError, match=r"soil depths: .*\['0-10cm'\]"):
        P.soilgrids(ee, ["clay"], ["0-10cm"])


def test_landcover_worldcover_versions_and_missing_years(offline_ee):
    g20, g21 = graph(P.landcover(ee, "worldcover", 2020)), graph(P.landcover(ee, "worldcover", 2021))
    assert loaded(g20, "ImageCollection.load") == ["ESA/WorldCover/v100"]
    assert loaded(g21, "ImageCollection.load") == ["ESA/WorldCover/v200"]
    assert ["Map"] in constants(g21) and ["landcover"] in constants(g21)
    with pytest.raises(ValueError, match=r"worldcover has the years \[2020, 2021\]; found 2019"):
        P.landcover(ee, "worldcover", 2019)
    with pytest.raises(ValueError, match="clcd has the years 1985 and 1990"):
        P.landcover(ee, "clcd", 1987, clcd_asset="x/clcd_{year}")
    with pytest.raises(ValueError, match="earthengine.clcd_asset"):
        P.landcover(ee, "clcd", 2010)
    g = graph(P.landcover(ee, "clcd", 2010, clcd_asset="projects/x/CLCD_v01_{year}"))
    assert loaded(g, "Image.load") == ["projects/x/CLCD_v01_2010"]


def test_worldpop_mosaics_the_year_and_keeps_totals_as_a_density(offline_ee):
    img = P.worldpop(ee, 2015, ee.Geometry.Rectangle(REGION))
    g = graph(img)
    assert set(loaded(g, "ImageCollection.load")) == {"WorldPop/GP/100m/pop"}
    text = json.dumps(g)
    # filtered by the year and country properties, and by the region's bounds
    assert '"year"' in text and "2015" in text and '"CHN"' in text and calls(g, "Collection.filter")
    assert calls(g, "ImageCollection.mosaic") and ["population"] in constants(g)
    # persons per 100 m pixel / true pixel area (m2) x 1e6: a density (persons km-2) ...
    assert calls(g, "Image.pixelArea") and calls(g, "Image.divide")
    assert 1e6 in constants(g) or 1000000.0 in constants(g)
    # ... averaged onto coarser pixels (the sum is kept when multiplied by the grid pixel area)
    (reduce,) = calls(g, "Image.reduceResolution")
    assert "Reducer.mean" in json.dumps(reduce["reducer"]) and reduce["maxPixels"]["constantValue"] == 1024
    assert [r["names"]["constantValue"] for r in calls(g, "Image.rename")] == [["population_density"]]
    assert P.WORLDPOP_UNITS == {"population_density": "persons km-2"}
    # 250 persons km-2 on a 30 m pixel is 0.225 persons; on 100 m, 2.5 persons
    assert P.persons_per_pixel(250.0, 900.0) == pytest.approx(0.225)
    assert P.persons_per_pixel(250.0, 10_000.0) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="worldpop has the years 2000-2020; found 2023"):
        P.worldpop(ee, 2023)
    no_country = json.dumps(graph(P.worldpop(ee, 2000, country=None)))
    assert '"CHN"' not in no_country
