"""Self-checks of the generated karst catalogue (tests/karst_catalog.py) served on loopback.

The catalogue is built once per module and served by stac-fastapi-static (tests/stac_server.py)
in a uvicorn subprocess; assets are read over HTTP with rasterio (range requests) and decoded
independently of karstflow's own decoders: DN * 2.75e-05 - 0.2, then OLI = intercept + slope *
ETM+ (Roy et al. 2016) for TM/ETM+; MODIS DN * 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pystac")
pytest.importorskip("stac_fastapi.static")
pytest.importorskip("uvicorn")
rasterio = pytest.importorskip("rasterio")

import karst_catalog as kc  # noqa: E402  (tests/ is on sys.path: pytest prepends the conftest folder)
from karstflow.sensors import ROY2016_ETM_TO_OLI  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(KarstCatalog, base URL) of the catalogue served on 127.0.0.1."""
    cat = kc.build_karst_catalog(tmp_path_factory.mktemp("karst"))
    with kc.serve_catalog(cat.catalog_json) as url:
        yield cat, url


def _read(href: str) -> tuple[np.ndarray, object]:
    with rasterio.open(href) as src:
        return src.read(1), src.transform


def test_search_answers_each_collection_with_the_expected_items(served):
    cat, url = served
    want = {"landsat-c2-l2": 16, "modis-13Q1-061": 12, "terraclimate-monthly": 144, "esa-worldcover": 2}
    assert cat.item_counts == want
    for cid, n in want.items():
        items = kc.search_json(url, cid)
        assert len(items) == n, cid
        assert all(i["collection"] == cid for i in items)
        assert all(a["href"].startswith(url + "/") for i in items for a in i["assets"].values())
    landsat = kc.search_json(url, "landsat-c2-l2")
    by_year = {}
    for i in landsat:
        by_year.setdefault(int(i["properties"]["datetime"][:4]), set()).add(i["properties"]["platform"])
    assert by_year == {
        2010: {"landsat-5"},
        2011: {"landsat-5"},
        2012: {"landsat-7"},
        **{y: {"landsat-8"} for y in range(2013, 2018)},
    }
    # a datetime search: the growing season of 2012 has both Landsat 7 scenes and 5 climate months
    assert len(kc.search_json(url, "landsat-c2-l2", datetime="2012-05-01T00:00:00Z/2012-09-30T23:59:59Z")) == 2
    assert len(kc.search_json(url, "terraclimate-monthly", datetime="2012-05-01T00:00:00Z/2012-09-30T23:59:59Z")) == 5
    red = landsat[0]["assets"]["red"]["raster:bands"][0]
    assert (red["scale"], red["offset"], red["nodata"]) == (2.75e-05, -0.2, 0)
    assert landsat[0]["properties"]["proj:code"] == "EPSG:32648"


@pytest.mark.parametrize(
    "item_id", ["LE07_L2SP_127042_20120615_20220901_02_T1", "LC08_L2SP_127042_20140815_20240901_02_T1"]
)
def test_landsat_over_http_decodes_to_the_truth_on_clear_pixels(served, item_id):
    cat, url = served
    item = next(i for i in kc.search_json(url, "landsat-c2-l2") if i["id"] == item_id)
    year, platform = int(item_id[17:21]), item["properties"]["platform"]
    refl = {}
    for band, key in (("red", "red"), ("nir", "nir08")):
        dn, transform = _read(item["assets"][key]["href"])
        sr = dn * 2.75e-05 - 0.2
        if platform != "landsat-8":
            slope, intercept = ROY2016_ETM_TO_OLI[band]
            sr = intercept + slope * sr
        refl[band] = sr
    qa, _ = _read(item["assets"]["qa_pixel"]["href"])
    clear = (qa & 0b11111) == 0  # fill, dilated cloud, cirrus, cloud, shadow bits unset
    assert np.all(clear == ((qa & (1 << 6)) > 0))
    ndvi = (refl["nir"] - refl["red"]) / (refl["nir"] + refl["red"])
    h, w = qa.shape
    xs = transform.c + 30 * (np.arange(w) + 0.5)
    truth = np.broadcast_to(kc.truth_ndvi(year, xs), (h, w))
    np.testing.assert_allclose(ndvi[clear], truth[clear], atol=1e-3)
    # by hand: 2014 OLI middle zone NDVI 0.65 - 0.04 = 0.61, rock share 0.6 of the bare part:
    # bare nir 0.6 * 0.32 + 0.4 * 0.25 = 0.292, red 0.6 * 0.27 + 0.4 * 0.15 = 0.222, so
    # the vegetation fraction v solves NDVI(v nir_veg + (1 - v) nir_bare, ...) = 0.61:
    # v = (0.61 * 0.514 - 0.070) / (0.42 - 0.070 - 0.61 * (0.48 - 0.514)) = 0.24354 / 0.37074
    if year == 2014:
        assert truth[70, 70] == pytest.approx(0.61)  # x = 569400 + 30 * 70.5 = 571515 m
        v = (0.61 * 0.514 - 0.070) / (0.42 - 0.070 - 0.61 * (0.48 - 0.514))
        assert v == pytest.approx(0.6569, abs=1e-4)
        assert refl["nir"][70, 70] == pytest.approx(v * 0.45 + (1 - v) * 0.292, abs=3e-5)
        assert refl["red"][70, 70] == pytest.approx(v * 0.03 + (1 - v) * 0.222, abs=3e-5)
        assert kc.truth_rock(2014, 571515.0) == pytest.approx(0.6 * (1 - v))
    # flagged pixels carry wrong values, so a consumer that does not mask them fails
    flagged = ~clear & (qa != 1)
    assert flagged.sum() > 100
    assert np.abs(ndvi[flagged] - truth[flagged]).min() > 0.1
    assert (qa == 1).any() and np.all(qa[:, :10] == 1)  # the fill strip in the margin


def test_every_region_pixel_has_a_clear_landsat_observation_each_year():
    t, shape = kc.landsat_grid()
    m = int(kc.LANDSAT_MARGIN / kc.RESOLUTION)
    for year in kc.LANDSAT_YEARS:
        qa = np.array([kc.landsat_scene(year, s)["qa_pixel"] for s in (0, 1)])
        clear = (qa & (1 << 6)) > 0
        assert clear[:, m:-m, m:-m].any(axis=0).all(), year
        assert (~clear[:, m:-m, m:-m]).any(axis=(1, 2)).all()  # both blobs lie inside the region


def test_modis_ndvi_minus_the_offset_is_the_truth_at_pixel_centres(served):
    cat, url = served
    items = kc.search_json(url, "modis-13Q1-061", datetime="2018-01-01T00:00:00Z/2018-12-31T23:59:59Z")
    assert len(items) == 2 and {i["properties"]["platform"] for i in items} == {"terra"}
    ux, uy = kc.modis_pixel_centres_in_crs()
    cloudy_items = 0
    for item in items:
        ndvi, transform = _read(item["assets"]["250m_16_days_NDVI"]["href"])
        rel, _ = _read(item["assets"]["250m_16_days_pixel_reliability"]["href"])
        assert transform.a == pytest.approx(231.656358, abs=1e-6)
        # pixel-aligned on the global MODIS grid
        assert ((transform.c - kc.MODIS_ORIGIN[0]) / transform.a) == pytest.approx(
            round((transform.c - kc.MODIS_ORIGIN[0]) / transform.a), abs=1e-6
        )
        good = rel == 0
        assert (rel == -1).any() and np.all(ndvi[rel == -1] == -3000)
        got = ndvi[good] * 1e-4 - kc.SENSOR_OFFSET
        np.testing.assert_allclose(got, kc.truth_ndvi(2018, ux[good]), atol=1e-4)
        if (rel == 3).any():
            cloudy_items += 1
            assert np.all(ndvi[rel == 3] == 1000)
    assert cloudy_items == 1
    # every MODIS pixel inside the region is valid (not fill)
    inside = (ux > 570000) & (ux < 573000) & (uy > 2931000) & (uy < 2934000)
    assert inside.sum() > 100 and np.all(rel[inside] >= 0)


def test_climate_and_landcover_assets_match_their_truth(served):
    cat, url = served
    item = next(i for i in kc.search_json(url, "terraclimate-monthly") if i["id"] == "terraclimate-2015-07")
    assert item["properties"]["datetime"].startswith("2015-07-01")
    for var in ("tmmx", "pr", "vap"):
        band = item["assets"][var]["raster:bands"][0]
        dn, _ = _read(item["assets"][var]["href"])
        value = dn * band.get("scale", 1.0)
        np.testing.assert_allclose(value, kc.truth_climate(var, 2015, 7), atol=1e-6)
    assert {a["raster:bands"][0]["unit"] for a in item["assets"].values()} >= {"degC", "mm", "kPa"}
    # by hand: July tmean = 15.5 + 9.5 + 0.02 * 5 = 25.1, tmmx 29.6; January tmean 6 in 2010
    assert kc.truth_climate("tmmx", 2015, 7) == pytest.approx(29.6, abs=1e-9)
    assert kc.truth_climate("tmmx", 2010, 1) - 4.5 == pytest.approx(6.0, abs=1e-9)
    assert kc.truth_climate("pr", 2010, 6) == pytest.approx(220.0)
    wc = {i["id"][19:23]: i for i in kc.search_json(url, "esa-worldcover")}
    maps = {y: _read(wc[y]["assets"]["map"]["href"])[0] for y in ("2020", "2021")}
    assert set(np.unique(maps["2020"])) | set(np.unique(maps["2021"])) == {10, 20, 30, 40, 50, 60, 80}
    assert (maps["2020"] != maps["2021"]).mean() > 0.1
    # by hand from the pattern: 300 m bands from y = 2931000, west / middle / east zones
    from rasterio.warp import transform as warp

    points = {
        (570500, 2931150): (10, 10),
        (570500, 2931450): (20, 10),
        (571500, 2931150): (10, 60),
        (572500, 2931750): (50, 50),
    }
    lon, lat = warp(kc.CRS, "EPSG:4326", [p[0] for p in points], [p[1] for p in points])
    for year, col in (("2020", 0), ("2021", 1)):
        with rasterio.open(wc[year]["assets"]["map"]["href"]) as src:
            got = [int(v[0]) for v in src.sample(zip(lon, lat, strict=True))]
        assert got == [v[col] for v in points.values()], year
    assert kc.truth_landcover(2021, 570500, 2931100) == 10 and kc.truth_landcover(2020, 570500, 2931400) == 20
    west = kc.truth_landcover(2021, np.full(10, 570500.0), 2931000 + 300 * np.arange(10) + 150)
    assert (west == 10).sum() > (
        kc.truth_landcover(2020, np.full(10, 570500.0), 2931150 + 300 * np.arange(10)) == 10
    ).sum()


def test_soilgrids_vrt_opens_over_vsicurl(served):
    cat, url = served
    base = kc.soilgrids_url(url)
    with rasterio.open(f"/vsicurl/{base}/clay/clay_30-60cm_mean.vrt") as src:
        data = src.read(1)
        assert src.crs.to_dict().get("proj") == "igh" and src.res == (250.0, 250.0)
        assert np.all(data == 340)
    with rasterio.open(f"/vsicurl/{base}/soc/soc_0-5cm_mean.vrt") as src:
        assert np.all(src.read(1) == 150)
    for depth in kc.SOIL_DEPTHS:
        assert sum(kc.truth_soil(p, depth) for p in ("sand", "silt", "clay")) == 1000


def test_lithology_and_aoi_files(served):
    import geopandas as gpd

    cat, _ = served
    aoi, lith = cat.aoi, cat.lithology
    g = gpd.read_file(lith)
    assert list(g["LITH_CODE"]) == ["C2h", "P1m", "T3s"] and g.crs.to_epsg() == 32648
    assert set(g.loc[g["LITH_CODE"].isin(kc.CARBONATE_UNITS)].total_bounds[[0, 2]]) == {569400.0, 572000.0}
    back = gpd.read_file(aoi).to_crs(kc.CRS).total_bounds
    np.testing.assert_allclose(back, kc.REGION_BOUNDS, atol=0.01)
    assert list(kc.truth_lithology([570500, 571500, 572500])) == ["C2h", "P1m", "T3s"]
