"""STAC APIs (pystac-client + odc-stac): Sentinel-2 L2A with its SCL layer, and a DEM.

* Search: ``regions.<id>.stac.url`` / ``collection`` (default Earth Search v1,
  ``sentinel-2-l2a``), the region's lon/lat bounding box and the period; scenes above
  ``imagery.max_scene_cloud_pct`` (``eo:cloud_cover``) are dropped; an item reprocessed
  under a newer baseline replaces the older one of the same tile and time.
* Assets: the composite bands plus ``SCL``, found under the asset keys of the common
  catalogues (Earth Search: ``blue, green, red, nir, swir16, swir22, scl``; Planetary
  Computer: ``B02 ... B12, SCL``) or those named in ``stac.assets``.
* Pixels: loaded by odc-stac straight onto each cache tile (region CRS and resolution,
  nearest resampling), one item at a time; each item's digital numbers are harmonised
  with the BOA offset its own metadata implies (:mod:`karstflow.sources.harmonise`), then
  the items of a date are mosaicked (first valid pixel wins) and cached.
* DEM: ``stac.dem_collection`` ``cop-dem-glo-30`` (asset ``data``) or ``nasadem``
  (asset ``elevation``), resampled by odc-stac onto the cache tiles.
* Signing: ``stac.sign: planetary-computer`` appends a SAS token from the Planetary
  Computer token endpoint to Azure blob hrefs; Earth Search needs none.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.sources import S2_BANDS, AoiOutsideDataError, MissingBandError, Period, context
from karstflow.sources.cache import CacheTile
from karstflow.sources.fetch import Acquisition, BackoffPolicy, RemoteSource, group_by_date, retry_call, write_tile
from karstflow.sources.harmonise import boa_add_offset, harmonise_dn

log = logging.getLogger(__name__)

#: Default STAC API: Element 84 Earth Search v1 (public, no signing).
DEFAULT_URL = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"
#: Planetary Computer's SAS token endpoint (``stac.sign: planetary-computer``).
PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"

#: Asset keys tried for each band, in order (Earth Search, Planetary Computer, plain).
ASSET_ALIASES: dict[str, tuple[str, ...]] = {
    "B1": ("coastal", "B01", "B1"),
    "B2": ("blue", "B02", "B2"),
    "B3": ("green", "B03", "B3"),
    "B4": ("red", "B04", "B4"),
    "B5": ("rededge1", "B05", "B5"),
    "B6": ("rededge2", "B06", "B6"),
    "B7": ("rededge3", "B07", "B7"),
    "B8": ("nir", "B08", "B8"),
    "B8A": ("nir08", "B8A"),
    "B9": ("nir09", "B09", "B9"),
    "B11": ("swir16", "B11"),
    "B12": ("swir22", "B12"),
    "SCL": ("scl", "SCL"),
}

#: DEM collections and their elevation asset.
DEM_COLLECTIONS: dict[str, str] = {"cop-dem-glo-30": "data", "nasadem": "elevation"}


def _slug(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    text = (p.netloc + p.path).strip("/")
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "stac"


class PlanetaryComputerSigner:
    """Appends a Planetary Computer SAS token to Azure blob hrefs, one token per collection,
    renewed 5 minutes before it expires."""

    def __init__(self, token_url: str = PC_TOKEN_URL, policy: BackoffPolicy | None = None) -> None:
        self.token_url = token_url.rstrip("/")
        self.policy = policy or BackoffPolicy()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, collection: str) -> str:
        with self._lock:
            tok = self._tokens.get(collection)
            if tok and tok[1] - time.time() > 300:
                return tok[0]

            def get() -> dict[str, Any]:
                with urllib.request.urlopen(f"{self.token_url}/{collection}", timeout=30) as r:  # noqa: S310 - configured https URL
                    return json.loads(r.read())

            body = retry_call(get, self.policy, what=f"SAS token for {collection}")
            expiry = body.get("msft:expiry")
            try:
                expires = dt.datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp()
            except ValueError:
                expires = time.time() + 600
            self._tokens[collection] = (body["token"], expires)
            return body["token"]

    def sign(self, href: str, collection: str) -> str:
        host = urllib.parse.urlsplit(href).netloc
        if not host.endswith(".blob.core.windows.net") or "sig=" in href:
            return href
        sep = "&" if "?" in href else "?"
        return f"{href}{sep}{self.token(collection)}"


def solar_day(item: Any) -> dt.date:
    """Acquisition date in local solar time (UTC shifted by the item's longitude / 15 h)."""
    t = item.datetime or dt.datetime.fromisoformat(str(item.properties.get("start_datetime")).replace("Z", "+00:00"))
    lon = 0.0
    if item.bbox:
        lon = 0.5 * (item.bbox[0] + item.bbox[2])
    return (t + dt.timedelta(hours=lon / 15.0)).date()


def _tile_and_time(item: Any) -> tuple[str, str]:
    p = item.properties
    tile = (
        p.get("s2:mgrs_tile")
        or p.get("grid:code")
        or p.get("mgrs:utm_zone", "") + p.get("mgrs:latitude_band", "") + p.get("mgrs:grid_square", "")
    )
    return str(tile or item.id), str(item.datetime)


def dedupe_reprocessed(items: Sequence[Any]) -> list[Any]:
    """Keep one item per (MGRS tile, sensing time): the highest processing baseline."""
    from karstflow.sources.harmonise import parse_baseline

    best: dict[tuple[str, str], Any] = {}
    for item in items:
        key = _tile_and_time(item)
        pb = item.properties.get("s2:processing_baseline")
        rank = parse_baseline(pb) if pb else (0, 0)
        if key not in best:
            best[key] = (rank, item)
        elif rank > best[key][0]:
            log.info("STAC: item %s (baseline %s) replaces %s of the same tile and time", item.id, pb, best[key][1].id)
            best[key] = (rank, item)
    return [v[1] for v in best.values()]


def asset_keys(item: Any, bands: Sequence[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Band -> asset key of ``item``; bands it lacks map to ``""``."""
    out = {}
    for b in bands:
        if overrides and b in overrides:
            out[b] = overrides[b] if overrides[b] in item.assets else ""
            continue
        out[b] = next((k for k in ASSET_ALIASES.get(b, (b,)) if k in item.assets), "")
    return out


class StacSource(RemoteSource):
    """Sentinel-2 L2A and DEM tiles from a STAC API, cached under ``resources/stac/``."""

    name = "stac"

    def __init__(
        self,
        region: str,
        cache_root: str | Path,
        *,
        url: str = DEFAULT_URL,
        collection: str = DEFAULT_COLLECTION,
        dem_collection: str = "cop-dem-glo-30",
        sign: str = "none",
        token_url: str = PC_TOKEN_URL,
        assets: Mapping[str, str] | None = None,
        dem_resampling: str = "bilinear",
        resampling: str = "nearest",
        timeout_s: float = 60.0,
        **kw: Any,
    ) -> None:
        super().__init__(region, cache_root, **kw)
        self.url = url
        self.collection = collection
        self.dem_collection = dem_collection
        if dem_collection not in DEM_COLLECTIONS:
            raise ValueError(
                f"config key regions.{region}.stac.dem_collection: expected one of {sorted(DEM_COLLECTIONS)}, found "
                f"{dem_collection!r}"
            )
        self.product = f"{collection}--{_slug(url)}"
        self.dem_product = f"{dem_collection}--{_slug(url)}"
        self.assets_override = dict(assets or {})
        self.dem_resampling = dem_resampling
        self.resampling = resampling
        self.timeout_s = timeout_s
        self.signer = PlanetaryComputerSigner(token_url, self.policy) if sign == "planetary-computer" else None
        self._client: Any = None

    @classmethod
    def from_config(
        cls, region_id: str, region: Mapping[str, Any], imagery: Mapping[str, Any], *, cache_root: str | Path
    ) -> StacSource:
        s = dict(region.get("stac") or {})
        fetch = dict(imagery.get("fetch") or {})
        return cls(
            region_id,
            cache_root,
            url=s.get("url", DEFAULT_URL),
            collection=s.get("collection", DEFAULT_COLLECTION),
            dem_collection=s.get("dem_collection", "cop-dem-glo-30"),
            sign=s.get("sign", "none"),
            token_url=s.get("token_url", PC_TOKEN_URL),
            assets=s.get("assets"),
            dem_resampling=s.get("dem_resampling", "bilinear"),
            resampling=imagery.get("resampling", "nearest"),
            bands=tuple(imagery.get("bands", S2_BANDS)),
            tile_px=int(imagery.get("cache_tile_px", 1024)),
            max_concurrent=int(fetch.get("max_concurrent", 4)),
            policy=BackoffPolicy.from_config(fetch),
            max_scene_cloud_pct=float(imagery.get("max_scene_cloud_pct", 100.0)),
            timeout_s=float(fetch.get("timeout_s", 60.0)),
        )

    # -- API ----------------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            from pystac_client import Client
            from pystac_client.stac_api_io import StacApiIO

            # retries are ours (retry_call), so the session does not retry on its own
            io = StacApiIO(timeout=self.timeout_s, max_retries=0)
            self._client = retry_call(
                lambda: Client.open(self.url, stac_io=io), self.policy, what=f"STAC API {self.url}"
            )
        return self._client

    def _search(
        self, collection: str, bbox: Sequence[float] | None, datetime: str | None, max_items: int | None = None
    ) -> list[Any]:
        def run() -> list[Any]:
            search = self.client().search(
                collections=[collection],
                bbox=list(bbox) if bbox is not None else None,
                datetime=datetime,
                limit=100,
                max_items=max_items,
            )
            return list(search.items())

        return retry_call(run, self.policy, what=f"STAC search {collection} at {self.url}")

    def _patch(self, collection: str) -> Any:
        if self.signer is None:
            return None
        return lambda href: self.signer.sign(href, collection)  # type: ignore[union-attr]

    def search(self, period: Period, grid: RegionGrid) -> list[Acquisition]:
        from rasterio.warp import transform_bounds

        bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
        when = f"{period.start.isoformat()}T00:00:00Z/{period.end.isoformat()}T23:59:59Z"
        items = self._search(self.collection, bbox, when)
        if not items and self._search(self.collection, None, when, max_items=1):
            raise AoiOutsideDataError(
                f"{context(self.region, period)}: the region's bounding box "
                f"{tuple(round(b, 4) for b in bbox)} (lon/lat) "
                f"overlaps no {self.collection} item at {self.url}, although the collection has items in the period. "
                f"Check regions.{self.region}.aoi and regions.{self.region}.crs."
            )
        log.info("%s: %d %s items at %s", context(self.region, period), len(items), self.collection, self.url)
        kept = []
        for item in items:
            cc = item.properties.get("eo:cloud_cover")
            if cc is not None and float(cc) > self.max_scene_cloud_pct:
                continue
            kept.append(item)
        if len(kept) < len(items):
            log.info(
                "%s: %d items above %.0f %% cloud cover dropped",
                context(self.region, period),
                len(items) - len(kept),
                self.max_scene_cloud_pct,
            )
        kept = dedupe_reprocessed(kept)
        needed = [*self.bands, "SCL"]
        records = []
        for item in kept:
            keys = asset_keys(item, needed, self.assets_override)
            missing = [b for b, k in keys.items() if not k]
            if missing:
                raise MissingBandError(
                    f"{context(self.region, period)}: STAC item {item.id} of {self.collection} has no asset for "
                    f"{', '.join(missing)} (tried "
                    f"{', '.join(a for b in missing for a in ASSET_ALIASES.get(b, (b,)))}); "
                    f"its assets: {', '.join(item.assets)}. Map them in regions.{self.region}.stac.assets."
                )
            day = solar_day(item)
            if not period.contains(day):
                continue
            meta = {
                "id": item.id,
                "datetime": str(item.datetime),
                "processing_baseline": item.properties.get("s2:processing_baseline"),
                "earthsearch:boa_offset_applied": item.properties.get("earthsearch:boa_offset_applied"),
                "boa_add_offset": boa_add_offset(
                    item.properties, item=f"{context(self.region, period)}: STAC item {item.id}"
                ),
                "cloud_cover_pct": item.properties.get("eo:cloud_cover"),
            }
            records.append((day, item, meta, tuple(item.bbox) if item.bbox else None))
        return group_by_date(records)

    def _load(
        self, item: Any, assets: Sequence[str], tile: CacheTile, *, dtype: str, nodata: Any, resampling: str
    ) -> np.ndarray:
        import odc.stac
        from odc.geo.geobox import GeoBox

        g = tile.grid
        geobox = GeoBox(g.shape, g.transform, g.crs)

        def load() -> np.ndarray:
            ds = odc.stac.load(
                [item],
                bands=list(assets),
                geobox=geobox,
                resampling=resampling,
                dtype=dtype,
                nodata=nodata,
                groupby="id",
                patch_url=self._patch(item.collection_id or self.collection),
                fail_on_error=True,
            )
            return np.stack([ds[a].isel(time=0).values for a in assets])

        return retry_call(load, self.policy, what=f"reading item {item.id}")

    def fetch_tile(self, acq: Acquisition, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        bands = list(self.bands)
        out: np.ndarray | None = None
        used = []
        for item, meta in zip(acq.items, acq.meta, strict=True):
            keys = asset_keys(item, [*bands, "SCL"], self.assets_override)
            refl = self._load(
                item, [keys[b] for b in bands], tile, dtype="uint16", nodata=0, resampling=self.resampling
            )
            scl = self._load(item, [keys["SCL"]], tile, dtype="uint8", nodata=0, resampling="nearest")
            data = np.concatenate([harmonise_dn(refl, meta["boa_add_offset"]), scl.astype(np.uint16)])
            if out is None:
                out = data
            else:
                empty = (out[: len(bands)] == 0).all(axis=0)
                out = np.where(empty[None], data, out)
            used.append({**meta, "assets": {b: item.assets[keys[b]].href for b in [*bands, "SCL"]}})
        assert out is not None
        write_tile(path, out, tile, [*bands, "SCL"], nodata=0)
        return {
            "url": self.url,
            "collection": self.collection,
            "items": used,
            "request": {
                "tile": tile.id,
                "crs": tile.crs,
                "resolution": tile.resolution,
                "bounds": list(tile.bounds),
                "bands": [*bands, "SCL"],
                "resampling": self.resampling,
            },
            "harmonisation": "per item: DN + boa_add_offset, stored with offset 0",
        }

    def fetch_dem_tile(self, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        from karstflow.sources.fetch import _tile_lonlat

        asset = DEM_COLLECTIONS[self.dem_collection]
        items = self._search(self.dem_collection, _tile_lonlat(tile), None)
        out = np.full(tile.grid.shape, np.nan, dtype=np.float32)
        for item in items:
            if asset not in item.assets:
                raise MissingBandError(
                    f"{context(self.region)}: DEM item {item.id} of {self.dem_collection} has no {asset!r} asset; "
                    f"its assets: {', '.join(item.assets)}"
                )
            z = self._load(item, [asset], tile, dtype="float32", nodata=np.nan, resampling=self.dem_resampling)[0]
            out = np.where(np.isnan(out), z, out)
        write_tile(path, out, tile, ["elevation"], nodata=float("nan"))
        return {
            "url": self.url,
            "collection": self.dem_collection,
            "items": [{"id": i.id, "href": i.assets[asset].href} for i in items],
            "request": {
                "tile": tile.id,
                "crs": tile.crs,
                "resolution": tile.resolution,
                "bounds": list(tile.bounds),
                "resampling": self.dem_resampling,
            },
        }
