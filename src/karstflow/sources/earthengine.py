"""Google Earth Engine (earthengine-api): Sentinel-2 SR with Cloud Score+, and a DEM.

* Imagery: ``COPERNICUS/S2_SR_HARMONIZED`` (already harmonised across processing
  baselines by Google, so every image's BOA offset is 0), filtered to the region and
  period and to ``CLOUDY_PIXEL_PERCENTAGE <= imagery.max_scene_cloud_pct``. Clouds: Cloud
  Score+ (``GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED``, band ``cs_cdf``, stored x10000 as
  ``CS_CDF``; clear where ``cs_cdf >= earthengine.cs_cdf_threshold``); where an image has
  no Cloud Score+ counterpart, ``MSK_CLASSI_OPAQUE``/``MSK_CLASSI_CIRRUS`` when the image
  has them, else ``QA60`` bits 10 and 11 (:func:`mask_layers`).
* DEM (``earthengine.dem``): ``aster-gdem`` (community catalogue asset
  ``projects/sat-io/open-datasets/ASTER/GDEM``, the default, as in the study),
  ``nasadem`` (``NASA/NASADEM_HGT/001``) or ``copernicus-glo30``
  (``COPERNICUS/DEM/GLO30``).
* Pixels: ``ee.data.computePixels`` on each cache tile (region CRS and resolution),
  split by :func:`plan_requests` into requests under the 48 MB and 32,768 px limits
  (a mask byte per band counted), tiles fetched concurrently, each request retried with
  exponential backoff on HTTP 429 and 5xx (:func:`~karstflow.sources.fetch.retry_call`).
* Credentials (non-interactive): ``GOOGLE_APPLICATION_CREDENTIALS`` names a
  service-account key or an application-default credentials file
  (``gcloud auth application-default login``); the Cloud project comes from
  ``regions.<id>.earthengine.project`` or ``EARTHENGINE_PROJECT``. Neither the key nor
  its path is logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.sources import S2_BANDS, CredentialsError, ImageryError, Period, context
from karstflow.sources.cache import CacheTile
from karstflow.sources.fetch import Acquisition, BackoffPolicy, RemoteSource, group_by_date, retry_call, write_tile

log = logging.getLogger(__name__)

S2_COLLECTION = "COPERNICUS/S2_SR_HARMONIZED"
CS_PLUS_COLLECTION = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
#: DEM choice -> (asset, band, is an ImageCollection to mosaic)
DEMS: dict[str, tuple[str, str, bool]] = {
    "aster-gdem": ("projects/sat-io/open-datasets/ASTER/GDEM", "b1", True),
    "nasadem": ("NASA/NASADEM_HGT/001", "elevation", False),
    "copernicus-glo30": ("COPERNICUS/DEM/GLO30", "DEM", True),
}
#: computePixels limits (Earth Engine REST API): request payload and grid edge.
MAX_REQUEST_BYTES = 48 * 1024 * 1024
MAX_GRID_PX = 32768
#: Environment variables read for authentication and the project.
ENV_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
ENV_PROJECT = "EARTHENGINE_PROJECT"
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
            "crsCode": self.crs,
        }

    def nbytes(self, band_dtypes: Sequence[str | np.dtype]) -> int:
        return self.width * self.height * bytes_per_pixel(band_dtypes)


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


def mask_layers(band_names: Sequence[str], has_cloud_score: bool) -> list[str]:
    """Cloud layers to fetch for an image: Cloud Score+ first, then the fallback it lacks.

    Fallback: ``MSK_CLASSI_OPAQUE`` and ``MSK_CLASSI_CIRRUS`` (images processed since
    early 2022 carry them; QA60 is empty there), else ``QA60``.
    """
    layers = ["CS_CDF"] if has_cloud_score else []
    if "MSK_CLASSI_OPAQUE" in band_names:
        layers += ["MSK_CLASSI_OPAQUE"] + (["MSK_CLASSI_CIRRUS"] if "MSK_CLASSI_CIRRUS" in band_names else [])
    elif "QA60" in band_names:
        layers.append("QA60")
    return layers


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
            creds = user_credentials.Credentials.from_authorized_user_info(info, scopes=list(EE_SCOPES))
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
        **kw: Any,
    ) -> None:
        super().__init__(region, cache_root, **kw)
        if dem not in DEMS:
            raise ValueError(
                f"config key regions.{region}.earthengine.dem: expected one of {sorted(DEMS)}, found {dem!r}"
            )
        self.project = project
        self.cs_cdf_threshold = float(cs_cdf_threshold)
        self.dem_choice = dem
        self.dem_product = f"dem-{dem}"
        self.dem_resampling = dem_resampling
        self.max_request_bytes = int(max_request_bytes)
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
            bands=tuple(imagery.get("bands", S2_BANDS)),
            tile_px=int(imagery.get("cache_tile_px", 1024)),
            max_concurrent=int(fetch.get("max_concurrent", 4)),
            policy=BackoffPolicy.from_config(fetch),
            max_scene_cloud_pct=float(imagery.get("max_scene_cloud_pct", 100.0)),
        )

    # -- session ------------------------------------------------------------------
    def connect(self, period: Period | None = None) -> Any:
        """Initialise earthengine-api non-interactively; returns the ``ee`` module."""
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

        retry_call(
            lambda: ee.Initialize(credentials=creds, project=project), self.policy, what="Earth Engine initialisation"
        )
        log.info("Earth Engine initialised (project %s, %s credentials from $%s)", project, kind, ENV_CREDENTIALS)
        self._ee = ee
        return ee

    def _info(self, obj: Any, what: str) -> Any:
        return retry_call(obj.getInfo, self.policy, what=what)

    # -- imagery ------------------------------------------------------------------
    def search(self, period: Period, grid: RegionGrid) -> list[Acquisition]:
        from rasterio.warp import transform_bounds

        ee = self.connect(period)
        bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
        region = ee.Geometry.Rectangle(list(bbox), "EPSG:4326", False)
        end = period.end + dt.timedelta(days=1)
        coll = (
            ee.ImageCollection(S2_COLLECTION)
            .filterBounds(region)
            .filterDate(period.start.isoformat(), end.isoformat())
            .filter(ee.Filter.lte("CLOUDY_PIXEL_PERCENTAGE", self.max_scene_cloud_pct))
        )
        info = self._info(coll, f"listing {S2_COLLECTION} for {context(self.region, period)}")
        cs_ids = set(
            self._info(
                ee.ImageCollection(CS_PLUS_COLLECTION)
                .filterBounds(region)
                .filterDate(period.start.isoformat(), end.isoformat())
                .aggregate_array("system:index"),
                "listing Cloud Score+",
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
                "mask_layers": mask_layers(bands, index in cs_ids),
            }
            records.append((day, feat["id"], meta, fp))
        return group_by_date(records)

    def _compute(self, image: Any, tile: CacheTile, names: Sequence[str], dtypes: Sequence[str]) -> np.ndarray:
        """All bands of ``image`` over ``tile``, request by request; (bands, h, w)."""
        ee = self._ee
        g = tile.grid
        out = np.zeros((len(names), *g.shape), dtype=np.result_type(*dtypes))
        for req in plan_requests(g, dtypes, max_bytes=self.max_request_bytes):
            params = {"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": req.grid(), "bandIds": list(names)}
            arr = retry_call(
                functools.partial(ee.data.computePixels, params),
                self.policy,
                what=f"computePixels {tile.id} window {req.row_off},{req.col_off}",
            )
            for i, n in enumerate(names):
                out[i, req.row_off : req.row_off + req.height, req.col_off : req.col_off + req.width] = arr[n]
        return out

    def fetch_tile(self, acq: Acquisition, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        ee = self.connect()
        bands = list(self.bands)
        layers_all: list[str] = []
        for m in acq.meta:
            for layer in m["mask_layers"]:
                if layer not in layers_all:
                    layers_all.append(layer)
        names = [*bands, *layers_all]
        out = np.zeros((len(names), *tile.grid.shape), dtype=np.uint16)
        for image_id, meta in zip(acq.items, acq.meta, strict=True):
            img = ee.Image(image_id).select(bands).toUint16()
            for layer in layers_all:
                if layer == "CS_CDF" and meta["cloud_score_plus"]:
                    img = img.addBands(
                        ee.Image(meta["cloud_score_plus"]).select("cs_cdf").multiply(10000).toUint16().rename("CS_CDF")
                    )
                elif layer != "CS_CDF" and layer in meta["mask_layers"]:
                    img = img.addBands(ee.Image(image_id).select(layer).toUint16())
                else:  # this image lacks the layer: a zero band (0 = undecided for CS_CDF)
                    img = img.addBands(ee.Image.constant(0).toUint16().rename(layer))
            data = self._compute(img, tile, names, ["uint16"] * len(names))
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
            },
            "harmonisation": "S2_SR_HARMONIZED: offset already removed by Google (boa_add_offset 0)",
        }

    def fetch_dem_tile(self, tile: CacheTile, path: Path) -> Mapping[str, Any]:
        ee = self.connect()
        asset, band, is_collection = DEMS[self.dem_choice]
        src = ee.ImageCollection(asset).mosaic() if is_collection else ee.Image(asset)
        img = src.select(band).rename("elevation").toFloat()
        if self.dem_resampling in ("bilinear", "bicubic"):
            img = img.resample(self.dem_resampling)
        data = self._compute(img, tile, ["elevation"], ["float32"])
        write_tile(path, data, tile, ["elevation"], nodata=float("nan"))
        return {
            "asset": asset,
            "band": band,
            "request": {
                "tile": tile.id,
                "crs": tile.crs,
                "resolution": tile.resolution,
                "bounds": list(tile.bounds),
                "resampling": self.dem_resampling,
            },
        }
