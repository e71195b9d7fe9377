"""Google Earth Engine (earthengine-api): Sentinel-2 SR with Cloud Score+, and a DEM.

* Imagery: ``COPERNICUS/S2_SR_HARMONIZED`` (already harmonised across processing
  baselines by Google, so every image's BOA offset is 0), filtered to the region and
  period and to ``CLOUDY_PIXEL_PERCENTAGE <= imagery.max_scene_cloud_pct``. Clouds: Cloud
  Score+ (``GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED``, band ``cs_cdf``, stored x10000 as
  ``CS_CDF``; clear where ``cs_cdf >= earthengine.cs_cdf_threshold``); where an image has
  no Cloud Score+ counterpart, ``MSK_CLASSI_OPAQUE``/``MSK_CLASSI_CIRRUS`` when the image
  has them, else ``QA60`` bits 10 and 11 (:func:`mask_layers`).
  Fallback by acquisition date, because the bands exist but are masked (EE catalog,
  COPERNICUS_S2_SR_HARMONIZED): ``QA60`` is masked from 2022-01-25 (processing baseline
  04.00) to 2024-02-28, ``MSK_CLASSI_*`` are masked before 2024-02-28; in between the
  fallback is ``SCL``.
* DEM (``earthengine.dem``): ``aster-gdem`` (community catalogue asset
  ``projects/sat-io/open-datasets/ASTER/GDEM``, an ``ee.Image``, band ``b1``; the default,
  as in the study), ``nasadem`` (``NASA/NASADEM_HGT/001``, an ``ee.Image``) or
  ``copernicus-glo30`` (``COPERNICUS/DEM/GLO30_2024_1``, an ImageCollection of tiles,
  band ``DEM``; it supersedes ``COPERNICUS/DEM/GLO30``): each tile is resampled before
  the mosaic, since a mosaic has no native projection for ``resample()`` to act in.
* Products computed on Earth Engine's side (:mod:`karstflow.sources.ee_products`):
  vegetation composites, monthly climate, SoilGrids, land cover; one ``computePixels``
  per cache tile and period (:meth:`EarthEngineSource.vegetation_composite` ...).
* Masked pixels: ``computePixels`` hands masked pixels over as 0, so float images are
  unmasked to :data:`MASK_SENTINEL` (Xee's convention, ``int32`` max) and the sentinel is
  turned into NaN locally.
* Pixels: ``ee.data.computePixels`` on each cache tile (region CRS and resolution; a CRS
  without an EPSG code goes as ``crsWkt``),
  split by :func:`plan_requests` into requests under the 48 MB and 32,768 px limits
  (a mask byte per band counted), tiles fetched concurrently, each request retried with
  exponential backoff on HTTP 429 and 5xx (:func:`~karstflow.sources.fetch.retry_call`).
* Credentials (non-interactive): ``GOOGLE_APPLICATION_CREDENTIALS`` names a
  service-account key or an application-default credentials file
  (``gcloud auth application-default login``); the Cloud project comes from
  ``regions.<id>.earthengine.project`` or ``EARTHENGINE_PROJECT``. Neither the key nor
  its path is logged. Authorized-user credentials are used with the scopes they were
  granted (asking for others makes the token refresh fail with ``invalid_scope``).

Xee or our own transfer? Ours. Xee (``xee`` 0.1.2) opens an ``ee.ImageCollection`` as a
lazy xarray dataset with a time axis and chunks it by its own rules; the tile cache needs
every request aligned to the region's tile lattice (:func:`~karstflow.sources.cache.tiles_for`),
one cached GeoTIFF per (tile, period) written atomically with a manifest entry (expression
hash, request grid, bytes pulled), and composites that are single images, not collections.
What Xee gets right is adopted here: ``unmask`` to a sentinel and NaN locally, requests
under the 48 MB limit, retries of transient errors. No dependency is added.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.sources import S2_BANDS, CredentialsError, ImageryError, Period, context, ee_products
from karstflow.sources.cache import CacheKey, CacheTile, tiles_for
from karstflow.sources.fetch import (
    Acquisition,
    BackoffPolicy,
    RemoteSource,
    budget_session,
    group_by_date,
    host_of,
    retry_call,
    write_tile,
)

log = logging.getLogger(__name__)

S2_COLLECTION = "COPERNICUS/S2_SR_HARMONIZED"
CS_PLUS_COLLECTION = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
#: DEM choice -> (asset, band, is an ImageCollection to mosaic); asset types as in the EE
#: catalog (NASADEM, GLO30_2024_1) and the community catalogue (ASTER GDEM v3, ee.Image).
DEMS: dict[str, tuple[str, str, bool]] = {
    "aster-gdem": ("projects/sat-io/open-datasets/ASTER/GDEM", "b1", False),
    "nasadem": ("NASA/NASADEM_HGT/001", "elevation", False),
    "copernicus-glo30": ("COPERNICUS/DEM/GLO30_2024_1", "DEM", True),
}
#: Value masked pixels are unmasked to before computePixels (Xee's default mask value), and
#: turned into NaN locally: computePixels itself returns masked pixels as 0.
MASK_SENTINEL = float(np.iinfo(np.int32).max)
#: Cloud Score+ cs_cdf is stored as floor(cs_cdf x 10000) in uint16, at least 1: 0 means "no
#: score" (no Cloud Score+ image, or masked there), so a real score below 0.0001 must not
#: become 0 (it would then fall through to the fallback masks and usually count as clear).
CS_CDF_SCALE = 10000
CS_CDF_MIN_CODE = 1
#: Dates of the S2 cloud-band changes (EE catalog, COPERNICUS_S2_SR_HARMONIZED band table):
#: QA60 masked from baseline 04.00 (2022-01-25) until 2024-02-28; MSK_CLASSI_* masked before.
QA60_MASKED_FROM = dt.date(2022, 1, 25)
MSK_CLASSI_FROM = dt.date(2024, 2, 28)
#: computePixels limits (Earth Engine REST API): request payload and grid edge.
MAX_REQUEST_BYTES = 48 * 1024 * 1024
MAX_GRID_PX = 32768
#: Environment variables read for authentication and the project.
ENV_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
ENV_PROJECT = "EARTHENGINE_PROJECT"
#: Default base URL of the Earth Engine REST API (``regions.<id>.earthengine.url``).
DEFAULT_URL = "https://earthengine.googleapis.com"
EE_SCOPES = (
    "https://www.googleapis.com/auth/earthengine.readonly",
    "https://www.googleapis.com/auth/cloud-platform",
)


# --------------------------------------------------------------------------------------
# request planning
# --------------------------------------------------------------------------------------


def bytes_per_pixel(band_dtypes: Sequence[str | np.dtype]) -> int:
    """Uncompressed bytes of one pixel of all bands, plus one mask byte per band."""
    return int(sum(np.dtype(d).itemsize + 1 for d in band_dtypes))


@dataclass(frozen=True)
class PixelRequest:
    """One ``computePixels`` request: a window of a tile grid, in whole pixels."""

    row_off: int
    col_off: int
    height: int
    width: int
    crs: str
    x0: float  # west edge of the window
    y0: float  # north edge of the window
    resolution: float

    def grid(self) -> dict[str, Any]:
        """The ``grid`` parameter (PixelGrid) of the request."""
        return {
            "dimensions": {"width": self.width, "height": self.height},
            "affineTransform": {
                "scaleX": self.resolution,
                "shearX": 0.0,
                "translateX": self.x0,
                "shearY": 0.0,
                "scaleY": -self.resolution,
                "translateY": self.y0,
            },
            **crs_field(self.crs),
        }

    def nbytes(self, band_dtypes: Sequence[str | np.dtype]) -> int:
        return self.width * self.height * bytes_per_pixel(band_dtypes)


def crs_field(crs: str) -> dict[str, str]:
    """The PixelGrid CRS: ``crsCode`` for an EPSG CRS, else ``crsWkt`` (OGC WKT 1)."""
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    epsg = c.to_epsg()
    if epsg is not None:
        return {"crsCode": f"EPSG:{epsg}"}
    return {"crsWkt": c.to_wkt("WKT1_GDAL")}


def _parts(n: int, k: int) -> list[tuple[int, int]]:
    """Split ``n`` into ``k`` contiguous (offset, size) parts differing by at most 1."""
    base, extra = divmod(n, k)
    out, off = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        out.append((off, size))
        off += size
    return out


def plan_requests(
    grid: RegionGrid,
    band_dtypes: Sequence[str | np.dtype],
    *,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_px: int = MAX_GRID_PX,
    safety: float = 0.95,
) -> list[PixelRequest]:
    """Split ``grid`` into whole-pixel windows each under the byte and edge limits.

    Windows tile the grid exactly (no gaps, no overlap); their origins are the grid's
    origin plus whole pixels, so every request is aligned to the grid. The byte budget
    is ``safety * max_bytes`` for ``width * height * bytes_per_pixel(band_dtypes)``.
    """
    bpp = bytes_per_pixel(band_dtypes)
    budget = int(max_bytes * safety)
    if bpp > budget:
        raise ValueError(f"one pixel of {len(band_dtypes)} bands ({bpp} bytes) exceeds the request budget {budget}")
    max_pixels = budget // bpp
    h, w = grid.shape
    nx = math.ceil(w / min(w, max_px))
    while True:
        piece_w = math.ceil(w / nx)
        rows = min(max_px, max_pixels // piece_w)
        if rows >= 1:
            break
        nx += 1
    ny = math.ceil(h / rows)
    res = grid.resolution
    xmin, ymax = grid.bounds[0], grid.bounds[3]
    out = []
    for r0, rh in _parts(h, ny):
        for c0, cw in _parts(w, nx):
            out.append(PixelRequest(r0, c0, rh, cw, grid.crs, xmin + c0 * res, ymax - r0 * res, res))
    return out


# --------------------------------------------------------------------------------------
# masks, credentials
# --------------------------------------------------------------------------------------


def mask_layers(band_names: Sequence[str], has_cloud_score: bool, day: dt.date | None = None) -> list[str]:
    """Cloud layers to fetch for an image: Cloud Score+ first, then the fallback its date has.

    The bands are listed on every image but masked outside their dates (EE catalog):
    ``QA60`` before 2022-01-25 (and again from 2024-02-28, rebuilt from MSK_CLASSI),
    ``MSK_CLASSI_OPAQUE``/``MSK_CLASSI_CIRRUS`` from 2024-02-28; between the two, neither
    holds anything, and ``SCL`` decides. ``day`` None (unknown date): by band presence,
    MSK_CLASSI first.
    """
    names = set(band_names)
    layers = ["CS_CDF"] if has_cloud_score else []
    msk = ["MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS"]
    msk_ok = "MSK_CLASSI_OPAQUE" in names and (day is None or day >= MSK_CLASSI_FROM)
    qa_ok = "QA60" in names and (day is None or day < QA60_MASKED_FROM or day >= MSK_CLASSI_FROM)
    if msk_ok:
        layers += [m for m in msk if m in names]
    elif qa_ok:
        layers.append("QA60")
    elif "SCL" in names:
        layers.append("SCL")
    return layers


def cs_cdf_band(ee: Any, asset_id: str) -> Any:
    """Cloud Score+ ``cs_cdf`` of ``asset_id`` as ``max(floor(cs_cdf x 10000), 1)``, uint16."""
    return (
        ee.Image(asset_id)
        .select("cs_cdf")
        .multiply(CS_CDF_SCALE)
        .floor()
        .max(CS_CDF_MIN_CODE)
        .toUint16()
        .rename("CS_CDF")
    )


def encode_cs_cdf(cs_cdf: np.ndarray) -> np.ndarray:
    """The same encoding locally (NaN = no score -> 0): what :func:`cs_cdf_band` computes."""
    cs = np.asarray(cs_cdf, dtype=np.float64)
    code = np.maximum(np.floor(np.nan_to_num(cs, nan=0.0) * CS_CDF_SCALE), CS_CDF_MIN_CODE)
    return np.where(np.isfinite(cs), code, 0).astype(np.uint16)


def dem_image(ee: Any, choice: str, resampling: str = "bilinear") -> Any:
    """The DEM ``choice`` as one float band ``elevation``, resampled in its native projection.

    A collection of tiles (GLO30) is resampled tile by tile, then mosaicked: ``resample()``
    on a mosaic acts in the mosaic's default projection and the tiles would be taken by
    nearest neighbour.
    """
    asset, band, is_collection = DEMS[choice]
    smooth = resampling in ("bilinear", "bicubic")
    if is_collection:
        coll = ee.ImageCollection(asset).select(band)
        if smooth:
            coll = coll.map(lambda img: img.resample(resampling))
        src = coll.mosaic()
    else:
        src = ee.Image(asset).select(band)
        if smooth:
            src = src.resample(resampling)
    return src.rename("elevation").toFloat()


def expression_hash(image: Any) -> str:
    """SHA-256 of the serialised expression (``ee.Image.serialize()``): what was computed."""
    return hashlib.sha256(image.serialize().encode()).hexdigest()


def load_credentials(
    region: str, period: Period | str | None = None, env: Mapping[str, str] | None = None
) -> tuple[Any, str]:
    """Credentials named by ``GOOGLE_APPLICATION_CREDENTIALS``; ``(credentials, kind)``.

    Raises :class:`CredentialsError` saying which variable to set when it is missing,
    names a missing file, or holds neither a service-account key nor authorized-user
    credentials. The message never includes the file's content.
    """
    env = os.environ if env is None else env
    path = env.get(ENV_CREDENTIALS)
    where = context(region, period)
    if not path:
        raise CredentialsError(
            f"{where}: source 'earthengine' needs credentials and found none: set the environment variable "
            f"{ENV_CREDENTIALS} to a service-account key file (JSON) of an account registered for Earth Engine, "
            "or to application-default credentials (`gcloud auth application-default login`)"
        )
    if not Path(path).is_file():
        raise CredentialsError(f"{where}: {ENV_CREDENTIALS} names a file that does not exist")
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        raise CredentialsError(f"{where}: the file named by {ENV_CREDENTIALS} is not readable JSON") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        try:
            creds = service_account.Credentials.from_service_account_info(info, scopes=list(EE_SCOPES))
        except (ValueError, KeyError) as err:
            raise CredentialsError(
                f"{where}: the service-account key named by {ENV_CREDENTIALS} is invalid ({type(err).__name__})"
            ) from None
        return creds, kind
    if kind == "authorized_user":
        from google.oauth2 import credentials as user_credentials

        try:
            # no scopes: the refresh token carries the scopes granted at login, and asking for
            # others at refresh time fails (invalid_scope)
            creds = user_credentials.Credentials.from_authorized_user_info(info)
        except (ValueError, KeyError) as err:
            raise CredentialsError(
                f"{where}: the credentials named by {ENV_CREDENTIALS} are invalid ({type(err).__name__})"
            ) from None
        return creds, kind
    raise CredentialsError(
        f"{where}: the file named by {ENV_CREDENTIALS} holds credentials of type {kind!r}; expected "
        "'service_account' or 'authorized_user'"
    )


def solar_date(time_start_ms: int, lon: float) -> dt.date:
    t = dt.datetime.fromtimestamp(time_start_ms / 1000.0, tz=dt.UTC)
    return (t + dt.timedelta(hours=lon / 15.0)).date()


def _footprint_bbox(props: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    fp = props.get("system:footprint") or {}
    coords = fp.get("coordinates")
    if not coords:
        return None
    pts = np.array(coords[0] if fp.get("type") == "Polygon" else coords, dtype=float).reshape(-1, 2)
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


# --------------------------------------------------------------------------------------
# the adapter
# --------------------------------------------------------------------------------------


class EarthEngineSource(RemoteSource):
    """Sentinel-2 SR and DEM tiles from Earth Engine, cached under ``resources/earthengine/``."""

    name = "earthengine"
    product = "s2-sr-harmonized"

    def __init__(
        self,
        region: str,
        cache_root: str | Path,
        *,
        project: str | None = None,
        cs_cdf_threshold: float = 0.60,
        dem: str = "aster-gdem",
        dem_resampling: str = "bilinear",
        max_request_bytes: int = MAX_REQUEST_BYTES,
        clcd_asset: str | None = None,
        url: str = DEFAULT_URL,
        **kw: Any,
    ) -> None:
        super().__init__(region, cache_root, **kw)
        self.url = url.rstrip("/")
        #: the host named by error messages when the exception names none
        self.host = host_of(self.url) or self.url
        if dem not in DEMS:
            raise ValueError(
                f"config key regions.{region}.earthengine.dem: expected one of {sorted(DEMS)}, found {dem!r}"
            )
        self.project = project
        self.cs_cdf_threshold = float(cs_cdf_threshold)
        self.dem_choice = dem
        # the asset version and resampling are part of what a cached DEM tile is
        self.dem_product = f"dem-{dem}-{DEMS[dem][0].rsplit('/', 1)[-1].lower()}-{dem_resampling}"
        self.dem_resampling = dem_resampling
        self.max_request_bytes = int(max_request_bytes)
        self.clcd_asset = clcd_asset
        self.bytes_pulled = 0
        self._lock = threading.Lock()
        self._ee: Any = None

    @classmethod
    def from_config(
        cls, region_id: str, region: Mapping[str, Any], imagery: Mapping[str, Any], *, cache_root: str | Path
    ) -> EarthEngineSource:
        e = dict(region.get("earthengine") or {})
        fetch = dict(imagery.get("fetch") or {})
        return cls(
            region_id,
            cache_root,
            project=e.get("project"),
            cs_cdf_threshold=float(e.get("cs_cdf_threshold", 0.60)),
            dem=e.get("dem", "aster-gdem"),
            dem_resampling=e.get("dem_resampling", "bilinear"),
            clcd_asset=e.get("clcd_asset"),
            url=e.get("url", DEFAULT_URL),
            bands=tuple(imagery.get("bands", S2_BANDS)),
            tile_px=int(imagery.get("cache_tile_px", 1024)),
            max_concurrent=int(fetch.get("max_concurrent", 4)),
            policy=BackoffPolicy.from_config(fetch),
            max_scene_cloud_pct=float(imagery.get("max_scene_cloud_pct", 100.0)),
        )

    # -- session ------------------------------------------------------------------
    def connect(self, period: Period | str | None = None, product: str | None = None) -> Any:
        """Initialise earthengine-api non-interactively; returns the ``ee`` module.

        ``product`` (and ``period``) name what the session is for, in the error raised when
        the service cannot be reached."""
        if self._ee is not None:
            return self._ee
        creds, kind = load_credentials(self.region, period)
        project = self.project or os.environ.get(ENV_PROJECT) or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise CredentialsError(
                f"{context(self.region, period)}: Earth Engine needs a Cloud project: set "
                f"regions.{self.region}.earthengine.project "
                f"or the environment variable {ENV_PROJECT}"
            )
        import ee
        import requests

        # Our retry_call is the only retry layer. earthengine-api retries by itself through
        # googleapiclient (HttpRequest.execute(num_retries=state.max_retries), 5 by default,
        # sleeping up to 2**n s each: ee/_state.py EEState.max_retries, ee/data.py
        # _execute_cloud_call and _install_cloud_api_resource, which also passes it to the
        # discovery request); setMaxRetries(0) must come before Initialize, which builds
        # the resource with it. Its requests.Session (ee/data.py initialize: created only
        # when the state has none) gets the adapter without retries and with budget-bound
        # timeouts; ee/_cloud_api_utils.py _Http sends every call through that session.
        ee.data.setMaxRetries(0)
        state = ee.data._get_state()
        if state.requests_session is None:
            state.requests_session = requests.Session()
        budget_session(state.requests_session, self.policy)
        where = context(self.region, period) + (f": {product}" if product else "")
        retry_call(
            lambda: ee.Initialize(credentials=creds, project=project, url=self.url),
            self.policy,
            what=f"{where}: Earth Engine initialisation (project {project})",
            host=self.host,
        )
        log.info(
            "Earth Engine initialised (project %s at %s, %s credentials from $%s)",
            project,
            self.host,
            kind,
            ENV_CREDENTIALS,
        )
        self._ee = ee
        return ee

    def _info(self, obj: Any, what: str) -> Any:
        return retry_call(obj.getInfo, self.policy, what=what, host=self.host)

    # -- imagery ------------------------------------------------------------------
    def search(self, period: Period, grid: RegionGrid) -> list[Acquisition]:
        from rasterio.warp import transform_bounds

        ee = self.connect(period, f"Sentinel-2 {S2_COLLECTION}")
        bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
        region = ee.Geometry.Rectangle(list(bbox), "EPSG:4326", False)
        end = period.end + dt.timedelta(days=1)
        coll = (
            ee.ImageCollection(S2_COLLECTION)
            .filterBounds(region)
            .filterDate(period.start.isoformat(), end.isoformat())
            .filter(ee.Filter.lte("CLOUDY_PIXEL_PERCENTAGE", self.max_scene_cloud_pct))
        )
        info = self._info(coll, f"{context(self.region, period)}: listing {S2_COLLECTION} on Earth Engine")
        cs_ids = set(
            self._info(
                ee.ImageCollection(CS_PLUS_COLLECTION)
                .filterBounds(region)
                .filterDate(period.start.isoformat(), end.isoformat())
                .aggregate_array("system:index"),
                f"{context(self.region, period)}: listing {CS_PLUS_COLLECTION} on Earth Engine",
            )
        )
        records = []
        for feat in info.get("features", []):
            props = feat.get("properties", {})
            bands = [b["id"] for b in feat.get("bands", [])]
            missing = [b for b in self.bands if b not in bands]
            if missing:
                raise ImageryError(
                    f"{context(self.region, period)}: image {feat['id']} has no band {', '.join(missing)}; its "
                    f"bands: {', '.join(bands)}"
                )
            fp = _footprint_bbox(props)
            lon = 0.5 * (fp[0] + fp[2]) if fp else 0.5 * (bbox[0] + bbox[2])
            day = solar_date(int(props["system:time_start"]), lon)
            index = props.get("system:index") or feat["id"].rsplit("/", 1)[-1]
            meta = {
                "id": feat["id"],
                "processing_baseline": props.get("PROCESSING_BASELINE"),
                "boa_add_offset": 0,  # S2_SR_HARMONIZED is harmonised by Google
                "cloud_cover_pct": props.get("CLOUDY_PIXEL_PERCENTAGE"),
                "cloud_score_plus": f"{CS_PLUS_COLLECTION}/{index}" if index in cs_ids else None,
                "mask_layers": mask_layers(bands, index in cs_ids, day),
            }
            records.append((day, feat["id"], meta, fp))
        return group_by_date(records)

    def _compute(
        self,
        image: Any,
        tile: CacheTile,
        names: Sequence[str],
        dtypes: Sequence[str],
        *,
        what: str,
        sentinel: float | None = None,
    ) -> tuple[np.ndarray, list[int]]:
        """All bands of ``image`` over ``tile``, request by request: ``(pixels, response sizes)``.

        Pixels come as NPY (``fileFormat`` ``NPY``, parsed here, so the size of each response
        is known). With ``sentinel``, the image is unmasked to it first (also outside its
        footprint) and the sentinel becomes NaN: computePixels returns masked pixels as 0.
        ``what`` names region, period and product in the error of a request that fails.
        """
        import io

        ee = self._ee
        g = tile.grid
        if sentinel is not None:
            image = image.unmask(sentinel, False)
        out = np.zeros((len(names), *g.shape), dtype=np.result_type(*dtypes))
        sizes: list[int] = []
        for req in plan_requests(g, dtypes, max_bytes=self.max_request_bytes):
            params = {"expression": image, "fileFormat": "NPY", "grid": req.grid(), "bandIds": list(names)}
            raw = retry_call(
                functools.partial(ee.data.computePixels, params),
                self.policy,
                what=f"{what}: computePixels of cache tile {tile.id} window {req.row_off},{req.col_off}",
                host=self.host,
            )
            sizes.append(len(raw))
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            for i, n in enumerate(names):
                out[i, req.row_off : req.row_off + req.height, req.col_off : req.col_off + req.width] = arr[n]
        if sentinel is not None and out.dtype.kind == "f":
            out[out == out.dtype.type(sentinel)] = np.nan
        with self._lock:
            self.bytes_pulled += sum(sizes)
        return out, sizes

    def fetch_tile(self, acq: Acquisition, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        what = f"{context(self.region, str(acq.date))}: Sentinel-2 {S2_COLLECTION}"
        ee = self.connect(str(acq.date), f"Sentinel-2 {S2_COLLECTION}")
        bands = list(self.bands)
        layers_all: list[str] = []
        for m in acq.meta:
            for layer in m["mask_layers"]:
                if layer not in layers_all:
                    layers_all.append(layer)
        names = [*bands, *layers_all]
        out = np.zeros((len(names), *tile.grid.shape), dtype=np.uint16)
        pulled = 0
        for image_id, meta in zip(acq.items, acq.meta, strict=True):
            img = ee.Image(image_id).select(bands).toUint16()
            for layer in layers_all:
                if layer == "CS_CDF" and meta["cloud_score_plus"]:
                    img = img.addBands(cs_cdf_band(ee, meta["cloud_score_plus"]))
                elif layer != "CS_CDF" and layer in meta["mask_layers"]:
                    img = img.addBands(ee.Image(image_id).select(layer).toUint16())
                else:  # this image lacks the layer: a zero band (0 = undecided for CS_CDF)
                    img = img.addBands(ee.Image.constant(0).toUint16().rename(layer))
            # uint16 DN: 0 is the S2 no-data value, so masked pixels arriving as 0 mean no data
            data, sizes = self._compute(img, tile, names, ["uint16"] * len(names), what=f"{what} image {image_id}")
            pulled += sum(sizes)
            empty = (out[: len(bands)] == 0).all(axis=0)
            out = np.where(empty[None], data, out)
        write_tile(path, out, tile, names, nodata=0)
        return {
            "collection": S2_COLLECTION,
            "items": list(acq.meta),
            "request": {
                "tile": tile.id,
                "crs": tile.crs,
                "resolution": tile.resolution,
                "bounds": list(tile.bounds),
                "bands": names,
                "windows": len(plan_requests(tile.grid, ["uint16"] * len(names), max_bytes=self.max_request_bytes)),
                "cs_cdf_threshold_at_fetch": self.cs_cdf_threshold,
                "cs_cdf_encoding": f"max(floor(cs_cdf * {CS_CDF_SCALE}), {CS_CDF_MIN_CODE}) as uint16; 0 = no score",
            },
            "bytes_pulled": pulled,
            "harmonisation": "S2_SR_HARMONIZED: offset already removed by Google (boa_add_offset 0)",
        }

    def fetch_dem_tile(self, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        asset, band, _ = DEMS[self.dem_choice]
        # the DEM has no period: "static" says so where the other errors name theirs
        ee = self.connect("static", f"DEM {self.dem_choice} (Earth Engine asset {asset})")
        img = dem_image(ee, self.dem_choice, self.dem_resampling)
        what = f"{context(self.region, 'static')}: DEM {self.dem_choice} (Earth Engine asset {asset})"
        data, sizes = self._compute(img, tile, ["elevation"], ["float32"], what=what, sentinel=MASK_SENTINEL)
        write_tile(path, data, tile, ["elevation"], nodata=float("nan"))
        return {
            "asset": asset,
            "band": band,
            "expression_sha256": expression_hash(img),
            "bytes_pulled": sum(sizes),
            "request": {
                "tile": tile.id,
                "crs": tile.crs,
                "resolution": tile.resolution,
                "bounds": list(tile.bounds),
                "resampling": self.dem_resampling,
                "windows": len(sizes),
            },
        }

    # -- products computed on Earth Engine's side ------------------------------------
    def _tile_region(self, tile: CacheTile) -> Any:
        """The tile's footprint as an ``ee.Geometry`` in its CRS (for filterBounds)."""
        ee = self._ee
        x0, y0, x1, y1 = tile.bounds
        proj = crs_field(tile.crs)
        if "crsCode" in proj:
            return ee.Geometry.Rectangle([x0, y0, x1, y1], proj["crsCode"], False)
        from rasterio.warp import transform_bounds

        return ee.Geometry.Rectangle(list(transform_bounds(tile.crs, "EPSG:4326", x0, y0, x1, y1)), "EPSG:4326", False)

    def _pull_product(
        self,
        product: str,
        date: str,
        grid: RegionGrid,
        build: Any,
        names: Sequence[str],
        units: Mapping[str, str],
        describe: Mapping[str, Any],
    ) -> list[str]:
        """One computePixels (split only over the limits) per cache tile of ``build(tile)``."""

        what = f"{context(self.region, date)}: Earth Engine product {product}"

        def fetch(tile: CacheTile, path: Path) -> Mapping[str, Any]:
            self.connect(date, f"Earth Engine product {product}")
            img = build(tile)
            data, sizes = self._compute(img, tile, names, ["float32"] * len(names), what=what, sentinel=MASK_SENTINEL)
            write_product_tile(path, data.astype(np.float32), tile, names, [units[n] for n in names])
            log.info("%s: %s %s tile %s: %d bytes pulled", context(self.region), product, date, tile.id, sum(sizes))
            return {
                **describe,
                "expression_sha256": expression_hash(img),
                "bytes_pulled": sum(sizes),
                "request": {
                    "tile": tile.id,
                    "grid": [
                        w.grid()
                        for w in plan_requests(tile.grid, ["float32"] * len(names), max_bytes=self.max_request_bytes)
                    ],
                    "bands": list(names),
                    "windows": len(sizes),
                },
            }

        tiles = tiles_for(grid, self.tile_px)
        jobs = [(CacheKey(self.name, product, t.id, date), functools.partial(fetch, t)) for t in tiles]
        before = self.bytes_pulled
        self._run(jobs)
        log.info("%s: %s %s: %d bytes pulled", context(self.region), product, date, self.bytes_pulled - before)
        return [str(self.cache.path(k)) for k, _ in jobs]

    def vegetation_composite(
        self,
        sensor: str,
        period: Period,
        grid: RegionGrid,
        *,
        method: str = "median",
        rules: Any = None,
        reflectance: bool = True,
    ) -> list[str]:
        """Cached tiles of :func:`~karstflow.sources.ee_products.vegetation_composite` for
        ``period`` (inclusive dates): bands ``ndvi``, ``evi``, ``kndvi``, ``clear_count``,
        then with ``reflectance`` the composited surface reflectance of
        :func:`~karstflow.sources.ee_products.composite_bands` (``blue``, ``red``, ``nir``,
        ``swir1``, ``swir2``; MODIS without ``swir1``), band descriptions naming them."""
        if rules is None:
            from karstflow.sensors import SensorRules

            rules = SensorRules()
        if method not in ee_products.METHODS:
            raise ValueError(
                f"vegetation composite method: expected one of {list(ee_products.METHODS)}, found {method!r}"
            )
        start, end = period.start.isoformat(), (period.end + dt.timedelta(days=1)).isoformat()
        names = ee_products.composite_bands(sensor, reflectance=reflectance)

        def build(tile: CacheTile) -> Any:
            return ee_products.vegetation_composite(
                self._ee,
                sensor,
                start,
                end,
                self._tile_region(tile),
                method=method,
                rules=rules,
                cs_cdf_threshold=self.cs_cdf_threshold,
                reflectance=reflectance,
            )

        # tiles with reflectance are a product of their own: a tile cached before (indices
        # only) is not taken for one that has the bands
        return self._pull_product(
            f"veg-{sensor}-{method}{'-sr' if reflectance else ''}",
            f"{period.start:%Y%m%d}-{period.end:%Y%m%d}",
            grid,
            build,
            names,
            ee_products.COMPOSITE_UNITS,
            {
                "sensor": sensor,
                "method": method,
                "period": [period.start.isoformat(), period.end.isoformat()],
                "bands": names,
            },
        )

    def climate_monthly(self, product: str, year: int, grid: RegionGrid) -> list[str]:
        """Cached tiles of :func:`~karstflow.sources.ee_products.climate_monthly` of ``year``."""
        units = ee_products.climate_units(product)
        names = ee_products.climate_band_names(product, year)
        band_units = {n: units[n.rsplit("_", 1)[0]] for n in names}
        return self._pull_product(
            f"climate-{product}",
            str(int(year)),
            grid,
            lambda tile: ee_products.climate_monthly(self._ee, product, int(year), self._tile_region(tile)),
            names,
            band_units,
            {"climate_product": product, "year": int(year)},
        )

    def soil(self, grid: RegionGrid, properties: Sequence[str], depths: Sequence[str]) -> list[str]:
        """Cached tiles of :func:`~karstflow.sources.ee_products.soilgrids` (static)."""
        units = ee_products.soil_units(properties)
        names = ee_products.soil_band_names(properties, depths)
        band_units = {f"{p}_{d}": units[p] for p in properties for d in depths}
        tag = hashlib.sha1(",".join(names).encode()).hexdigest()[:8]
        return self._pull_product(
            f"soilgrids-{tag}",
            "static",
            grid,
            lambda tile: ee_products.soilgrids(self._ee, properties, depths),
            names,
            band_units,
            {"properties": list(properties), "depths": list(depths)},
        )

    def landcover(self, product: str, year: int, grid: RegionGrid) -> list[str]:
        """Cached tiles of :func:`~karstflow.sources.ee_products.landcover` (band ``landcover``,
        provider codes as float32, NaN where masked)."""
        # fail before any request when the product lacks the year
        if product == "worldcover" and int(year) not in ee_products.WORLDCOVER:
            ee_products.landcover(None, product, year)
        return self._pull_product(
            f"landcover-{product}",
            str(int(year)),
            grid,
            lambda tile: ee_products.landcover(self._ee, product, int(year), clcd_asset=self.clcd_asset),
            ["landcover"],
            {"landcover": "class"},
            {"landcover_product": product, "year": int(year)},
        )

    def population(self, year: int, grid: RegionGrid, country: str | None = "CHN") -> list[str]:
        """Cached tiles of :func:`~karstflow.sources.ee_products.worldpop` of ``year``: band
        ``population_density`` (persons km-2), float32, NaN where masked. Persons per pixel of
        the region grid: :func:`~karstflow.sources.ee_products.persons_per_pixel`."""
        # fail before any request when WorldPop lacks the year
        if int(year) not in ee_products.WORLDPOP_YEARS:
            ee_products.worldpop(None, year)
        return self._pull_product(
            f"worldpop-{country or 'all'}",
            str(int(year)),
            grid,
            lambda tile: ee_products.worldpop(self._ee, int(year), self._tile_region(tile), country=country),
            [ee_products.WORLDPOP_DENSITY_BAND],
            ee_products.WORLDPOP_UNITS,
            {"population_product": "worldpop", "year": int(year), "country": country},
        )


def write_product_tile(
    path: str | Path, data: np.ndarray, tile: CacheTile, band_names: Sequence[str], units: Sequence[str]
) -> None:
    """:func:`~karstflow.sources.fetch.write_tile` (float32, NaN nodata) plus a ``units`` tag per band."""
    import rasterio

    write_tile(path, data, tile, band_names, nodata=float("nan"))
    with rasterio.open(path, "r+") as dst:
        for i, u in enumerate(units, start=1):
            dst.update_tags(i, units=str(u))
