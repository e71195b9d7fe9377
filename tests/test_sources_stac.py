"""The STAC adapter against a real STAC API on loopback (stac-fastapi-static + uvicorn).

The fixture writes Sentinel-2-like COGs (10 m and 20 m bands, SCL) and a Copernicus-DEM-
like COG to disk, catalogues them with pystac as a static catalog and serves it with
stac-fastapi-static in a uvicorn subprocess on 127.0.0.1 (the assets are read over HTTP
with range requests from the same server). Items carry the metadata the harmonisation
decides from: a 03.01 item dated after the 04.00 switch, 04.00 items with and without
Earth Search's ``boa_offset_applied``, a 05.09 reprocessing that replaces an older item
of the same tile and time, a date split over two MGRS tiles, and a very cloudy scene.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from karstflow.composite import median_composite
from karstflow.grid import RegionGrid
from karstflow.sources import AoiOutsideDataError, MissingBandError, NoScenesError, Period
from karstflow.sources.cache import tiles_for
from karstflow.sources.rasters import load_stack
from karstflow.sources.stac import StacSource

pystac = pytest.importorskip("pystac")
pytest.importorskip("stac_fastapi.static")
pytest.importorskip("uvicorn")

import requests  # noqa: E402

from karstflow.sources.fetch import BackoffPolicy  # noqa: E402
from karstflow.sources.stac import _tile_and_time, default_collection, stac_retryable  # noqa: E402
from stac_server import add_cog_asset, fault_counts, make_item, save_catalog, serve  # noqa: E402 - after importorskip

CRS = "EPSG:32650"
GRID = RegionGrid.from_bounds(CRS, 10, (500000, 2900000, 501200, 2901000))  # 120 x 100 px
FOOT = (499800.0, 2899800.0, 501400.0, 2901200.0)  # item footprint, 160 x 140 px at 10 m
BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")
ES_KEYS = {"B2": "blue", "B3": "green", "B4": "red", "B8": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"}
RES = {"B2": 10, "B3": 10, "B4": 10, "B8": 10, "B11": 20, "B12": 20, "SCL": 20}
PERIOD = Period("2022", dt.date(2022, 1, 1), dt.date(2022, 12, 31))

# date, item suffix, properties, DN offset actually in the file, cloud square (row, col, size at 20 m)
SCENES = [
    (dt.date(2022, 2, 10), "", {"s2:processing_baseline": "03.01"}, 0, None),  # after 25 Jan, still no offset
    (dt.date(2022, 3, 12), "", {"s2:processing_baseline": "04.00"}, 1000, (10, 10, 20)),
    (
        dt.date(2022, 4, 11),
        "",
        {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True},
        0,
        (30, 40, 25),
    ),
    (dt.date(2022, 5, 11), "", {"s2:processing_baseline": "05.09"}, 1000, None),
    (dt.date(2022, 6, 10), "", {"s2:processing_baseline": "04.00"}, 1000, (0, 0, 15)),
]


def truth(band: str, day: dt.date) -> np.ndarray:
    """True reflectance at the band's resolution over FOOT: multiples of 1e-4 (exact in DN)."""
    r = RES[band]
    h, w = int((FOOT[3] - FOOT[1]) / r), int((FOOT[2] - FOOT[0]) / r)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.05 + 0.02 * BANDS.index(band) + 0.0001 * ((yy * 3 + xx * 7) % 500)
    return np.round(base + 0.001 * day.month, 4)


def scl_of(cloud: tuple[int, int, int] | None) -> np.ndarray:
    h, w = int((FOOT[3] - FOOT[1]) / 20), int((FOOT[2] - FOOT[0]) / 20)
    scl = np.full((h, w), 4, np.uint8)
    if cloud:
        r, c, s = cloud
        scl[r : r + s, c : c + s] = 9
    return scl


def write_cog(path: Path, data: np.ndarray, res: float, bounds=FOOT, crs=CRS, nodata=0) -> None:
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    t = Affine(res, 0, bounds[0], 0, -res, bounds[3])
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=crs,
        transform=t,
        nodata=nodata,
        compress="deflate",
        blocksize=64,
    ) as dst:
        dst.write(data, 1)


def _lonlat(bounds, crs=CRS):
    from rasterio.warp import transform_bounds

    return list(transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21))


def _item(item_id, when, props, bounds=FOOT, crs=CRS):
    bb = _lonlat(bounds, crs)
    geom = {
        "type": "Polygon",
        "coordinates": [[[bb[0], bb[1]], [bb[2], bb[1]], [bb[2], bb[3]], [bb[0], bb[3]], [bb[0], bb[1]]]],
    }
    return pystac.Item(id=item_id, geometry=geom, bbox=bb, datetime=when, properties=dict(props))


def _s2_item(
    root: Path,
    item_id: str,
    day: dt.date,
    props,
    offset,
    cloud,
    *,
    west_only=None,
    keys=ES_KEYS,
    garbage=False,
    cloud_cover=12.0,
):
    when = dt.datetime(day.year, day.month, day.day, 3, 0, 5, tzinfo=dt.UTC)
    item = _item(item_id, when, {**props, "s2:mgrs_tile": "50RKN", "eo:cloud_cover": cloud_cover})
    for band, key in keys.items():
        if band == "SCL":
            data = scl_of(cloud)
        else:
            refl = truth(band, day)
            if cloud:
                r, c, s = cloud
                f = RES["SCL"] // RES[band]
                refl = refl.copy()
                refl[r * f : (r + s) * f, c * f : (c + s) * f] = 0.6  # bright cloud
            data = np.round(refl * 10000).astype(np.int32) + offset
            if garbage:
                data = data * 0 + 7777
            data = data.astype(np.uint16)
        if west_only is not None:
            data = data.copy()
            half = data.shape[1] // 2
            if west_only:
                data[:, half:] = 0
            else:
                data[:, :half] = 0
        path = root / "catalog" / "data" / item_id / f"{key}.tif"
        write_cog(path, data, RES[band])
        item.add_asset(key, pystac.Asset(href=str(path), media_type=pystac.MediaType.COG, roles=["data"]))
    return item


def build_catalog(root: Path) -> Path:
    cat = pystac.Catalog(id="karstflow-test", description="loopback test catalog")
    extent = pystac.Extent(
        pystac.SpatialExtent([_lonlat(FOOT)]), pystac.TemporalExtent([[dt.datetime(2022, 1, 1, tzinfo=dt.UTC), None]])
    )
    s2 = pystac.Collection(id="sentinel-2-l2a", description="Sentinel-2 L2A", extent=extent)
    cat.add_child(s2)
    for day, _, props, offset, cloud in SCENES:
        if day == dt.date(2022, 6, 10):  # one date over two MGRS tiles: west and east halves
            s2.add_item(_s2_item(root, f"S2A_50RKN_{day:%Y%m%d}_0_L2A", day, props, offset, cloud, west_only=True))
            item = _s2_item(root, f"S2A_50RLN_{day:%Y%m%d}_0_L2A", day, props, offset, cloud, west_only=False)
            item.properties["s2:mgrs_tile"] = "50RLN"
            s2.add_item(item)
            continue
        s2.add_item(_s2_item(root, f"S2A_50RKN_{day:%Y%m%d}_0_L2A", day, props, offset, cloud))
    # an older processing of 2022-05-11 (same tile and time) that the 05.09 item replaces
    s2.add_item(
        _s2_item(
            root,
            "S2A_50RKN_20220511_1_L2A",
            dt.date(2022, 5, 11),
            {"s2:processing_baseline": "04.00"},
            1000,
            None,
            garbage=True,
        )
    )
    # a scene that is 95 % cloudy by its metadata: dropped by max_scene_cloud_pct = 80
    s2.add_item(
        _s2_item(
            root,
            "S2A_50RKN_20220720_0_L2A",
            dt.date(2022, 7, 20),
            {"s2:processing_baseline": "04.00"},
            1000,
            (0, 0, 80),
            cloud_cover=95.0,
        )
    )
    # a collection whose items lack swir22
    bad = pystac.Collection(id="s2-no-swir22", description="missing band", extent=extent)
    cat.add_child(bad)
    keys = {k: v for k, v in ES_KEYS.items() if k != "B12"}
    bad.add_item(
        _s2_item(
            root,
            "S2B_50RKN_20220301_0_L2A",
            dt.date(2022, 3, 1),
            {"s2:processing_baseline": "04.00"},
            1000,
            None,
            keys=keys,
        )
    )
    # DEM: a plane in EPSG:4326 like Copernicus GLO-30 (1 arc-second)
    dem = pystac.Collection(id="cop-dem-glo-30", description="DEM", extent=extent)
    cat.add_child(dem)
    ll = _lonlat(FOOT)
    step = 1 / 3600
    west, north = np.floor(ll[0] / step) * step - 5 * step, np.ceil(ll[3] / step) * step + 5 * step
    w, h = int((ll[2] - west) / step) + 10, int((north - ll[1]) / step) + 10
    yy, xx = np.mgrid[0:h, 0:w]
    z = (100.0 + 0.5 * xx + 0.25 * yy).astype(np.float32)
    dem_bounds = (west, north - h * step, west + w * step, north)
    path = root / "catalog" / "data" / "dem" / "Copernicus_DSM_COG_10_N26_00_E116_00_DEM.tif"
    write_cog(path, z, step, bounds=dem_bounds, crs="EPSG:4326", nodata=-32767.0)
    item = _item(
        "Copernicus_DSM_COG_10_N26_00_E116_00_DEM",
        dt.datetime(2021, 4, 22, tzinfo=dt.UTC),
        {},
        bounds=dem_bounds,
        crs="EPSG:4326",
    )
    item.add_asset("data", pystac.Asset(href=str(path), media_type=pystac.MediaType.COG, roles=["data"]))
    dem.add_item(item)
    cat.normalize_hrefs(str(root / "catalog"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog" / "catalog.json"


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory):
    """URL of stac-fastapi-static serving the test catalog on 127.0.0.1 (killed at the end)."""
    root = tmp_path_factory.mktemp("stac")
    catalog = build_catalog(root)
    with serve(catalog) as url:
        yield {"url": url, "root": root, "catalog": catalog}


def source(stac_api, cache, **kw):
    args = dict(
        url=stac_api["url"], collection="sentinel-2-l2a", tile_px=64, max_concurrent=2, max_scene_cloud_pct=80.0
    )
    args.update(kw)
    return StacSource("stac-test", cache, **args)


def expected_composite() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Median of the true reflectance over clear dates, on GRID; and the clear count."""
    r0, c0 = int((FOOT[3] - GRID.bounds[3]) / 10), int((GRID.bounds[0] - FOOT[0]) / 10)
    h, w = GRID.shape
    clear = []
    for _day, _, _, _, cloud in SCENES:
        scl10 = np.repeat(np.repeat(scl_of(cloud), 2, 0), 2, 1)
        clear.append(scl10[r0 : r0 + h, c0 : c0 + w] == 4)
    clear = np.array(clear)
    out = {}
    for b in BANDS:
        f = RES[b] // 10
        stack = []
        for day, *_ in SCENES:
            t = np.repeat(np.repeat(truth(b, day), f, 0), f, 1)[r0 : r0 + h, c0 : c0 + w]
            stack.append(t)
        stack = np.where(clear, np.array(stack), np.nan)
        out[b] = np.nanmedian(stack, axis=0)
    return out, clear.sum(0)


def test_stac_composite_recovers_the_truth_with_per_item_harmonisation(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources")
    scenes = src.scenes(PERIOD, GRID)
    # 5 dates: the 95 % cloudy scene dropped, the older 2022-05-11 processing replaced
    assert [s.date for s in scenes] == [s[0] for s in SCENES]
    june = scenes[-1]
    assert (
        "S2A_50RKN_20220610_0_L2A" in june.meta["source_items"]
        and "S2A_50RLN_20220610_0_L2A" in june.meta["source_items"]
    )
    assert (
        "S2A_50RKN_20220511_0_L2A" in scenes[3].meta["source_items"] and "_1_L2A" not in scenes[3].meta["source_items"]
    )
    ds = load_stack(scenes, GRID, BANDS, chunk_px=48, region="stac-test", period=PERIOD)
    # per item, not per date: the 03.01 item of 2022-02-10 is not shifted, 05.09 and 04.00 are
    for t, (day, *_rest) in enumerate(SCENES):
        got = ds["reflectance"].sel(band="B4").isel(time=t).values
        want = np.repeat(np.repeat(truth("B4", day), 1, 0), 1, 1)[20:120, 20:140]
        clear = ds["clear"].isel(time=t).values
        np.testing.assert_allclose(got[clear], want[clear], atol=1e-6)
    composite, count = median_composite(ds["reflectance"], ds["clear"])
    composite, count = composite.compute(), count.compute()
    want, want_count = expected_composite()
    np.testing.assert_array_equal(count.values, want_count)
    for b in BANDS:
        np.testing.assert_allclose(composite.sel(band=b).values, want[b], atol=1e-6, err_msg=b)
    entries = src.cache.manifest("stac")
    assert entries and all(e["sha256"] and e["items"] and e["request"]["tile"] for e in entries)
    assert src.fetched == len(entries) and src.reused == 0


def test_stac_rerun_reads_the_cache_and_refetches_a_corrupt_tile(stac_api, tmp_path):
    cache = tmp_path / "resources"
    first = source(stac_api, cache)
    first.scenes(PERIOD, GRID)
    again = source(stac_api, cache)
    again.scenes(PERIOD, GRID)
    assert again.fetched == 0 and again.reused == first.fetched
    victim = sorted((cache / "stac").rglob("20220312.tif"))[0]
    victim.write_bytes(victim.read_bytes()[:-100] + b"\0" * 100)
    third = source(stac_api, cache)
    third.scenes(PERIOD, GRID)
    assert third.fetched == 1


def test_stac_dem_is_mosaicked_onto_the_grid(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources", dem_collection="cop-dem-glo-30")
    files = src.dem(GRID)
    assert len(files) == len(tiles_for(GRID, 64)) == 6  # 3 x 2 lattice tiles of 64 px meet the grid
    from karstflow.sources import Layer, Scene

    scene = Scene("dem", dt.date(2000, 1, 1), {"elevation": tuple(Layer(f) for f in files)}, encoding="as-is")
    dem = load_stack([scene], GRID, ["elevation"], chunk_px=50)["reflectance"].isel(time=0, band=0).values
    assert np.isfinite(dem).all()
    # the plane rises 0.5 m per arc-second eastwards (~27.8 m at 26 N): ~0.18 m per 10 m pixel
    dx = np.nanmedian(np.diff(dem, axis=1))
    assert 0.1 < dx < 0.25


def test_stac_missing_band_names_region_period_item_and_band(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources", collection="s2-no-swir22")
    with pytest.raises(
        MissingBandError, match=r"region stac-test, period 2022: STAC item S2B_50RKN_20220301_0_L2A .* no asset for B12"
    ):
        src.scenes(PERIOD, GRID)


def test_stac_period_without_scenes_and_aoi_outside(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources")
    with pytest.raises(
        NoScenesError,
        match=r"region stac-test, period 2021: .*no sentinel-2-l2a-.* scenes between 2021-01-01 and 2021-12-31",
    ):
        src.scenes(Period("2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31)), GRID)
    far = RegionGrid.from_bounds(CRS, 10, (600000, 3000000, 600500, 3000500))
    with pytest.raises(
        AoiOutsideDataError,
        match=r"region stac-test, period 2022: the region's bounding box .* overlaps no sentinel-2-l2a item",
    ):
        src.scenes(PERIOD, far)


# ======================================================================================
# defects found against the live catalogues
# ======================================================================================

FAST = BackoffPolicy(max_retries=4, base_s=0.01, max_s=0.02)


def test_timeouts_resets_and_503_during_search_are_retried(stac_api, tmp_path):
    # pystac-client turns a read timeout and a reset into APIError without a status
    faults = [
        {"path": "/search", "kind": "slow", "delay_s": 2.5, "times": 1},
        {"path": "/search", "kind": "reset", "times": 1},
        {"path": "/search", "kind": "503", "times": 1},
    ]
    with serve(stac_api["catalog"], faults=faults) as url:
        src = source({"url": url}, tmp_path / "resources", timeout_s=1.0, policy=FAST)
        acqs = src.search(PERIOD, GRID)
        assert fault_counts(url) == [1, 1, 1]
    assert [a.date for a in acqs] == [s[0] for s in SCENES]


def test_stac_retryable_reads_pystac_client_api_errors():
    from pystac_client.exceptions import APIError

    try:
        try:
            raise requests.ReadTimeout("HTTPConnectionPool(host='x'): Read timed out. (read timeout=1)")
        except Exception as err:
            raise APIError(str(err))  # noqa: B904 - exactly how StacApiIO.request raises it
    except APIError as wrapped:
        assert stac_retryable(wrapped)
    not_found = APIError("collection not found")
    not_found.status_code = 404
    assert not stac_retryable(not_found) and not stac_retryable(APIError("invalid bbox"))


def test_integer_utm_zone_in_the_tile_id_fallback():
    item = make_item("x", dt.datetime(2022, 1, 1, tzinfo=dt.UTC), FOOT, CRS, {"mgrs:utm_zone": 50})
    item.properties.update({"mgrs:latitude_band": "R", "mgrs:grid_square": "KN"})
    assert _tile_and_time(item)[0] == "50RKN"


def test_cloud_cover_filter_is_sent_to_the_api(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources")
    when = "2022-07-01T00:00:00Z/2022-07-31T23:59:59Z"
    assert [i.id for i in src._search("sentinel-2-l2a", None, when)] == ["S2A_50RKN_20220720_0_L2A"]
    assert src._search("sentinel-2-l2a", None, when, max_cloud_pct=80.0) == []  # filtered by the server
    assert src._cloud_filter(80.0)["filter"]["args"][1] == 80.0
    assert (
        StacSource._cloud_ok(pystac.Item("c", None, None, dt.datetime(2022, 1, 1), {"eo:cloud_cover": 95}), 80) is False
    )


def test_one_load_per_item_reads_reflectance_and_scl_together(stac_api, tmp_path, monkeypatch):
    import odc.stac

    calls = []
    real = odc.stac.load

    def counting(items, **kw):
        calls.append((len(items), tuple(kw["bands"]), kw["resampling"]))
        return real(items, **kw)

    monkeypatch.setattr(odc.stac, "load", counting)
    src = source(stac_api, tmp_path / "resources", tile_px=256, max_concurrent=1)
    acq = src.search(Period("m", dt.date(2022, 3, 1), dt.date(2022, 3, 31)), GRID)[0]
    src.fetch_tile(acq, tiles_for(GRID, 256)[0], tmp_path / "t.tif")
    assert len(calls) == 1 and calls[0][1][-1] == "scl"
    assert calls[0][2] == {"scl": "nearest", "*": "nearest"}


def test_earth_search_defaults_to_collection_1():
    assert default_collection("https://earth-search.aws.element84.com/v1") == "sentinel-2-c1-l2a"
    assert default_collection("https://planetarycomputer.microsoft.com/api/stac/v1") == "sentinel-2-l2a"
    assert StacSource("r", "/tmp/x").collection == "sentinel-2-c1-l2a"


def test_dem_without_items_or_without_data_fails_and_caches_nothing(stac_api, tmp_path):
    far = RegionGrid.from_bounds(CRS, 10, (600000, 3000000, 600500, 3000500))
    src = source(stac_api, tmp_path / "resources", dem_collection="cop-dem-glo-30")
    with pytest.raises(AoiOutsideDataError, match=r"DEM collection cop-dem-glo-30 at http://127.0.0.1:\d+, cache tile"):
        src.dem(far)
    assert not list((tmp_path / "resources").rglob("*.tif"))


# ======================================================================================
# products catalogue: real item fields, signing, contradicting flags, new products
# ======================================================================================

G30 = RegionGrid.from_bounds(CRS, 30, (500010, 2899980, 501300, 2901000))  # 43 x 34 px
F30 = (499800.0, 2899800.0, 501600.0, 2901300.0)
G250 = RegionGrid.from_bounds(CRS, 250, (498000, 2898000, 503000, 2903000))
F250 = (497500.0, 2897500.0, 503750.0, 2903750.0)
#: Landsat C2 QA_PIXEL values (LSDS-1619 table 6-3): clear with low confidences on OLI,
#: cloud with high cloud confidence, cloud shadow, fill
QA_CLEAR, QA_CLOUD, QA_SHADOW, QA_FILL = 21824, 22280, 23888, 1
LANDSAT = [
    ("LC08_L2SP_121042_20200305_02_T1", dt.date(2020, 3, 5), "landsat-8"),
    ("LT05_L2SP_121042_19950710_02_T1", dt.date(1995, 7, 10), "landsat-5"),
]


def _aff(bounds, res):
    from affine import Affine

    return Affine(res, 0, bounds[0], 0, -res, bounds[3])


def _shape(bounds, res):
    return int(round((bounds[3] - bounds[1]) / res)), int(round((bounds[2] - bounds[0]) / res))


def landsat_truth(layer: str, k: int) -> np.ndarray:
    h, w = _shape(F30, 30)
    yy, xx = np.mgrid[0:h, 0:w]
    if layer == "qa_pixel":
        qa = np.full((h, w), QA_CLEAR, np.uint16)
        qa[5:15, 5:20] = QA_CLOUD
        qa[20:25, 30:50] = QA_SHADOW
        qa[:, :3] = QA_FILL
        return qa
    base = {"blue": 8000, "green": 8500, "red": 9000, "nir": 20000, "swir16": 15000, "swir22": 12000}[layer] + 1000 * k
    dn = (base + 7 * xx + 11 * yy).astype(np.uint16)
    dn[:, :3] = 0  # fill
    return dn


def modis_truth(layer: str) -> np.ndarray:
    h, w = _shape(F250, 250)
    yy, xx = np.mgrid[0:h, 0:w]
    if layer == "pixel_reliability":
        return ((xx + yy) % 5 - 1).astype(np.int16)  # -1 fill, 0 good, 1 marginal, 2 snow, 3 cloudy
    if layer.endswith("_reflectance"):  # MOD13Q1 reflectance x 1e4, fill -1000
        base = {"blue": 300, "red": 500, "nir": 3000, "mir": 1500}[layer.split("_")[0]]
        v = (base + 20 * xx + 10 * yy).astype(np.int16)
        v[0, :] = -1000
        return v
    v = (3000 + 100 * xx - 50 * yy).astype(np.int16) if layer == "ndvi" else (2000 + 40 * xx + 30 * yy).astype(np.int16)
    v[0, :] = -3000  # fill
    return v


CLIMATE = {"tmmx": (0.1, -10.0, "degC"), "pr": (0.1, 0.0, "mm")}
CLIM_BOUNDS = (116.9, 26.1, 117.1, 26.3)  # EPSG:4326 around the grids, 1/24 degree (TerraClimate)


def climate_dn(var: str, month: int) -> np.ndarray:
    h, w = _shape(CLIM_BOUNDS, 1 / 24)
    yy, xx = np.mgrid[0:h, 0:w]
    return (100 * month + (3 if var == "tmmx" else 7) * xx + 2 * yy + (200 if var == "pr" else 0)).astype(np.int16)


def landcover_truth() -> np.ndarray:
    h, w = _shape(FOOT, 10)
    yy, xx = np.mgrid[0:h, 0:w]
    codes = np.array([10, 20, 30, 40, 50, 60, 80, 90], np.uint8)  # ESA WorldCover classes
    return codes[(yy // 17 + xx // 23) % len(codes)]


def build_products(root: Path) -> Path:
    data = root / "catalog" / "data"
    cols: dict[str, list] = {}
    items = []
    for k, (iid, day, platform) in enumerate(LANDSAT):
        it = make_item(
            iid,
            dt.datetime(day.year, day.month, day.day, 2, 40, tzinfo=dt.UTC),
            F30,
            CRS,
            {"platform": platform, "eo:cloud_cover": 20.0 + k},
        )
        for key, layer in (("blue", "blue"), ("red", "red"), ("nir08", "nir"), ("qa_pixel", "qa_pixel")):
            qa = layer == "qa_pixel"
            add_cog_asset(
                it,
                key,
                data / iid / f"{key}.tif",
                landsat_truth(layer, k),
                _aff(F30, 30),
                CRS,
                nodata=1 if qa else 0,
                scale=None if qa else 2.75e-05,
                offset=None if qa else -0.2,
            )
        items.append(it)
    cols["landsat-c2-l2"] = items
    bad = make_item("LC09_no_qa", dt.datetime(2021, 5, 1, 2, 40, tzinfo=dt.UTC), F30, CRS, {"platform": "landsat-9"})
    add_cog_asset(bad, "red", data / "bad" / "red.tif", landsat_truth("red", 0), _aff(F30, 30), CRS, nodata=0)
    cols["landsat-missing"] = [bad]
    m = make_item(
        "MOD13Q1.A2020049.h28v06.061",
        dt.datetime(2020, 2, 18, tzinfo=dt.UTC),
        F250,
        CRS,
        {"platform": "terra", "start_datetime": "2020-02-18T00:00:00Z", "end_datetime": "2020-03-04T23:59:59Z"},
    )
    for key, layer, nod in (
        ("250m_16_days_NDVI", "ndvi", -3000),
        ("250m_16_days_EVI", "evi", -3000),
        ("250m_16_days_pixel_reliability", "pixel_reliability", -1),
    ):
        add_cog_asset(
            m,
            key,
            data / "modis" / f"{key}.tif",
            modis_truth(layer),
            _aff(F250, 250),
            CRS,
            nodata=nod,
            scale=None if nod == -1 else 1e-4,
        )
    cols["modis-13Q1-061"] = [m]
    months = []
    for month in range(1, 13):
        it = make_item(
            f"terraclimate-2020-{month:02d}", dt.datetime(2020, month, 1, tzinfo=dt.UTC), CLIM_BOUNDS, "EPSG:4326"
        )
        for var, (scale, offset, unit) in CLIMATE.items():
            add_cog_asset(
                it,
                var,
                data / "clim" / f"{var}_{month:02d}.tif",
                climate_dn(var, month),
                _aff(CLIM_BOUNDS, 1 / 24),
                "EPSG:4326",
                nodata=-32768,
                scale=scale,
                offset=offset,
                unit=unit,
            )
        months.append(it)
    cols["terraclimate-monthly"] = months
    lc = make_item(
        "ESA_WorldCover_10m_2021_v200_N26E117",
        dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
        FOOT,
        CRS,
        {"start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2021-12-31T23:59:59Z"},
    )
    add_cog_asset(lc, "map", data / "signed" / "wc2021" / "map.tif", landcover_truth(), _aff(FOOT, 10), CRS, nodata=0)
    cols["esa-worldcover"] = [lc]
    # Landsat items with SWIR under the plain USGS file names only: SR_B4 is red on OLI and
    # nir on TM, SR_B2 is blue on OLI and green on TM
    plain = {
        "oli": {
            "SR_B2": "blue",
            "SR_B3": "green",
            "SR_B4": "red",
            "SR_B5": "nir",
            "SR_B6": "swir16",
            "SR_B7": "swir22",
        },
        "tm": {"SR_B1": "blue", "SR_B2": "green", "SR_B3": "red", "SR_B4": "nir", "SR_B5": "swir16", "SR_B7": "swir22"},
    }
    sr_items = []
    for k, (iid, day, platform) in enumerate(LANDSAT):
        props = {"eo:cloud_cover": 20.0 + k}
        if platform == "landsat-5":
            props["platform"] = platform
        else:  # no platform: the instruments tell OLI
            props["instruments"] = ["oli", "tirs"]
        it = make_item(f"{iid}_SR", dt.datetime(day.year, day.month, day.day, 2, 40, tzinfo=dt.UTC), F30, CRS, props)
        for key, band in plain["tm" if platform == "landsat-5" else "oli"].items():
            add_cog_asset(
                it, key, data / "sr" / iid / f"{key}.tif", landsat_truth(band, k), _aff(F30, 30), CRS, nodata=0
            )
        add_cog_asset(it, "QA_PIXEL", data / "sr" / iid / "qa.tif", landsat_truth("qa_pixel", k), _aff(F30, 30), CRS)
        sr_items.append(it)
    cols["landsat-plain-sr"] = sr_items
    ms = make_item(
        "MOD13Q1.A2020065.h28v06.061",
        dt.datetime(2020, 3, 5, tzinfo=dt.UTC),
        F250,
        CRS,
        {"platform": "terra", "start_datetime": "2020-03-05T00:00:00Z", "end_datetime": "2020-03-20T23:59:59Z"},
    )
    for key, layer, nod in (
        ("250m_16_days_NDVI", "ndvi", -3000),
        ("250m_16_days_EVI", "evi", -3000),
        ("250m_16_days_pixel_reliability", "pixel_reliability", -1),
        *((f"250m_16_days_{b}_reflectance", f"{b.lower()}_reflectance", -1000) for b in ("blue", "red", "NIR", "MIR")),
    ):
        add_cog_asset(
            ms, key, data / "modis-sr" / f"{key}.tif", modis_truth(layer), _aff(F250, 250), CRS, nodata=nod, scale=1e-4
        )
    cols["modis-13Q1-sr"] = [ms]
    # Earth Search legacy item: baseline 04.00, flag false, pixels already shifted, a -jp2 twin
    day = dt.date(2022, 3, 12)
    es = make_item(
        "S2B_50RKN_20220312_0_L2A",
        dt.datetime(2022, 3, 12, 3, 0, 5, tzinfo=dt.UTC),
        FOOT,
        CRS,
        {
            "s2:processing_baseline": "04.00",
            "earthsearch:boa_offset_applied": False,
            "mgrs:utm_zone": 50,
            "mgrs:latitude_band": "R",
            "mgrs:grid_square": "KN",
            "eo:cloud_cover": 5.0,
            "grid:code": "MGRS-50RKN",
        },
    )
    for band in ("B2", "B4", "B8", "SCL"):
        key = ES_KEYS[band]
        r = RES[band]
        arr = scl_of(None) if band == "SCL" else np.round(truth(band, day) * 10000).astype(np.uint16)
        extra = {} if band == "SCL" else {"scale": 0.0001, "offset": -0.1}  # what issue 66 shows either way
        add_cog_asset(es, key, data / "es" / f"{key}.tif", arr, _aff(FOOT, r), CRS, nodata=0, **extra)
        if band != "SCL":
            jp2 = data / "es" / f"{key}.jp2"
            jp2.write_bytes(b"not a jpeg 2000")
            es.add_asset(f"{key}-jp2", pystac.Asset(href=str(jp2), media_type="image/jp2", roles=["data"]))
    # jp2 twin listed first, as a trap for "first matching key"
    es.assets = {
        **{k: v for k, v in es.assets.items() if k.endswith("-jp2")},
        **{k: v for k, v in es.assets.items() if not k.endswith("-jp2")},
    }
    cols["sentinel-2-l2a-es"] = [es]
    # NASADEM tile whose pixels are all no-data
    nd = make_item("NASADEM_HGT_n26e116", dt.datetime(2000, 2, 11, tzinfo=dt.UTC), FOOT, CRS)
    add_cog_asset(
        nd,
        "elevation",
        data / "nasadem" / "e.tif",
        np.full(_shape(FOOT, 20), -32768, np.int16),
        _aff(FOOT, 20),
        CRS,
        nodata=-32768,
    )
    cols["nasadem"] = [nd]
    # the Planetary Computer's terraclimate: a Zarr store as a collection asset, no items
    cols["terraclimate"] = []
    zarr = pystac.Asset(
        href="abfs://cpdata/raw/terraclimate/4000m/raster.zarr",
        media_type="application/vnd+zarr",
        roles=["data", "zarr-abfs"],
        extra_fields={"xarray:storage_options": {"account_name": "cpdata"}},
    )
    return save_catalog(root, cols, {"terraclimate": {"zarr-abfs": zarr}})


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    root = tmp_path_factory.mktemp("products")
    with serve(build_products(root)) as url:
        yield url


def psource(url, cache, **kw):
    kw.setdefault("collection", "sentinel-2-l2a")
    return StacSource("stac-test", cache, url=url, tile_px=32, max_concurrent=2, policy=FAST, **kw)


def on_grid(files, grid, band):
    """Cached tiles mosaicked onto ``grid`` (nearest; the grids are aligned), NaN where empty."""
    import rasterio
    from rasterio.warp import Resampling, reproject

    out = np.full(grid.shape, np.nan)
    for f in files:
        with rasterio.open(f) as s:
            tmp = np.full(grid.shape, np.nan)
            reproject(
                s.read(band).astype("float64"),
                tmp,
                src_transform=s.transform,
                src_crs=s.crs,
                src_nodata=s.nodata,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                dst_nodata=np.nan,
                resampling=Resampling.nearest,
            )
            out = np.where(np.isnan(out), tmp, out)
    return out


def window(arr, foot, grid):
    r0, c0 = (
        int(round((foot[3] - grid.bounds[3]) / grid.resolution)),
        int(round((grid.bounds[0] - foot[0]) / grid.resolution)),
    )
    h, w = grid.shape
    return arr[r0 : r0 + h, c0 : c0 + w]


def test_landsat_scenes_keep_dn_qa_bits_and_platform(products, tmp_path):
    src = psource(products, tmp_path / "resources")
    scenes = src.vegetation_scenes("landsat", Period("all", dt.date(1990, 1, 1), dt.date(2021, 12, 31)), G30)
    assert [s.date for s in scenes] == [dt.date(1995, 7, 10), dt.date(2020, 3, 5)]
    assert [s.meta["platform"] for s in scenes] == ["landsat-5", "landsat-8"]
    assert scenes[1].meta["source_items"] == LANDSAT[0][0] and scenes[1].meta["cloud_cover_pct"] == 20.0
    assert all(s.encoding == "as-is" and list(s.layers) == ["blue", "red", "nir", "qa_pixel"] for s in scenes)
    from karstflow.sources.local import band_descriptions

    for scene, k in zip(scenes, (1, 0), strict=True):
        files = [lyr.path for lyr in scene.layers["red"]]
        assert band_descriptions(files[0]) == ["blue", "red", "nir", "qa_pixel"]
        for i, layer in enumerate(("blue", "red", "nir", "qa_pixel"), start=1):
            got = on_grid(files, G30, i)
            want = window(landsat_truth(layer, k), F30, G30).astype(float)
            nod = 1 if layer == "qa_pixel" else 0
            if layer != "qa_pixel":
                want[want == nod] = np.nan
            np.testing.assert_array_equal(np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), err_msg=layer)
    n = src.fetched
    again = psource(products, tmp_path / "resources")
    again.vegetation_scenes("landsat", Period("all", dt.date(1990, 1, 1), dt.date(2021, 12, 31)), G30)
    assert n > 0 and again.fetched == 0 and again.reused == n


def test_modis_vi_and_reliability_as_stored(products, tmp_path):
    src = psource(products, tmp_path / "resources")
    (scene,) = src.vegetation_scenes("modis", Period("2020", dt.date(2020, 1, 1), dt.date(2020, 12, 31)), G250)
    assert scene.date == dt.date(2020, 2, 18) and scene.meta["sensor"] == "modis"
    files = [lyr.path for lyr in scene.layers["ndvi"]]
    for i, layer in enumerate(("ndvi", "evi", "pixel_reliability"), start=1):
        got = on_grid(files, G250, i)
        want = window(modis_truth(layer), F250, G250).astype(float)
        # the assets' fill (-3000 VI, -1 reliability) becomes the file's nodata
        want[want == (-1 if layer == "pixel_reliability" else -3000)] = np.nan
        np.testing.assert_array_equal(np.nan_to_num(got, nan=-9), np.nan_to_num(want, nan=-9), err_msg=layer)


def test_missing_asset_names_item_asset_and_tried_keys(products, tmp_path):
    src = psource(products, tmp_path / "resources", collections={"landsat": "landsat-missing"})
    with pytest.raises(
        MissingBandError,
        match=r"STAC item LC09_no_qa .* no asset for blue, nir, qa_pixel .*"
        r"qa_pixel: qa_pixel, QA_PIXEL",
    ):
        src.vegetation_scenes("landsat", Period("2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31)), G30)


def test_landsat_swir_and_plain_keys_follow_the_instrument(products, tmp_path):
    # a TM item keyed SR_B1..SR_B7 and an OLI item keyed SR_B2..SR_B7: each canonical layer
    # must come from its own instrument's file (SR_B4 is nir on TM, red on OLI)
    src = psource(products, tmp_path / "resources", collections={"landsat": "landsat-plain-sr"})
    scenes = src.vegetation_scenes("landsat", Period("all", dt.date(1990, 1, 1), dt.date(2021, 12, 31)), G30)
    assert [s.meta["platform"] for s in scenes] == ["landsat-5", ""]
    layers = ["blue", "red", "nir", "qa_pixel", "swir16", "swir22"]
    assert all(list(s.layers) == layers for s in scenes)
    for scene, k in zip(scenes, (1, 0), strict=True):
        files = [lyr.path for lyr in scene.layers["swir16"]]
        assert "landsat-plain-sr-sr--" in files[0]  # a product of its own beside the SWIR-less tiles
        for i, layer in enumerate(layers, start=1):
            got = on_grid(files, G30, i)
            want = window(landsat_truth(layer, k), F30, G30).astype(float)
            if layer != "qa_pixel":
                want[want == 0] = np.nan
            np.testing.assert_array_equal(np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), err_msg=layer)


def test_landsat_aliases_by_platform_or_instruments():
    from karstflow.sources.stac import sensor_aliases

    def item(**props):
        return pystac.Item("i", None, None, dt.datetime(2020, 1, 1), props)

    tm = sensor_aliases("landsat", item(platform="LANDSAT_5"))
    assert tm["blue"] == ("blue", "SR_B1") and tm["red"] == ("red", "SR_B3") and tm["nir"][-1] == "SR_B4"
    assert (tm["swir16"], tm["swir22"]) == (("swir16", "SR_B5"), ("swir22", "SR_B7"))
    oli = sensor_aliases("landsat", item(instruments=["oli", "tirs"]))
    assert oli["blue"] == ("blue", "SR_B2") and oli["red"] == ("red", "SR_B4") and oli["nir"][-1] == "SR_B5"
    assert oli["swir16"] == ("swir16", "SR_B6")
    etm = sensor_aliases("landsat", item(instruments=["etm+"]))
    assert etm["red"] == ("red", "SR_B3")
    unknown = sensor_aliases("landsat", item())
    assert unknown["red"] == ("red",) and unknown["nir"] == ("nir08", "nir")  # no plain guess


def test_modis_reflectance_layers_as_stored_with_their_fill(products, tmp_path):
    src = psource(products, tmp_path / "resources", collections={"modis": "modis-13Q1-sr"})
    (scene,) = src.vegetation_scenes("modis", Period("2020", dt.date(2020, 1, 1), dt.date(2020, 12, 31)), G250)
    names = ["ndvi", "evi", "pixel_reliability", "blue_reflectance", "red_reflectance", "nir_reflectance"]
    assert list(scene.layers) == [*names, "mir_reflectance"]
    files = [lyr.path for lyr in scene.layers["mir_reflectance"]]
    for i, layer in enumerate(scene.layers, start=1):
        got = on_grid(files, G250, i)
        want = window(modis_truth(layer), F250, G250).astype(float)
        fill = -1 if layer == "pixel_reliability" else -1000 if layer.endswith("_reflectance") else -3000
        want[want == fill] = np.nan  # the declared fill becomes the file's nodata
        np.testing.assert_array_equal(np.nan_to_num(got, nan=-9), np.nan_to_num(want, nan=-9), err_msg=layer)


def test_reflectance_mapped_in_the_config_but_missing_is_an_error(products, tmp_path):
    # items without SWIR give scenes without it (test above); a layer the config maps must exist
    src = psource(products, tmp_path / "resources", product_assets={"landsat": {"swir16": "SR_B6"}})
    with pytest.raises(MissingBandError, match=r"no asset for swir16 \(tried swir16: SR_B6\)"):
        src.vegetation_scenes("landsat", Period("all", dt.date(1990, 1, 1), dt.date(2021, 12, 31)), G30)


def test_climate_monthly_physical_values_units_and_names(products, tmp_path):
    import rasterio
    from pyproj import Transformer

    src = psource(products, tmp_path / "resources")
    files = src.climate_monthly(2020, G250, collection="terraclimate-monthly")
    with rasterio.open(files[0]) as f:
        assert f.descriptions[:3] == ("tmmx_2020-01", "pr_2020-01", "tmmx_2020-02") and f.count == 24
        assert f.tags(1)["units"] == "degC" and f.tags(2)["units"] == "mm" and f.dtypes[0] == "float32"
    # bilinear of a field linear in source pixels is that field at the sample point
    xs, ys = np.meshgrid(
        G250.bounds[0] + 125 + 250 * np.arange(G250.shape[1]), G250.bounds[3] - 125 - 250 * np.arange(G250.shape[0])
    )
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(xs, ys)
    col, row = (lon - CLIM_BOUNDS[0]) * 24 - 0.5, (CLIM_BOUNDS[3] - lat) * 24 - 0.5
    for var, month, band in (("tmmx", 7, 13), ("pr", 12, 24)):
        scale, offset, _ = CLIMATE[var]
        dn = 100 * month + (3 if var == "tmmx" else 7) * col + 2 * row + (200 if var == "pr" else 0)
        got = on_grid(files, G250, band)
        np.testing.assert_allclose(got, dn * scale + offset, atol=0.02, err_msg=var)
    n = src.fetched
    again = psource(products, tmp_path / "resources")
    again.climate_monthly(2020, G250, collection="terraclimate-monthly")
    assert n > 0 and again.fetched == 0


def test_landcover_needs_a_signed_href_and_gets_one(products, tmp_path):
    unsigned = psource(products, tmp_path / "u")
    with pytest.raises(Exception, match="403|not recognized|HTTP"):
        unsigned.landcover(2021, GRID)
    assert not list((tmp_path / "u").rglob("*.tif"))
    src = psource(
        products,
        tmp_path / "resources",
        sign="planetary-computer",
        token_url=products + "/api/sas/v1/token",
        sign_hosts=("127.0.0.1",),
    )
    files = src.landcover(2021, GRID)
    assert src.signer.requested == 1
    got = on_grid(files, GRID, 1)
    np.testing.assert_array_equal(got, window(landcover_truth(), FOOT, GRID))
    assert src.cache.manifest("stac")[0]["items"][0]["id"] == "ESA_WorldCover_10m_2021_v200_N26E117"


def test_contradicting_boa_flag_is_corrected_and_the_cog_not_the_jp2_is_read(products, tmp_path, caplog):
    src = psource(products, tmp_path / "resources", collection="sentinel-2-l2a-es", bands=("B2", "B4", "B8"))
    with caplog.at_level("WARNING"):
        (scene,) = src.scenes(Period("m", dt.date(2022, 3, 1), dt.date(2022, 3, 31)), GRID)
    assert "earthsearch:boa_offset_applied=false" in caplog.text and "S2B_50RKN_20220312_0_L2A" in caplog.text
    files = [lyr.path for lyr in scene.layers["B4"]]
    got = on_grid(files, GRID, 2)
    want = window(np.round(truth("B4", dt.date(2022, 3, 12)) * 10000), FOOT, GRID)
    np.testing.assert_array_equal(got, want)  # not shifted by -1000 a second time


def test_dem_of_no_data_only_fails(products, tmp_path):
    src = psource(products, tmp_path / "resources", dem_collection="nasadem")
    with pytest.raises(AoiOutsideDataError, match=r"nasadem .* no valid elevation"):
        src.dem(GRID)
    assert not list((tmp_path / "resources").rglob("*.tif"))


def test_sentinel2_vegetation_scenes_carry_the_canonical_layers(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources")
    scenes = src.vegetation_scenes("sentinel-2", Period("q1", dt.date(2022, 1, 1), dt.date(2022, 3, 31)), GRID)
    assert [s.date for s in scenes] == [dt.date(2022, 2, 10), dt.date(2022, 3, 12)]
    # the items have swir16 / swir22: B11 and B12 come along for the desertification unmixing
    assert all(list(s.layers) == ["B2", "B4", "B8", "B11", "B12", "SCL"] and s.encoding == "as-is" for s in scenes)
    assert "sentinel-2-l2a-sr--" in scenes[0].layers["B12"][0].path
    assert scenes[1].meta["sensor"] == "sentinel-2"
    got = on_grid([lyr.path for lyr in scenes[1].layers["B4"]], GRID, 2)
    clear = window(np.repeat(np.repeat(scl_of((10, 10, 20)), 2, 0), 2, 1), FOOT, GRID) == 4
    want = window(np.round(truth("B4", dt.date(2022, 3, 12)) * 10000), FOOT, GRID)  # offset removed
    np.testing.assert_array_equal(got[clear], want[clear])


def test_sentinel2_vegetation_scenes_without_swir_items_carry_no_swir(stac_api, tmp_path):
    src = source(stac_api, tmp_path / "resources", collection="s2-no-swir22")
    period = Period("m", dt.date(2022, 3, 1), dt.date(2022, 3, 31))
    (scene,) = src.vegetation_scenes("sentinel-2", period, GRID)
    assert list(scene.layers) == ["B2", "B4", "B8", "SCL"]


def test_from_config_reads_collections_and_per_sensor_assets(tmp_path):
    region = {
        "stac": {
            "url": "https://planetarycomputer.microsoft.com/api/stac/v1",
            "collections": {"landsat": "my-landsat", "climate": "my-clim"},
            "assets": {"B8": "B08", "landsat": {"nir": "SR_B5"}},
        }
    }
    src = StacSource.from_config("r", region, {}, cache_root=tmp_path)
    assert src.collection == "sentinel-2-l2a" and src.collections["landsat"] == "my-landsat"
    assert src.collections["modis"] == "modis-13Q1-061" and src.collections["climate"] == "my-clim"
    assert src.assets_override == {"B8": "B08"} and src.product_assets == {"landsat": {"nir": "SR_B5"}}


def test_terraclimate_zarr_collection_names_what_is_missing(products, tmp_path):
    import importlib.util

    if all(importlib.util.find_spec(m) for m in ("zarr", "fsspec", "adlfs")):
        pytest.skip("zarr, fsspec and adlfs are installed: the Zarr path would go to the network")
    src = psource(products, tmp_path / "resources")
    with pytest.raises(ImportError, match=r"collection terraclimate at .* Zarr store .*zarr-abfs.* needs .*adlfs"):
        src.climate_monthly(2020, G250)


# --------------------------------------------------------------------------------------
# without network: bounded by imagery.fetch.retry_budget_s, errors naming what and where
# --------------------------------------------------------------------------------------


def test_stac_against_a_refused_port_fails_fast_naming_region_period_collection_and_host(refused_url, tmp_path):
    """Before: the client's own retry loop ran inside the search's, 7 x 7 attempts (about 6 min)."""
    import time

    from karstflow.sources import RemoteError

    region = {"stac": {"url": refused_url, "collection": "sentinel-2-l2a"}}
    src = StacSource.from_config("xunwu", region, {}, cache_root=tmp_path)  # the default fetch settings
    start = time.monotonic()
    with pytest.raises(RemoteError) as err:
        src.scenes(PERIOD, GRID)
    elapsed = time.monotonic() - start
    msg, host = str(err.value), refused_url.split("//", 1)[1]
    assert msg.startswith(f"region xunwu, period 2022: STAC search of collection sentinel-2-l2a at {refused_url}: ")
    assert f"connection refused at {host}; gave up after " in msg
    assert not any(t in msg for t in ("urllib3", "HTTPConnection", "Max retries", "NewConnectionError"))
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert not list(tmp_path.rglob("*.tif"))


def test_a_host_that_never_answers_cannot_outlast_the_budget(tmp_path):
    """A listening socket that never accepts: connections complete in the kernel's backlog
    and reads hang; the 60 s timeout is cut to the 2 s budget."""
    import socket
    import time

    from karstflow.sources import RemoteError

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        imagery = {"fetch": {"retry_budget_s": 2.0, "timeout_s": 60.0}}
        src = StacSource.from_config("xunwu", {"stac": {"url": url}}, imagery, cache_root=tmp_path)
        start = time.monotonic()
        with pytest.raises(RemoteError, match=r"region xunwu, period static: DEM: .*: timed out at 127\.0\.0\.1:"):
            src.dem(GRID)
        elapsed = time.monotonic() - start
    assert elapsed < 6, f"{elapsed:.1f} s"


def test_asset_reads_run_without_gdal_retries_and_within_the_budget():
    from karstflow.sources.fetch import gdal_http_options, retry_call

    policy = BackoffPolicy(timeout_s=60.0, budget_s=20.0)
    opts = gdal_http_options(policy)
    assert opts["GDAL_HTTP_MAX_RETRY"] == "0"  # odc-stac would read with 10 retries otherwise
    assert opts["GDAL_HTTP_TIMEOUT"] == opts["GDAL_HTTP_CONNECTTIMEOUT"] == "60"  # outside a retry_call: no cut
    inside = retry_call(lambda: gdal_http_options(policy), policy)
    assert inside["GDAL_HTTP_TIMEOUT"] == inside["GDAL_HTTP_CONNECTTIMEOUT"] == "20"
