"""STAC APIs (pystac-client + odc-stac): Sentinel-2 L2A with SCL, Landsat C2 L2, MODIS
MOD13Q1, monthly climate, ESA WorldCover and a DEM, all cached as tiles of the region grid.

* Search: ``regions.<id>.stac.url`` / ``collection`` (default Earth Search v1 with its
  Collection-1 ``sentinel-2-c1-l2a``; ``sentinel-2-l2a`` elsewhere), the region's lon/lat
  bounding box and the period. ``imagery.max_scene_cloud_pct`` goes into the search as a
  CQL2 ``filter`` on ``eo:cloud_cover`` (or the ``query`` extension) and is checked again
  on the items returned. An item reprocessed under a newer baseline replaces the older
  one of the same tile and time. Timeouts, resets (pystac-client's status-less
  ``APIError``), 429 and 5xx are retried (:func:`stac_retryable`).
* Assets: found under the keys of the common catalogues (Earth Search: ``blue ... scl``;
  Planetary Computer: ``B02 ... SCL``; :data:`SENSOR_ASSETS` for Landsat and MODIS) or
  those named in ``stac.assets`` (flat for Sentinel-2, ``stac.assets.<sensor>.<layer>``
  otherwise); a ``-jp2`` twin is never read. Landsat SWIR (``swir16``, ``swir22``) and the
  MOD13Q1 reflectance layers are fetched when the items have them (:func:`optional_layers`).
* Pixels: one odc-stac load per item and cache tile for all its bands, whatever their
  resolutions (QA layers nearest). Sentinel-2 DNs are harmonised per item with the BOA
  offset its metadata implies (:mod:`karstflow.sources.harmonise`); an Earth Search item
  whose ``earthsearch:boa_offset_applied: false`` contradicts its pixels is corrected and
  logged (:meth:`StacSource._offset_of`).
* Products (``stac.collections``): :meth:`StacSource.vegetation_scenes` (Landsat
  ``landsat-c2-l2``, MODIS ``modis-13Q1-061``, Sentinel-2), :meth:`StacSource.climate_monthly`
  (monthly COG items, or the Planetary Computer's ``terraclimate`` Zarr store) and
  :meth:`StacSource.landcover` (``esa-worldcover``, asset ``map``).
* DEM: ``stac.dem_collection`` ``cop-dem-glo-30`` (asset ``data``) or ``nasadem``
  (asset ``elevation``, Planetary Computer only); no items, or only no-data, over a cache
  tile is an error and nothing is cached.
* Signing: ``stac.sign: planetary-computer`` appends a SAS token from the token endpoint
  (``stac.token_url``) to hrefs on Azure blob hosts; Earth Search needs none.
"""

from __future__ import annotations

import datetime as dt
import functools
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

from karstflow.grid import RegionGrid, register_rio
from karstflow.sources import (
    S2_BANDS,
    AoiOutsideDataError,
    Layer,
    MissingBandError,
    NoScenesError,
    Period,
    Scene,
    context,
)
from karstflow.sources.cache import CacheTile
from karstflow.sources.fetch import (
    Acquisition,
    BackoffPolicy,
    RemoteSource,
    budget_session,
    gdal_http_options,
    group_by_date,
    host_of,
    request_timeout,
    retry_call,
    write_tile,
)
from karstflow.sources.harmonise import boa_add_offset, harmonise_dn

log = logging.getLogger(__name__)

#: Default STAC API: Element 84 Earth Search v1 (public, no signing).
DEFAULT_URL = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"
#: Earth Search's Collection-1 L2A (ESA reprocessing, offset applied and flagged consistently):
#: the default there, because items of its legacy ``sentinel-2-l2a`` collection carry
#: ``earthsearch:boa_offset_applied: false`` although the COGs are already shifted
#: (Element84/earth-search issues 66 and 71; cirrus-geo/cirrus-earth-search issue 33).
EARTH_SEARCH_S2 = "sentinel-2-c1-l2a"

#: Planetary Computer collection names of the vegetation / climate / land-cover products
#: (``regions.<id>.stac.collections`` overrides them).
PRODUCT_COLLECTIONS: dict[str, str] = {
    "landsat": "landsat-c2-l2",
    "modis": "modis-13Q1-061",
    "sentinel-2": DEFAULT_COLLECTION,
    "climate": "terraclimate",
    "landcover": "esa-worldcover",
}

#: Canonical layer (karstflow.sensors.LAYERS, plus the reflectance layers of
#: karstflow.vegetation.REFLECTANCE_LAYERS) -> asset keys tried, in order, per sensor.
#: Landsat C2 L2: Planetary Computer and Earth Search both key the assets by common name
#: (``blue``, ``red``, ``nir08``, ``swir16``, ``swir22``, ``qa_pixel``); plain band names
#: differ between instruments, so they come from :data:`LANDSAT_PLAIN_ASSETS` by the
#: item's platform. MOD13Q1 v061 on the Planetary Computer: ``250m_16_days_NDVI`` etc.
SENSOR_ASSETS: dict[str, dict[str, tuple[str, ...]]] = {
    "landsat": {
        "blue": ("blue",),
        "red": ("red",),
        "nir": ("nir08", "nir"),
        "swir16": ("swir16",),
        "swir22": ("swir22",),
        "qa_pixel": ("qa_pixel", "QA_PIXEL"),
    },
    "modis": {
        "ndvi": ("250m_16_days_NDVI", "NDVI"),
        "evi": ("250m_16_days_EVI", "EVI"),
        "pixel_reliability": ("250m_16_days_pixel_reliability", "SummaryQA", "pixel_reliability"),
        "blue_reflectance": ("250m_16_days_blue_reflectance", "blue_reflectance"),
        "red_reflectance": ("250m_16_days_red_reflectance", "red_reflectance"),
        "nir_reflectance": ("250m_16_days_NIR_reflectance", "NIR_reflectance", "nir_reflectance"),
        "mir_reflectance": ("250m_16_days_MIR_reflectance", "MIR_reflectance", "mir_reflectance"),
    },
}
#: Landsat C2 L2 plain band file names per instrument (USGS LSDS-1618 / LSDS-1619): OLI
#: SR_B2 blue, SR_B4 red, SR_B5 nir, SR_B6 swir 1.6 um, SR_B7 swir 2.2 um; TM and ETM+
#: SR_B1 blue, SR_B3 red, SR_B4 nir, SR_B5 swir 1.6 um, SR_B7 swir 2.2 um. SR_B4 is red on
#: OLI and nir on TM, so a plain key is tried only for the item's own instrument.
LANDSAT_PLAIN_ASSETS: dict[str, dict[str, str]] = {
    "oli": {"blue": "SR_B2", "red": "SR_B4", "nir": "SR_B5", "swir16": "SR_B6", "swir22": "SR_B7"},
    "tm": {"blue": "SR_B1", "red": "SR_B3", "nir": "SR_B4", "swir16": "SR_B5", "swir22": "SR_B7"},
    "etm": {"blue": "SR_B1", "red": "SR_B3", "nir": "SR_B4", "swir16": "SR_B5", "swir22": "SR_B7"},
}
#: STAC ``instruments`` values -> instrument (for items whose ``platform`` is missing).
_LANDSAT_INSTRUMENTS = {"oli": "oli", "tm": "tm", "etm": "etm", "etm+": "etm"}


def sensor_aliases(sensor: str, item: Any) -> dict[str, tuple[str, ...]]:
    """Canonical layer -> asset keys tried for ``item`` of ``sensor`` (:data:`SENSOR_ASSETS`;
    for Landsat followed by the plain ``SR_B*`` name of the item's instrument, from its
    ``platform`` or else its ``instruments``; none when neither names a Landsat instrument)."""
    aliases = dict(SENSOR_ASSETS[sensor])
    if sensor != "landsat":
        return aliases
    from karstflow.sensors import LANDSAT_INSTRUMENT

    p = item.properties
    key = str(p.get("platform") or "").strip().lower().replace("_", "-").replace(" ", "-")
    instrument = LANDSAT_INSTRUMENT.get(key)
    if instrument is None:
        named = [_LANDSAT_INSTRUMENTS.get(str(i).lower()) for i in p.get("instruments") or []]
        instrument = next((i for i in named if i), None)
    plain = LANDSAT_PLAIN_ASSETS.get(instrument or "", {})
    return {layer: (*keys, plain[layer]) if layer in plain else keys for layer, keys in aliases.items()}


def optional_layers(sensor: str) -> tuple[str, ...]:
    """Layers a scene of ``sensor`` carries when its items have them: the surface reflectance
    layers of :data:`karstflow.vegetation.REFLECTANCE_LAYERS` beyond the required
    :data:`karstflow.sensors.LAYERS` (Landsat ``swir16``, ``swir22``; MODIS the four
    MOD13Q1 reflectance layers), which the rocky-desertification unmixing reads."""
    from karstflow.sensors import LAYERS
    from karstflow.vegetation import REFLECTANCE_LAYERS

    required = LAYERS[sensor]
    return tuple(v for v in REFLECTANCE_LAYERS.get(sensor, {}).values() if v not in required)


#: Storage of each sensor's cached layers: dtype and the file's nodata (the providers' fill:
#: Landsat C2 L2 SR fill 0, MOD13Q1 VI fill -3000). MOD13Q1 reflectance (DN x 1e-4, valid
#: 0..10000, fill -1000; MOD13 User's Guide C6.1) fits int16 too: its declared fill is
#: read as no-data and written as -3000; an undeclared -1000 stays, and the vegetation
#: stage drops it as outside 0..10000.
SENSOR_STORAGE: dict[str, tuple[str, int]] = {"landsat": ("uint16", 0), "modis": ("int16", -3000)}
#: Layers holding flags or codes: never interpolated.
QA_LAYERS = frozenset({"qa_pixel", "pixel_reliability", "SCL", "landcover"})
#: ESA WorldCover asset holding the class codes.
LANDCOVER_ASSET = "map"
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

#: TerraClimate variables of the Planetary Computer's Zarr store -> the Earth Engine names.
TERRACLIMATE_ZARR_NAMES = {"tmax": "tmmx", "tmin": "tmmn", "ppt": "pr", "ws": "vs"}

#: DEM collections and their elevation asset.
DEM_COLLECTIONS: dict[str, str] = {"cop-dem-glo-30": "data", "nasadem": "elevation"}


def is_earth_search(url: str) -> bool:
    return "earth-search" in urllib.parse.urlsplit(url).netloc


def default_collection(url: str) -> str:
    """The Sentinel-2 L2A collection used when ``stac.collection`` is not set: Collection-1 on
    Earth Search (see :data:`EARTH_SEARCH_S2`), ``sentinel-2-l2a`` elsewhere."""
    return EARTH_SEARCH_S2 if is_earth_search(url) else DEFAULT_COLLECTION


_TRANSIENT = re.compile(
    r"timed? ?out|connection (aborted|reset|refused)|remotedisconnected|incompleteread|connection broken|"
    r"max retries exceeded|temporarily unavailable|broken pipe",
    re.I,
)


def stac_retryable(exc: BaseException) -> bool:
    """Retry what :func:`~karstflow.sources.fetch.is_retryable` retries, plus pystac-client's
    ``APIError`` without a status: ``StacApiIO.request`` turns every exception raised while
    sending (requests' ``Timeout``, ``ConnectionError``, a reset) into ``APIError(str(err))``
    with no ``status_code`` (pystac_client/stac_api_io.py), so the cause is read from the
    chained exception or the message."""
    from karstflow.sources.fetch import is_retryable

    if is_retryable(exc):
        return True
    if type(exc).__name__ == "APIError" and getattr(exc, "status_code", None) is None:
        import requests

        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, requests.Timeout | requests.ConnectionError | ConnectionError | TimeoutError):
            return True
        return bool(_TRANSIENT.search(str(exc)))
    return False


def _slug(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    text = (p.netloc + p.path).strip("/")
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "stac"


class PlanetaryComputerSigner:
    """Appends a Planetary Computer SAS token to Azure blob hrefs, one token per collection,
    renewed 5 minutes before it expires."""

    def __init__(
        self,
        token_url: str = PC_TOKEN_URL,
        policy: BackoffPolicy | None = None,
        hosts: Sequence[str] = (".blob.core.windows.net",),
    ) -> None:
        self.token_url = token_url.rstrip("/")
        self.policy = policy or BackoffPolicy()
        #: host names (exact, or suffixes starting with ".") whose hrefs are signed
        self.hosts = tuple(hosts)
        self.requested = 0
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, collection: str) -> str:
        with self._lock:
            tok = self._tokens.get(collection)
            if tok and tok[1] - time.time() > 300:
                return tok[0]

            def get() -> dict[str, Any]:
                self.requested += 1
                with urllib.request.urlopen(  # noqa: S310 - configured https URL
                    f"{self.token_url}/{collection}", timeout=request_timeout(self.policy.timeout_s)
                ) as r:
                    return json.loads(r.read())

            body = retry_call(
                get,
                self.policy,
                what=f"SAS token for STAC collection {collection}",
                host=host_of(self.token_url),
                retryable=stac_retryable,
            )
            expiry = body.get("msft:expiry")
            try:
                expires = dt.datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp()
            except ValueError:
                expires = time.time() + 600
            self._tokens[collection] = (body["token"], expires)
            return body["token"]

    def sign(self, href: str, collection: str) -> str:
        host = urllib.parse.urlsplit(href).hostname or ""
        signed = any(host == h or (h.startswith(".") and host.endswith(h)) for h in self.hosts)
        if not signed or "sig=" in href:
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
        # mgrs:utm_zone is an integer in the MGRS extension (Earth Search writes 50, not "50")
        or "".join(str(p.get(k) or "") for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square"))
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


def _is_jp2(asset: Any) -> bool:
    """Earth Search lists each band twice (``red`` COG and ``red-jp2``): the JPEG 2000 copy is
    never read (no overviews, slow range reads)."""
    media = str(getattr(asset, "media_type", "") or "").lower()
    return "jp2" in media or str(asset.href).lower().split("?")[0].endswith(".jp2")


def asset_keys(
    item: Any,
    bands: Sequence[str],
    overrides: Mapping[str, str] | None = None,
    aliases: Mapping[str, Sequence[str]] = ASSET_ALIASES,
) -> dict[str, str]:
    """Band -> asset key of ``item`` (a COG, never a ``-jp2`` duplicate); bands it lacks map to ``""``."""
    out = {}
    for b in bands:
        tried = tried_keys(b, overrides, aliases)
        out[b] = next((k for k in tried if k in item.assets and not _is_jp2(item.assets[k])), "")
    return out


def tried_keys(
    band: str, overrides: Mapping[str, str] | None = None, aliases: Mapping[str, Sequence[str]] = ASSET_ALIASES
) -> tuple[str, ...]:
    if overrides and band in overrides:
        return (str(overrides[band]),)
    return tuple(aliases.get(band, (band,)))


def offset_already_applied(dn: np.ndarray, *, threshold: float = 0.01) -> bool:
    """Whether uint16 L2A digital numbers look already shifted back by BOA_ADD_OFFSET.

    With the 04.00 offset still in the file, a DN below 1000 is a negative reflectance, which
    Sen2Cor produces only for a handful of pixels; once the offset is removed every pixel darker
    than 0.1 (water, shadow, vegetation in the visible bands) is below 1000. More than
    ``threshold`` of the valid (non-zero) DNs below 1000 therefore means "already applied"
    (the test Element84/earth-search issues 66 and 71 describe by hand).
    """
    valid = dn[dn != 0]
    return bool(valid.size) and float(np.mean(valid < 1000)) > threshold


class StacSource(RemoteSource):
    """Sentinel-2 L2A and DEM tiles from a STAC API, cached under ``resources/stac/``."""

    name = "stac"

    def __init__(
        self,
        region: str,
        cache_root: str | Path,
        *,
        url: str = DEFAULT_URL,
        collection: str | None = None,
        dem_collection: str = "cop-dem-glo-30",
        sign: str = "none",
        token_url: str = PC_TOKEN_URL,
        assets: Mapping[str, str] | None = None,
        dem_resampling: str = "bilinear",
        resampling: str = "nearest",
        timeout_s: float = 60.0,
        sign_hosts: Sequence[str] = (".blob.core.windows.net",),
        collections: Mapping[str, str] | None = None,
        product_assets: Mapping[str, Mapping[str, str]] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(region, cache_root, **kw)
        self.url = url
        collection = collection or default_collection(url)
        self.collection = collection
        #: product -> collection (``stac.collections``; Sentinel-2 defaults to ``collection``)
        self.collections = {**PRODUCT_COLLECTIONS, "sentinel-2": collection, **dict(collections or {})}
        #: sensor -> canonical layer -> asset key (``stac.assets.<sensor>``)
        self.product_assets = {k: dict(v) for k, v in (product_assets or {}).items()}
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
        self.signer = (
            PlanetaryComputerSigner(token_url, self.policy, sign_hosts) if sign == "planetary-computer" else None
        )
        self._client: Any = None

    @classmethod
    def from_config(
        cls, region_id: str, region: Mapping[str, Any], imagery: Mapping[str, Any], *, cache_root: str | Path
    ) -> StacSource:
        s = dict(region.get("stac") or {})
        fetch = dict(imagery.get("fetch") or {})
        assets = dict(s.get("assets") or {})
        # stac.assets: flat band -> key for Sentinel-2, or per sensor {landsat: {red: ...}}
        product_assets = {k: v for k, v in assets.items() if isinstance(v, Mapping)}
        s2_assets = {k: v for k, v in assets.items() if not isinstance(v, Mapping)}
        s2_assets.update(product_assets.pop("sentinel-2", {}))
        return cls(
            region_id,
            cache_root,
            url=s.get("url", DEFAULT_URL),
            collection=s.get("collection") or (s.get("collections") or {}).get("sentinel-2"),
            collections=s.get("collections"),
            product_assets=product_assets,
            dem_collection=s.get("dem_collection", "cop-dem-glo-30"),
            sign=s.get("sign", "none"),
            token_url=s.get("token_url", PC_TOKEN_URL),
            assets=s2_assets,
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
    @property
    def host(self) -> str:
        """The STAC API's host, named by error messages when the exception names none."""
        return host_of(self.url) or self.url

    def client(self) -> Any:
        """The pystac-client ``Client``, opened at first use. Every caller runs inside a
        :func:`~karstflow.sources.fetch.retry_call` naming the region, period and collection,
        so opening is not retried here (a retry loop in a retry loop multiplies the waits)."""
        if self._client is None:
            from pystac_client import Client
            from pystac_client.stac_api_io import StacApiIO

            # retries are ours (retry_call), so the session does not retry on its own:
            # max_retries=0 mounts no retrying HTTPAdapter (pystac_client/stac_api_io.py,
            # StacApiIO.__init__), and budget_session mounts one that never retries and cuts
            # the timeout to the retry budget. The timeout goes to Client.open too: it calls
            # stac_io.update(timeout=timeout), which would reset the StacApiIO's timeout to
            # None (no timeout at all) otherwise.
            io = StacApiIO(timeout=self.timeout_s, max_retries=0)
            budget_session(io.session, self.policy)
            self._client = Client.open(self.url, stac_io=io, timeout=self.timeout_s)
        return self._client

    def _cloud_filter(self, max_cloud_pct: float | None) -> dict[str, Any]:
        """Search arguments asking the API itself to drop cloudy items: CQL2-JSON ``filter``
        (STAC API Filter extension: Earth Search, Planetary Computer, stac-fastapi-static) or
        the older ``query`` extension; nothing when the API conforms to neither (the
        client-side check in :meth:`_cloud_ok` still applies)."""
        if max_cloud_pct is None or max_cloud_pct >= 100:
            return {}
        from pystac_client.conformance import ConformanceClasses

        client = self.client()
        if client.conforms_to(ConformanceClasses.FILTER):
            flt = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, float(max_cloud_pct)]}
            return {"filter": flt, "filter_lang": "cql2-json"}
        if client.conforms_to(ConformanceClasses.QUERY):
            return {"query": {"eo:cloud_cover": {"lte": float(max_cloud_pct)}}}
        return {}

    def _search(
        self,
        collection: str,
        bbox: Sequence[float] | None,
        datetime: str | None,
        max_items: int | None = None,
        *,
        max_cloud_pct: float | None = None,
        where: str | None = None,
    ) -> list[Any]:
        """Items of ``collection``; ``where`` (default: the region) leads the error message."""

        def run() -> list[Any]:
            search = self.client().search(
                collections=[collection],
                bbox=list(bbox) if bbox is not None else None,
                datetime=datetime,
                limit=100,
                max_items=max_items,
                **self._cloud_filter(max_cloud_pct),
            )
            return list(search.items())

        return retry_call(
            run,
            self.policy,
            what=f"{where or context(self.region)}: STAC search of collection {collection} at {self.url}",
            host=self.host,
            retryable=stac_retryable,
        )

    def _patch(self, collection: str) -> Any:
        if self.signer is None:
            return None
        return lambda href: self.signer.sign(href, collection)  # type: ignore[union-attr]

    def _items_in(
        self, collection: str, period: Period, grid: RegionGrid, max_cloud_pct: float | None
    ) -> tuple[list[Any], tuple[float, ...]]:
        """Items of ``collection`` over ``grid`` in ``period``, cloud-filtered by the API and
        checked again here; :class:`AoiOutsideDataError` when the collection has items in the
        period elsewhere only."""
        from rasterio.warp import transform_bounds

        bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
        when = f"{period.start.isoformat()}T00:00:00Z/{period.end.isoformat()}T23:59:59Z"
        where = context(self.region, period)
        items = self._search(collection, bbox, when, max_cloud_pct=max_cloud_pct, where=where)
        if not items and self._search(collection, None, when, max_items=1, where=where):
            raise AoiOutsideDataError(
                f"{context(self.region, period)}: the region's bounding box "
                f"{tuple(round(b, 4) for b in bbox)} (lon/lat) "
                f"overlaps no {collection} item at {self.url}, although the collection has items in the period. "
                f"Check regions.{self.region}.aoi and regions.{self.region}.crs."
            )
        log.info("%s: %d %s items at %s", context(self.region, period), len(items), collection, self.url)
        kept = [i for i in items if self._cloud_ok(i, max_cloud_pct)]
        if len(kept) < len(items):
            # the API ignored the filter (or has no filter extension): the guard caught it
            log.info(
                "%s: %d items above %.0f %% cloud cover dropped client-side",
                context(self.region, period),
                len(items) - len(kept),
                max_cloud_pct,
            )
        return kept, tuple(bbox)

    @staticmethod
    def _cloud_ok(item: Any, max_cloud_pct: float | None) -> bool:
        cc = item.properties.get("eo:cloud_cover")
        return max_cloud_pct is None or cc is None or float(cc) <= max_cloud_pct

    def search(self, period: Period, grid: RegionGrid) -> list[Acquisition]:
        kept, _ = self._items_in(self.collection, period, grid, self.max_scene_cloud_pct)
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
                    f"{', '.join(a for b in missing for a in tried_keys(b, self.assets_override))}); "
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
        self,
        item: Any,
        assets: Sequence[str],
        tile: CacheTile,
        *,
        dtype: str,
        nodata: Any,
        resampling: str | Mapping[str, str],
    ) -> np.ndarray:
        """``(len(assets), h, w)`` pixels of ``item`` on ``tile``: one odc-stac load for all
        assets, whatever their resolutions (odc-stac reprojects each band on its own; the
        ``resampling`` dict form ``{asset: method, "*": default}`` sets it per band)."""
        return self._load_many([item], assets, tile, dtype=dtype, nodata=nodata, resampling=resampling)[0]

    def _load_many(
        self,
        items: Sequence[Any],
        assets: Sequence[str],
        tile: CacheTile,
        *,
        dtype: str,
        nodata: Any,
        resampling: str | Mapping[str, str],
    ) -> np.ndarray:
        """``(len(items), len(assets), h, w)``: items of distinct times in one odc-stac load
        (a year of monthly items is one load, not twelve)."""
        import odc.stac
        from odc.geo.geobox import GeoBox

        g = tile.grid
        geobox = GeoBox(g.shape, g.transform, g.crs)
        stamps = [i.datetime.timestamp() if i.datetime else None for i in items]
        if len(items) > 1 and (None in stamps or len(set(stamps)) < len(stamps)):
            one = functools.partial(self._load_many, assets=assets, tile=tile, dtype=dtype, nodata=nodata)
            return np.stack([one([i], resampling=resampling)[0] for i in items])
        order = sorted(range(len(items)), key=lambda k: stamps[k] or 0.0)

        def load() -> np.ndarray:
            import rasterio

            # GDAL's own retries off, curl timeouts within the budget (gdal_http_options)
            with rasterio.Env(**gdal_http_options(self.policy)):
                return _read()

        def _read() -> np.ndarray:
            ds = odc.stac.load(
                [items[k] for k in order],
                bands=list(assets),
                geobox=geobox,
                resampling=dict(resampling) if isinstance(resampling, Mapping) else resampling,
                dtype=dtype,
                nodata=nodata,
                groupby="id",
                patch_url=self._patch(items[0].collection_id or self.collection),
                fail_on_error=True,
            )
            if ds.sizes["time"] != len(items):
                raise ValueError(f"odc-stac returned {ds.sizes['time']} times for {len(items)} items")
            stacked = np.stack([ds[a].values for a in assets], axis=1)  # (time, asset, y, x) in time order
            out = np.empty_like(stacked)
            for pos, k in enumerate(order):
                out[k] = stacked[pos]
            return out

        first = items[0]
        day = first.datetime.date().isoformat() if first.datetime else None
        collection = first.collection_id or self.collection
        what = (
            f"{context(self.region, day)}: reading assets {', '.join(assets)} of STAC item {first.id}"
            + (f" and {len(items) - 1} more" if len(items) > 1 else "")
            + f" ({collection}) for cache tile {tile.id}"
        )
        href = next((first.assets[a].href for a in assets if a in first.assets), "")
        return retry_call(load, self.policy, what=what, host=host_of(href), retryable=stac_retryable)

    def _offset_of(self, item: Any, meta: Mapping[str, Any], dn: np.ndarray) -> int:
        """The BOA offset to add to this item's DNs, correcting Earth Search's contradicting flag:
        baseline >= 04.00 with ``earthsearch:boa_offset_applied: false`` whose pixels are already
        shifted (:func:`offset_already_applied`). ``raster:bands`` cannot decide it: those items
        carry ``offset: -0.1`` whether or not it was applied (Element84/earth-search issue 66)."""
        offset = int(meta["boa_add_offset"])
        flag = item.properties.get("earthsearch:boa_offset_applied")
        if offset != 0 and flag is not None and not flag and offset_already_applied(dn):
            log.warning(
                "%s: STAC item %s of %s says earthsearch:boa_offset_applied=false (baseline %s), but its digital "
                "numbers are already shifted (more than 1 %% of valid DNs below 1000): BOA offset not applied again "
                "(Element84/earth-search issues 66, 71; prefer collection %s)",
                context(self.region),
                item.id,
                item.collection_id or self.collection,
                meta.get("processing_baseline"),
                EARTH_SEARCH_S2,
            )
            return 0
        return offset

    def fetch_tile(self, acq: Acquisition, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        bands = list(self.bands)
        out: np.ndarray | None = None
        used = []
        for item, meta in zip(acq.items, acq.meta, strict=True):
            keys = asset_keys(item, [*bands, "SCL"], self.assets_override)
            names = [keys[b] for b in [*bands, "SCL"]]
            # reflectance and SCL in one load: SCL nearest, reflectance as configured
            raw = self._load(
                item, names, tile, dtype="uint16", nodata=0, resampling={keys["SCL"]: "nearest", "*": self.resampling}
            )
            refl, scl = raw[: len(bands)], raw[len(bands) :]
            offset = self._offset_of(item, meta, refl)
            data = np.concatenate([harmonise_dn(refl, offset), scl.astype(np.uint16)])
            if out is None:
                out = data
            else:
                empty = (out[: len(bands)] == 0).all(axis=0)
                out = np.where(empty[None], data, out)
            used.append(
                {**meta, "boa_add_offset": offset, "assets": {b: item.assets[keys[b]].href for b in [*bands, "SCL"]}}
            )
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
        bounds = _tile_lonlat(tile)
        where = (
            f"{context(self.region)}: DEM collection {self.dem_collection} at {self.url}, cache tile {tile.id} "
            f"(lon/lat {tuple(round(b, 5) for b in bounds)})"
        )
        items = self._search(self.dem_collection, bounds, None, where=f"{context(self.region, 'static')}: DEM")
        if not items:
            # nasadem is on the Planetary Computer only; Copernicus DEM has no tiles over open ocean
            raise AoiOutsideDataError(
                f"{where}: the search found no items, so no DEM tile was cached. Check "
                f"regions.{self.region}.stac.dem_collection (nasadem exists on the Planetary Computer only) "
                f"and whether the region lies over the sea."
            )
        out = np.full(tile.grid.shape, np.nan, dtype=np.float32)
        for item in items:
            if asset not in item.assets:
                raise MissingBandError(
                    f"{context(self.region)}: DEM item {item.id} of {self.dem_collection} has no {asset!r} asset; "
                    f"its assets: {', '.join(item.assets)}"
                )
            z = self._load(item, [asset], tile, dtype="float32", nodata=np.nan, resampling=self.dem_resampling)[0]
            out = np.where(np.isnan(out), z, out)
        if np.isnan(out).all():
            raise AoiOutsideDataError(
                f"{where}: items {', '.join(i.id for i in items)} hold no valid elevation over the tile "
                "(all no-data), so no DEM tile was cached"
            )
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

    # -- products of the long record: Landsat, MODIS, Sentinel-2, climate, land cover ----
    def _collection(self, product: str) -> str:
        return self.collections.get(product) or PRODUCT_COLLECTIONS[product]

    def _cache_jobs(
        self,
        grid: RegionGrid,
        product: str,
        units: Sequence[tuple[str, list[tuple[float, float, float, float]], Any]],
        fetch: Any,
    ) -> dict[str, list[str]]:
        """Fetch every (tile, unit) the cache lacks; ``units`` are ``(date key, lon/lat
        footprints, payload)`` and ``fetch(payload, tile, path)`` writes one tile. Returns
        date key -> cached files (tiles the unit's footprints miss are skipped)."""
        import functools

        from karstflow.sources.cache import CacheKey, tiles_for
        from karstflow.sources.fetch import _overlaps, _tile_lonlat

        tiles = tiles_for(grid, self.tile_px)
        tile_ll = {t.id: _tile_lonlat(t) for t in tiles}
        jobs = []
        per: dict[str, list[str]] = {}
        for date_key, footprints, payload in units:
            for tile in tiles:
                if footprints and not any(_overlaps(fp, tile_ll[tile.id]) for fp in footprints):
                    continue
                key = CacheKey(self.name, product, tile.id, date_key)
                jobs.append((key, functools.partial(fetch, payload, tile)))
                per.setdefault(date_key, []).append(str(self.cache.path(key)))
        self._run(jobs)
        return per

    def _keys_or_fail(
        self, item: Any, layers: Sequence[str], aliases: Mapping[str, Sequence[str]], overrides: Mapping[str, str], what
    ) -> dict[str, str]:
        keys = asset_keys(item, layers, overrides, aliases)
        missing = [b for b, k in keys.items() if not k]
        if missing:
            tried = "; ".join(f"{b}: {', '.join(tried_keys(b, overrides, aliases))}" for b in missing)
            raise MissingBandError(
                f"{what}: STAC item {item.id} of {item.collection_id} has no asset for {', '.join(missing)} "
                f"(tried {tried}); its assets: {', '.join(item.assets)}. Map them in "
                f"regions.{self.region}.stac.assets."
            )
        return keys

    def vegetation_scenes(
        self, sensor: str, period: Period, grid: RegionGrid, *, max_cloud_pct: float | None = None
    ) -> list[Scene]:
        """Scenes of one sensor family (``karstflow.sensors.LAYERS``) in ``period`` over ``grid``.

        Layers carry the canonical names, stored as the provider stores them (encoding
        ``as-is``: Landsat uint16 DN and ``qa_pixel`` bits, MODIS int16 VI x 10000 and
        ``pixel_reliability``; Sentinel-2 DN with the BOA offset removed and ``SCL``), on the
        cache tiles of the region CRS and resolution. QA layers are resampled nearest.
        Scenes whose items all have them also carry the surface reflectance layers of
        :func:`optional_layers` (Landsat ``swir16``, ``swir22`` uint16 DN; MODIS
        ``blue_reflectance`` ... ``mir_reflectance`` int16 x 10000; Sentinel-2 ``B11``,
        ``B12`` when every item of the period has them), which the vegetation
        stage composites for the desertification unmixing; items without them still give
        scenes, without reflectance. ``meta``: ``sensor``, ``platform`` (``landsat-5`` ...
        from the items' ``platform``), ``source_items``, ``cloud_cover_pct``.
        """
        from karstflow import sensors

        if sensor not in sensors.LAYERS:
            raise ValueError(f"sensor must be one of {sorted(sensors.LAYERS)}, found {sensor!r}")
        layers = list(sensors.LAYERS[sensor])
        cloud = self.max_scene_cloud_pct if max_cloud_pct is None else float(max_cloud_pct)
        if sensor == "sentinel-2":
            s2_collection = self._collection("sentinel-2")
            bands = [b for b in layers if b != "SCL"]
            extra = list(optional_layers(sensor))  # B11, B12: when every item of the period has them
            if extra:
                items, _ = self._items_in(s2_collection, period, grid, cloud)
                have = [asset_keys(i, extra, self.assets_override) for i in items]
                if not items or not all(all(k.values()) for k in have):
                    extra = []
            s2 = StacSource(
                self.region,
                self.cache.root,
                url=self.url,
                collection=s2_collection,
                assets=self.assets_override,
                resampling=self.resampling,
                timeout_s=self.timeout_s,
                bands=bands + extra,
                tile_px=self.tile_px,
                max_concurrent=self.max_concurrent,
                policy=self.policy,
                max_scene_cloud_pct=cloud,
            )
            if extra:  # tiles with SWIR are a product of their own (see the Landsat/MODIS case)
                s2.product = f"{s2_collection}-sr--{_slug(self.url)}"
            s2.signer, s2._client = self.signer, self._client
            scenes = s2.scenes(period, grid)
            self.fetched, self.reused = self.fetched + s2.fetched, self.reused + s2.reused
            return [
                Scene(
                    s.id,
                    s.date,
                    s.layers,
                    {**s.meta, "sensor": "sentinel-2", "platform": "sentinel-2"},
                    encoding="as-is",
                )
                for s in scenes
            ]
        collection = self._collection(sensor)
        items, _ = self._items_in(collection, period, grid, cloud)
        overrides = self.product_assets.get(sensor, {})
        extra = list(optional_layers(sensor))
        what = context(self.region, period)
        records = []
        lacking: dict[str, list[str]] = {}
        for item in items:
            aliases = sensor_aliases(sensor, item)
            keys = self._keys_or_fail(item, layers, aliases, overrides, what)
            # reflectance layers beyond the required ones: taken when the item has them; a
            # layer mapped in stac.assets must be there
            more = asset_keys(item, extra, overrides, aliases)
            forced = [b for b in extra if not more[b] and b in overrides]
            if forced:
                self._keys_or_fail(item, forced, aliases, overrides, what)
            keys.update({b: k for b, k in more.items() if k})
            for b in extra:
                if not more[b]:
                    lacking.setdefault(b, []).append(item.id)
            day = solar_day(item) if sensor == "landsat" else _start_day(item)
            if not period.contains(day):
                continue
            platform = str(item.properties.get("platform") or "").lower().replace("_", "-")
            meta = {"id": item.id, "platform": platform, "cloud_cover_pct": item.properties.get("eo:cloud_cover")}
            records.append((day, (item, keys), meta, tuple(item.bbox) if item.bbox else None))
        if lacking:
            log.info(
                "%s: %s items without reflectance layer(s) %s (e.g. %s): their scenes carry no surface reflectance "
                "for the desertification unmixing",
                what,
                collection,
                sorted(lacking),
                next(iter(lacking.values()))[0],
            )
        acqs = group_by_date(records)
        if not acqs:
            raise NoScenesError(
                f"{what}: no {collection} items at {self.url} between {period.start} and {period.end} over the "
                f"region (max scene cloud cover {cloud:g} %)"
            )
        dtype, nodata = SENSOR_STORAGE[sensor]

        def layers_of(acq: Acquisition) -> list[str]:
            """The required layers, then the reflectance layers every item of ``acq`` has."""
            return layers + [b for b in extra if all(b in keys for _, keys in acq.items)]

        def fetch(acq: Acquisition, tile: CacheTile, path: Path) -> Mapping[str, Any]:
            names_of = layers_of(acq)
            out: np.ndarray | None = None
            for item, keys in acq.items:
                names = [keys[b] for b in names_of]
                resampling = {keys[b]: "nearest" for b in names_of if b in QA_LAYERS}
                resampling["*"] = self.resampling
                data = self._load(item, names, tile, dtype=dtype, nodata=nodata, resampling=resampling)
                out = data if out is None else np.where((out[0] == nodata)[None], data, out)
            assert out is not None
            write_tile(path, out, tile, names_of, nodata=nodata)
            return {
                "url": self.url,
                "collection": collection,
                "sensor": sensor,
                "items": [
                    {**m, "assets": {b: it.assets[k[b]].href for b in names_of}}
                    for (it, k), m in zip(acq.items, acq.meta, strict=True)
                ],
                "request": {"tile": tile.id, "crs": tile.crs, "resolution": tile.resolution, "layers": names_of},
            }

        # tiles with the reflectance layers are a product of their own, so a tile cached
        # without them (an older run, or another catalogue) is never read as having them
        per: dict[str, list[str]] = {}
        by_set: dict[tuple[str, ...], list[Acquisition]] = {}
        for acq in acqs:
            by_set.setdefault(tuple(layers_of(acq)[len(layers) :]), []).append(acq)
        for more_layers, group in by_set.items():
            tag = "-sr" if more_layers else ""
            product = f"{collection}{tag}--{_slug(self.url)}"
            per.update(self._cache_jobs(grid, product, [(a.id, a.footprints, a) for a in group], fetch))
        scenes = []
        for acq in acqs:
            files = per.get(acq.id, [])
            if not files:
                continue
            platforms = sorted({m["platform"] for m in acq.meta if m["platform"]})
            ccs = [float(m["cloud_cover_pct"]) for m in acq.meta if m.get("cloud_cover_pct") is not None]
            meta = {
                "sensor": sensor,
                "platform": ";".join(platforms),
                "source_items": ";".join(m["id"] for m in acq.meta),
                "cloud_cover_pct": round(sum(ccs) / len(ccs), 3) if ccs else "",
                "collection": collection,
            }
            lyr = {n: tuple(Layer(f, i) for f in files) for i, n in enumerate(layers_of(acq), start=1)}
            scenes.append(Scene(f"{sensor}-{acq.id}", acq.date, lyr, meta, encoding="as-is"))
        return scenes

    def landcover(self, year: int, grid: RegionGrid, *, collection: str | None = None) -> list[str]:
        """Cached tiles (one band ``landcover``, provider class codes, nearest) of the land-cover
        items of ``year`` (ESA WorldCover: 2020 v100, 2021 v200, asset ``map``)."""
        collection = collection or self._collection("landcover")
        period = Period(str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))
        items, _ = self._items_in(collection, period, grid, None)
        items = [i for i in items if _start_day(i).year == year]
        what = context(self.region, period)
        if not items:
            raise NoScenesError(f"{what}: no {collection} items of {year} at {self.url} over the region")
        overrides = self.product_assets.get("landcover", {})
        aliases = {"landcover": (LANDCOVER_ASSET, "data", "classification")}
        keyed = [(i, self._keys_or_fail(i, ["landcover"], aliases, overrides, what)["landcover"]) for i in items]
        product = f"{collection}--{_slug(self.url)}"

        def fetch(payload: Any, tile: CacheTile, path: Path) -> Mapping[str, Any]:
            out = np.zeros(tile.grid.shape, np.uint8)
            for item, key in payload:
                z = self._load(item, [key], tile, dtype="uint8", nodata=0, resampling="nearest")[0]
                out = np.where(out == 0, z, out)
            write_tile(path, out, tile, ["landcover"], nodata=0)
            return {
                "url": self.url,
                "collection": collection,
                "items": [{"id": i.id, "href": i.assets[k].href} for i, k in payload],
                "request": {"tile": tile.id, "crs": tile.crs, "resolution": tile.resolution, "resampling": "nearest"},
            }

        fps = [tuple(i.bbox) for i in items if i.bbox]
        per = self._cache_jobs(grid, product, [(str(year), fps, keyed)], fetch)
        return per.get(str(year), [])

    def climate_monthly(
        self, year: int, grid: RegionGrid, *, collection: str | None = None, variables: Sequence[str] | None = None
    ) -> list[str]:
        """Cached tiles of one year of monthly climate: bands ``<variable>_<YYYY-MM>``, physical
        values (``raster:bands`` scale/offset applied), float32 with NaN no-data and a GDAL tag
        ``units`` per band (from ``raster:bands[0].unit``).

        The collection holds one COG item per month (``datetime`` the month's first day, one
        asset per variable keyed by the provider's name, e.g. TerraClimate ``tmmx``, ``pr``);
        ``variables`` picks them (default: every data asset with ``raster:bands``). The
        Planetary Computer's ``terraclimate`` is a Zarr collection asset instead, read by
        :meth:`_climate_zarr`.
        """
        collection = collection or self._collection("climate")
        period = Period(str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))
        what = context(self.region, period)
        coll = retry_call(
            lambda: self.client().get_collection(collection),
            self.policy,
            what=f"{what}: STAC collection {collection} at {self.url}",
            host=self.host,
            retryable=stac_retryable,
        )
        zarr_assets = [k for k, a in (coll.assets or {}).items() if "zarr" in str(a.media_type or "").lower()]
        if zarr_assets:
            return self._climate_zarr(coll, zarr_assets[0], year, grid, variables)
        items, _ = self._items_in(collection, period, grid, None)
        months: dict[int, Any] = {}
        for item in sorted(items, key=lambda i: i.id):
            day = _start_day(item)
            if day.year == year:
                months.setdefault(day.month, item)
        if not months:
            raise NoScenesError(f"{what}: no monthly {collection} items of {year} at {self.url} over the region")
        first = months[min(months)]
        names = list(variables) if variables else [k for k, a in first.assets.items() if _raster_band(a) is not None]
        plan = []  # (band name, item, asset key, scale, offset, unit)
        for month in sorted(months):
            item = months[month]
            aliases = {v: (v,) for v in names}
            keys = self._keys_or_fail(item, names, aliases, self.product_assets.get("climate", {}), what)
            for v in names:
                rb = _raster_band(item.assets[keys[v]]) or {}
                if not rb.get("unit"):
                    # the climate stage converts from the declared units; a guess would be silent
                    raise MissingBandError(
                        f"{what}: STAC item {item.id} of {collection}, asset {keys[v]!r}: raster:bands[0].unit is "
                        f"missing, so the units of {v} are unknown (expected e.g. 'degC', 'mm')"
                    )
                plan.append(
                    (
                        f"{v}_{year}-{month:02d}",
                        item,
                        keys[v],
                        float(rb.get("scale", 1.0)),
                        float(rb.get("offset", 0.0)),
                        str(rb.get("unit", "")),
                    )
                )
        product = f"{collection}-monthly--{_slug(self.url)}"

        def fetch(payload: Any, tile: CacheTile, path: Path) -> Mapping[str, Any]:
            import rasterio

            bands = []
            by_item: dict[str, list[tuple[int, str]]] = {}
            for n, (_name, item, key, *_r) in enumerate(payload):
                by_item.setdefault(item.id, []).append((n, key))
            loaded: dict[int, np.ndarray] = {}
            keys = {tuple(k for _, k in todo) for todo in by_item.values()}
            ids = list(by_item)
            items_ = [next(p[1] for p in payload if p[1].id == i) for i in ids]
            raw_all: Sequence[np.ndarray] | np.ndarray
            if len(keys) == 1:  # the same assets in every month: the whole year in one load
                raw_all = self._load_many(
                    items_, list(next(iter(keys))), tile, dtype="float32", nodata=np.nan, resampling="bilinear"
                )
            else:
                raw_all = [
                    self._load(i, [k for _, k in by_item[i.id]], tile, dtype="float32", nodata=np.nan,
                               resampling="bilinear")
                    for i in items_
                ]  # fmt: skip
            for item_id, raw in zip(ids, raw_all, strict=True):
                for (n, _k), arr in zip(by_item[item_id], raw, strict=True):
                    loaded[n] = arr
            for n, (_name, _item, _key, scale, offset, _unit) in enumerate(payload):
                bands.append((loaded[n] * np.float32(scale) + np.float32(offset)).astype(np.float32))
            write_tile(path, np.stack(bands), tile, [p[0] for p in payload], nodata=float("nan"))
            with rasterio.open(path, "r+") as dst:
                for n, p in enumerate(payload, start=1):
                    if p[5]:
                        dst.update_tags(n, units=p[5])
            return {
                "url": self.url,
                "collection": collection,
                "items": sorted({p[1].id for p in payload}),
                "bands": [{"name": p[0], "asset": p[2], "scale": p[3], "offset": p[4], "units": p[5]} for p in payload],
                "request": {"tile": tile.id, "crs": tile.crs, "resolution": tile.resolution, "resampling": "bilinear"},
            }

        per = self._cache_jobs(grid, product, [(str(year), [], plan)], fetch)
        return per.get(str(year), [])

    def _climate_zarr(
        self, coll: Any, asset_key: str, year: int, grid: RegionGrid, variables: Sequence[str] | None
    ) -> list[str]:
        """The Planetary Computer's ``terraclimate``: one Zarr store (collection asset) read with
        xarray + fsspec (``adlfs`` for ``abfs://``, ``zarr``), cut to the year and the tile,
        reprojected bilinearly onto the cache tiles. Not exercised against the live service."""
        import importlib.util

        missing = [m for m in ("zarr", "fsspec", "adlfs") if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(
                f"{context(self.region)}: collection {coll.id} at {self.url} is a Zarr store (collection asset "
                f"{asset_key!r}), which needs the Python packages {', '.join(missing)}; they are not installed. "
                f"Install them, or configure regions.{self.region}.stac.collections.climate as a collection of "
                "monthly COG items."
            )
        register_rio()
        import xarray as xr

        asset = coll.assets[asset_key]
        opts = dict(asset.extra_fields.get("xarray:open_kwargs") or {})
        storage = dict(asset.extra_fields.get("xarray:storage_options") or {})
        if self.signer is not None and "account_name" in storage:
            storage["credential"] = self.signer.token(coll.id)
        ds = xr.open_zarr(asset.href, storage_options=storage, **{k: v for k, v in opts.items() if k != "engine"})
        ds = ds.sel(time=str(year))
        # the Zarr store names variables as TerraClimate's NetCDF files do; the climate stage
        # reads the Earth Engine names (tmmx, tmmn, pr, vs)
        ds = ds.rename({k: v for k, v in TERRACLIMATE_ZARR_NAMES.items() if k in ds.data_vars})
        names = list(variables) if variables else [v for v in ds.data_vars if ds[v].ndim == 3]
        product = f"{coll.id}-monthly--{_slug(self.url)}"

        def fetch(payload: Any, tile: CacheTile, path: Path) -> Mapping[str, Any]:
            import rasterio
            from rasterio.warp import transform_bounds

            w, s, e, n = transform_bounds(tile.crs, "EPSG:4326", *tile.bounds, densify_pts=21)
            pad = 0.1
            bands, labels, units = [], [], []
            for v in names:
                da = ds[v]
                da = da.sel(lon=slice(w - pad, e + pad), lat=slice(n + pad, s - pad))
                da = da.rio.write_crs("EPSG:4326").rio.set_spatial_dims("lon", "lat")
                g = tile.grid
                rep = da.rio.reproject(g.crs, shape=g.shape, transform=g.transform, resampling=1, nodata=np.nan)
                for t in range(rep.sizes["time"]):
                    bands.append(rep.isel(time=t).values.astype(np.float32))
                    stamp = np.datetime_as_string(rep["time"].values[t], unit="M")
                    labels.append(f"{v}_{stamp}")
                    units.append(str(da.attrs.get("units", "")))
            write_tile(path, np.stack(bands), tile, labels, nodata=float("nan"))
            with rasterio.open(path, "r+") as dst:
                for i, u in enumerate(units, start=1):
                    if u:
                        dst.update_tags(i, units=u)
            return {"url": self.url, "collection": coll.id, "zarr": asset.href, "bands": labels}

        per = self._cache_jobs(grid, product, [(str(year), [], None)], fetch)
        return per.get(str(year), [])


def _start_day(item: Any) -> dt.date:
    """The item's date (``datetime`` or ``start_datetime``), UTC: composites and monthly
    products are dated by their period's first day."""
    t = item.datetime or dt.datetime.fromisoformat(str(item.properties.get("start_datetime")).replace("Z", "+00:00"))
    return t.date()


def _raster_band(asset: Any) -> dict[str, Any] | None:
    bands = asset.extra_fields.get("raster:bands")
    return dict(bands[0]) if bands else None
