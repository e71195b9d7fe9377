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
import os
import socket
import subprocess
import sys
import time
import urllib.request
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory):
    """URL of stac-fastapi-static serving the test catalog on 127.0.0.1 (killed at the end)."""
    root = tmp_path_factory.mktemp("stac")
    catalog = build_catalog(root)
    port = _free_port()
    env = {**os.environ, "CATALOG_HREF": str(catalog), "RELOAD": "false", "LOG_LEVEL": "warning"}
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "stac_server:app",
            "--app-dir",
            str(Path(__file__).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"STAC server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"url": url, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
