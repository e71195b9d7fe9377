"""The fetch layer shared by the remote adapters (STAC, Earth Engine).

* :class:`BackoffPolicy` and :func:`retry_call`: retry on HTTP 429 and 5xx with capped,
  jittered exponential backoff;
* :class:`RemoteSource`: list a period's acquisitions, fetch every (cache tile, date)
  the tile cache lacks, concurrently, and hand back :class:`~karstflow.sources.Scene`
  objects reading the cached files; the same for the DEM;
* :func:`write_tile` and :func:`write_date_table`: the cached GeoTIFF and the date table
  a fetch rule leaves for the compositing rule.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.sources import (
    S2_BANDS,
    Layer,
    NoScenesError,
    Period,
    Scene,
    context,
)
from karstflow.sources.cache import CacheKey, CacheTile, TileCache, relative_to, tiles_for

log = logging.getLogger(__name__)
T = TypeVar("T")

# --------------------------------------------------------------------------------------
# retries
# --------------------------------------------------------------------------------------

#: HTTP statuses worth retrying: rate limiting and server-side failures.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Default of ``imagery.fetch.retry_budget_s``: the seconds one remote request may spend
#: failing and being retried, counted from its first attempt. With the default backoff
#: (1, 2, 4, 8 s, jittered down by up to half) a refused connection gives up after four
#: retries, in 8 to 15 s; the 16 s wait of a fifth retry would overrun the budget.
DEFAULT_RETRY_BUDGET_S = 20.0
#: Default of ``imagery.fetch.timeout_s``: connect and read timeout of one request.
DEFAULT_TIMEOUT_S = 60.0
#: Shortest timeout a request gets when little of the budget is left: still long enough
#: for a loopback or LAN host to answer.
MIN_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff: attempt *k* (0-based) waits ``min(max_s, base_s * 2**k)``,
    scaled by a random factor in ``[1 - jitter, 1]`` ("equal jitter" when 0.5), at most
    ``max_retries`` times, and never past ``budget_s`` seconds after the first attempt
    (``None``: no budget). ``timeout_s`` bounds each request, cut to what is left of the
    budget (:func:`request_timeout`). ``imagery.fetch`` sets the numbers."""

    max_retries: int = 6
    base_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.5
    budget_s: float | None = DEFAULT_RETRY_BUDGET_S
    timeout_s: float = DEFAULT_TIMEOUT_S

    def delays(self, rng: random.Random | None = None) -> list[float]:
        rng = rng or random.Random()
        out = []
        for k in range(self.max_retries):
            d = min(self.max_s, self.base_s * (2.0**k))
            out.append(d * (1.0 - self.jitter * rng.random()))
        return out

    @classmethod
    def from_config(cls, fetch: Mapping[str, Any] | None) -> BackoffPolicy:
        f = dict(fetch or {})
        return cls(
            max_retries=int(f.get("max_retries", 6)),
            base_s=float(f.get("backoff_base_s", 1.0)),
            max_s=float(f.get("backoff_max_s", 60.0)),
            budget_s=float(f.get("retry_budget_s", DEFAULT_RETRY_BUDGET_S)),
            timeout_s=float(f.get("timeout_s", DEFAULT_TIMEOUT_S)),
        )


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (``__cause__``, else
    ``__context__``), without cycles."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not c for c in chain):
        chain.append(cur)
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__
    return chain


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, if any (requests, urllib, googleapiclient,
    pystac-client ``APIError``, Earth Engine's ``EEException``, GDAL's curl texts).

    The exception chain is followed: earthengine-api raises
    ``EEException(http_error._get_reason())`` inside ``except HttpError`` without ``from``
    (``ee.data._execute_cloud_call``), so the status of the
    ``googleapiclient.errors.HttpError`` is on ``__context__`` (``__cause__`` when raised
    ``from``). Without a status anywhere, the message decides: Earth Engine's overload
    texts, answered by the Cloud API as HTTP 429 RESOURCE_EXHAUSTED ("Too many concurrent
    aggregations.", "Quota exceeded ...", "Too Many Requests: ...", "Earth Engine capacity
    exceeded"), count as 429; a computation too big ("User memory limit exceeded.",
    "Computation timed out.") has none.
    """
    chain = _chain(exc)
    for e in chain:
        for attr in ("status_code", "status", "code"):
            try:
                v = getattr(e, attr, None)
            except Exception:  # noqa: BLE001 - a property that fails has no status to give
                v = None
            if isinstance(v, int) and not isinstance(v, bool) and 100 <= v < 600:
                return v
        for holder in ("response", "resp"):
            r = getattr(e, holder, None)
            if r is not None:
                for attr in ("status_code", "status"):
                    raw = getattr(r, attr, None)
                    if raw is None:
                        continue
                    try:
                        v = int(raw)  # httplib2 responses carry the status as str sometimes
                    except (TypeError, ValueError):
                        continue
                    if 100 <= v < 600:
                        return v
    for e in chain:
        text = str(e)
        if re.search(r"user memory limit exceeded|computation timed out", text, re.I):
            return None
        if re.search(
            r"too many concurrent aggregations|too many (concurrent )?requests|rate limit|quota exceeded|"
            r"resource[ _]exhausted|capacity exceeded",
            text,
            re.I,
        ):
            return 429
        # GDAL's curl reads say "HTTP response code: 503" (rasterio's RasterioIOError text)
        m = (
            re.search(r"\b(?:HTTP(?: Error)?|status(?: code)?)[ :]*([1-5]\d\d)\b", text, re.I)
            or re.search(r"<HttpError ([1-5]\d\d)\b", text)
            or re.search(r"\bHTTP response code:? ?([1-5]\d\d)\b", text, re.I)
        )
        if m:
            return int(m.group(1))
    return None


# Transport failures as GDAL/curl, urllib3 and pystac-client word them (their exception
# types do not always survive: pystac-client's StacApiIO.request re-raises everything as
# APIError(str(err)), rasterio raises RasterioIOError with curl's text).
_REFUSED = re.compile(r"connection refused|errno 111\b|econnrefused", re.I)
_UNRESOLVED = re.compile(
    r"name or service not known|failed to resolve|could not resolve host|temporary failure in name resolution|"
    r"nodename nor servname|getaddrinfo failed|name resolution",
    re.I,
)
# "Computation timed out." is Earth Engine refusing a computation, not a transport timeout
_TIMED_OUT = re.compile(r"(?<!computation )timed? ?out\b|timeout was reached", re.I)
_RESET = re.compile(
    r"connection (reset|aborted)|remotedisconnected|remote end closed|broken pipe|connection broken|"
    r"incompleteread|empty reply from server",
    re.I,
)
# curl's CURLE_COULDNT_CONNECT and urllib3's wording when the reason is not given
_FAILED = re.compile(r"couldn'?t connect to server|failed to establish a new connection|failed to connect", re.I)


def failure_cause(exc: BaseException) -> str | None:
    """The plain cause of a failed remote request: ``connection refused``, ``host name not
    resolved``, ``timed out``, ``connection reset``, ``HTTP <status>`` or ``connection
    failed``; ``None`` when ``exc`` is no transport failure (a bad value, an error of ours).

    Exception types anywhere in the chain decide first, then an HTTP status (so Earth
    Engine's "Computation timed out." answered with HTTP 400 is ``HTTP 400``), then the
    texts of libraries that keep only a message."""
    import socket

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "host name not resolved"
        if isinstance(e, TimeoutError | socket.timeout) or type(e).__name__ in {
            "Timeout",
            "ConnectTimeout",
            "ReadTimeout",
            "ConnectTimeoutError",
            "ReadTimeoutError",
        }:
            return "timed out"
        if isinstance(e, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            return "connection reset"
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status}"
    for e in chain:
        text = str(e)
        for pattern, cause in (
            (_REFUSED, "connection refused"),
            (_UNRESOLVED, "host name not resolved"),
            (_TIMED_OUT, "timed out"),
            (_RESET, "connection reset"),
            (_FAILED, "connection failed"),
        ):
            if pattern.search(text):
                return cause
    if any(isinstance(e, ConnectionError) or type(e).__name__ in {"ConnectionError", "TransportError"} for e in chain):
        return "connection failed"
    return None


def host_of(url: str) -> str | None:
    """``host[:port]`` of a URL, without user info (a credential may sit there)."""
    import urllib.parse

    try:
        p = urllib.parse.urlsplit(url)
        host, port = p.hostname, p.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port else host


def failure_host(exc: BaseException) -> str | None:
    """The host a failed request went to, as the exception chain tells it: requests'
    ``exc.request.url``, urllib3's ``pool.host``/``conn.host``, googleapiclient's
    ``HttpError.uri``, urllib's ``HTTPError.url``, else ``host='...', port=...`` (urllib3), ``Failed to connect to H
    port P`` (curl) or the first URL in a message."""
    for e in _chain(exc):
        req = getattr(e, "request", None)
        url = getattr(req, "url", None)
        if isinstance(url, str) and (h := host_of(url)):
            return h
        for holder in ("pool", "conn"):
            obj = getattr(e, holder, None)
            host = getattr(obj, "host", None)
            if isinstance(host, str) and host:
                port = getattr(obj, "port", None)
                return f"{host}:{port}" if port else host
        for attr in ("uri", "url"):  # googleapiclient HttpError.uri, urllib's HTTPError.url
            uri = getattr(e, attr, None)
            if isinstance(uri, str) and (h := host_of(uri)):
                return h
    for e in _chain(exc):
        text = str(e)
        m = re.search(r"host='([^']+)', port=(\d+)", text) or re.search(
            r"failed to connect to (\S+?) port (\d+)", text, re.I
        )
        if m:
            return f"{m.group(1)}:{m.group(2)}"
        m = re.search(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", text, re.I)
        if m and (h := host_of(m.group(0))):
            return h
    return None


def _server_text(exc: BaseException) -> str:
    """First line of the outermost message, query strings cut (a signed href carries its
    token there), at most 160 characters: what the server said, for HTTP failures."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r"\?[^\s'\"<>]*", "?...", text)
    return text if len(text) <= 160 else text[:157] + "..."


def is_retryable(exc: BaseException) -> bool:
    """Retry HTTP 429 and 5xx and connection failures (anywhere in the exception chain);
    never a computation Earth Engine refuses for its size ("User memory limit exceeded",
    "Computation timed out"), whatever status it came with: the request must change."""
    chain = _chain(exc)
    if any(re.search(r"user memory limit exceeded|computation timed out", str(e), re.I) for e in chain):
        return False
    status = http_status(exc)
    if status is not None:
        return status in RETRY_STATUSES
    # connection resets and timeouts: transient as well
    return any(isinstance(e, ConnectionError | TimeoutError) for e in chain)


# The deadline of the innermost retry_call running in this thread: request_timeout cuts
# each request's timeout to it, and a retry_call nested in another keeps the outer deadline.
_budget = threading.local()


def remaining_budget_s() -> float | None:
    """Seconds left of the retry budget of the request running in this thread (``None``
    outside :func:`retry_call`, or without a budget)."""
    deadline = getattr(_budget, "deadline", None)
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def request_timeout(timeout_s: float) -> float:
    """Connect and read timeout of one request: ``timeout_s``, cut to what is left of the
    retry budget (at least :data:`MIN_TIMEOUT_S`), so a host that accepts connections and
    never answers cannot hold a fetch past its budget."""
    left = remaining_budget_s()
    return float(timeout_s) if left is None else max(MIN_TIMEOUT_S, min(float(timeout_s), left))


@functools.cache
def _budget_adapter_class() -> type:
    from requests.adapters import HTTPAdapter

    class BudgetAdapter(HTTPAdapter):
        """requests' transport adapter without retries of its own, whose timeout is
        :func:`request_timeout` (``max_retries=0`` is urllib3's ``Retry(0, read=False)``:
        requests/adapters.py, ``HTTPAdapter.__init__``)."""

        def __init__(self, timeout_s: float) -> None:
            super().__init__(max_retries=0)
            self.timeout_s = float(timeout_s)

        def send(self, request: Any, stream: bool = False, timeout: Any = None, **kw: Any) -> Any:  # type: ignore[override]
            # a caller's own timeout (a float or a (connect, read) pair) is kept when shorter
            asked = max(timeout) if isinstance(timeout, tuple) else timeout
            base = self.timeout_s if asked is None else min(self.timeout_s, float(asked))
            return super().send(request, stream=stream, timeout=request_timeout(base), **kw)

    return BudgetAdapter


def budget_session(session: Any, policy: BackoffPolicy) -> Any:
    """Mount on a ``requests.Session`` an adapter that never retries by itself (retries are
    :func:`retry_call`'s alone) and times requests out by :func:`request_timeout`."""
    adapter = _budget_adapter_class()(policy.timeout_s)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def gdal_http_options(policy: BackoffPolicy) -> dict[str, str]:
    """GDAL configuration of a remote raster read (``rasterio.Env(**options)``): no retries of
    GDAL's own and curl timeouts by :func:`request_timeout`. Without options set, odc-stac
    reads with ``GDAL_HTTP_MAX_RETRY=10`` and ``GDAL_HTTP_RETRY_DELAY=0.5``
    (odc/loader/_rio.py, ``GDAL_CLOUD_DEFAULTS`` applied by ``capture_rio_env`` when the
    rasterio environment is not customised); its ``GDAL_DISABLE_READDIR_ON_OPEN`` is kept."""
    t = str(max(1, math.ceil(request_timeout(policy.timeout_s))))  # curl takes whole seconds
    return {
        "GDAL_HTTP_MAX_RETRY": "0",
        "GDAL_HTTP_TIMEOUT": t,
        "GDAL_HTTP_CONNECTTIMEOUT": t,
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    }


def retry_call(
    fn: Callable[[], T],
    policy: BackoffPolicy,
    *,
    what: str = "request",
    host: str | None = None,
    retryable: Callable[[BaseException], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable failures after the policy's delays.

    The only retry layer: the libraries' own are switched off (:func:`budget_session`,
    :func:`gdal_http_options`, earthengine-api's ``setMaxRetries(0)``). A retry whose wait
    would end past ``policy.budget_s`` after the first attempt is not made; inside another
    retry_call, the outer deadline holds too. When the request fails for good with a
    transport failure (:func:`failure_cause`), :class:`~karstflow.sources.RemoteError` is
    raised from it: ``"{what}: {cause} at {host}; gave up after ..."``. ``what`` names the
    region, period and product; ``host`` is the fallback when the exception names none.
    Any other failure is raised as it is, at once when not retryable.
    """
    from karstflow.sources import RemoteError

    delays = policy.delays(rng)
    start = clock()
    outer = getattr(_budget, "deadline", None)
    deadline = None if policy.budget_s is None else start + policy.budget_s
    if outer is not None:
        deadline = outer if deadline is None else min(deadline, outer)
    _budget.deadline = deadline
    try:
        for attempt in range(len(delays) + 1):
            try:
                return fn()
            except RemoteError:
                raise  # an inner retry_call gave up: retrying it again would stack the layers
            except Exception as exc:  # noqa: BLE001 - classified below
                cause = failure_cause(exc)
                wait = delays[attempt] if attempt < len(delays) else 0.0
                if attempt >= len(delays):
                    why = f"{len(delays)} retries made" if delays else "no retries configured"
                elif not retryable(exc):
                    why = "not retried: not transient"
                elif deadline is not None and clock() + wait > deadline:
                    why = f"the next retry would pass the retry budget of {policy.budget_s:g} s"
                else:
                    log.warning(
                        "%s: %s at %s; retry %d of %d in %.1f s",
                        what,
                        cause or type(exc).__name__,
                        failure_host(exc) or host or "unknown host",
                        attempt + 1,
                        len(delays),
                        wait,
                    )
                    sleep(wait)
                    continue
                if cause is None:
                    raise
                said = f" ({_server_text(exc)})" if cause.startswith("HTTP ") and _server_text(exc) else ""
                n = attempt + 1
                raise RemoteError(
                    f"{what}: {cause} at {failure_host(exc) or host or 'unknown host'}{said}; gave up after {n} "
                    f"attempt{'s' if n > 1 else ''} in {clock() - start:.1f} s ({why})"
                ) from exc
    finally:
        _budget.deadline = outer
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------
# writing cached tiles and date tables
# --------------------------------------------------------------------------------------


def write_tile(
    path: str | Path, data: np.ndarray, tile: CacheTile, band_names: Sequence[str], *, nodata: float | int | None = 0
) -> None:
    """Write ``(bands, h, w)`` pixels of ``tile`` to ``path`` (tiled, deflate, band names)."""
    import rasterio

    from karstflow.sources.rasters import _profile

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    g = tile.grid
    if data.shape[1:] != g.shape:
        raise ValueError(f"tile {tile.id}: pixels of shape {data.shape[1:]} do not match the tile {g.shape}")
    profile = _profile(g, data.shape[0], data.dtype, nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(band_names, start=1):
            dst.set_band_description(i, str(name))


def write_date_table(scenes: Sequence[Scene], path: str | Path) -> None:
    """Date table of ``scenes`` (one row per file) that :mod:`~karstflow.sources.local` reads."""
    import pandas as pd

    from karstflow.io import write_csv

    path = Path(path)
    rows = []
    for s in scenes:
        for file in s.files:
            rows.append(
                {
                    "date": s.date.isoformat(),
                    "file": relative_to(file, path.parent),
                    "scene_id": s.id,
                    "boa_add_offset": s.meta.get("boa_add_offset", ""),
                    "processing_baseline": s.meta.get("processing_baseline", ""),
                    "cloud_cover_pct": s.meta.get("cloud_cover_pct", ""),
                    "source_items": s.meta.get("source_items", ""),
                    "sensor": s.meta.get("sensor", ""),
                    "platform": s.meta.get("platform", ""),
                }
            )
    cols = [
        "date",
        "file",
        "scene_id",
        "boa_add_offset",
        "processing_baseline",
        "cloud_cover_pct",
        "source_items",
        "sensor",
        "platform",
    ]
    write_csv(pd.DataFrame(rows, columns=cols), path, index=False)


# --------------------------------------------------------------------------------------
# remote sources
# --------------------------------------------------------------------------------------


@dataclass
class Acquisition:
    """One acquisition date of a remote collection over the region.

    ``items``: the remote items/images of that date (STAC items, EE image ids) with
    their metadata; ``footprints`` their lon/lat bounding boxes (for tile selection).
    """

    date: dt.date
    items: list[Any]
    meta: list[dict[str, Any]]
    footprints: list[tuple[float, float, float, float]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.date:%Y%m%d}"


def _tile_lonlat(tile: CacheTile) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    return tuple(transform_bounds(tile.crs, "EPSG:4326", *tile.bounds, densify_pts=21))  # type: ignore[return-value]


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class RemoteSource:
    """Shared fetch logic; adapters implement :meth:`search`, :meth:`fetch_tile` and
    :meth:`fetch_dem_tile` (and set ``name``, ``product``, ``dem_product``)."""

    name = "remote"
    product = "s2-l2a"
    dem_product = "dem"

    def __init__(
        self,
        region: str,
        cache_root: str | Path,
        *,
        bands: Sequence[str] = S2_BANDS,
        tile_px: int = 1024,
        max_concurrent: int = 4,
        policy: BackoffPolicy | None = None,
        max_scene_cloud_pct: float = 100.0,
    ) -> None:
        self.region = region
        self.cache = TileCache(cache_root)
        self.band_list = tuple(bands)
        self.tile_px = int(tile_px)
        self.max_concurrent = max(1, int(max_concurrent))
        self.policy = policy or BackoffPolicy()
        self.max_scene_cloud_pct = float(max_scene_cloud_pct)
        self.last_entries: list[dict[str, Any]] = []
        self.fetched = 0
        self.reused = 0

    @property
    def bands(self) -> tuple[str, ...]:
        return self.band_list

    # -- to implement -------------------------------------------------------------
    def search(self, period: Period, grid: RegionGrid) -> list[Acquisition]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fetch_tile(self, acq: Acquisition, tile: CacheTile, path: Path) -> Mapping[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def fetch_dem_tile(self, tile: CacheTile, path: Path) -> Mapping[str, Any]:  # pragma: no cover
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------
    def _run(self, jobs: Sequence[tuple[CacheKey, Callable[[Path], Mapping[str, Any]]]]) -> list[dict[str, Any]]:
        def one(job: tuple[CacheKey, Callable[[Path], Mapping[str, Any]]]) -> tuple[dict[str, Any], bool]:
            key, fn = job
            return self.cache.get_or_fetch(key, fn)

        if self.max_concurrent == 1 or len(jobs) <= 1:
            results = [one(j) for j in jobs]
        else:
            with ThreadPoolExecutor(max_workers=self.max_concurrent, thread_name_prefix=f"{self.name}-fetch") as pool:
                futures = [pool.submit(one, j) for j in jobs]
                try:
                    results = [f.result() for f in futures]
                except BaseException:
                    # the first failure ends the fetch: queued tiles would each spend a
                    # retry budget of their own against the same unreachable host
                    for f in futures:
                        f.cancel()
                    raise
        fetched = sum(1 for _, f in results if f)
        self.fetched += fetched
        self.reused += len(results) - fetched
        log.info("%s: %d tiles fetched, %d taken from the cache", context(self.region), fetched, len(results) - fetched)
        entries = [e for e, _ in results]
        self.last_entries.extend(entries)
        return entries

    def scenes(self, period: Period, grid: RegionGrid) -> list[Scene]:
        acquisitions = self.search(period, grid)
        if not acquisitions:
            raise NoScenesError(
                f"{context(self.region, period)}: the {self.name} source has no {self.product} scenes between "
                f"{period.start} and {period.end} over the region (max scene cloud cover "
                f"{self.max_scene_cloud_pct:g} %)"
            )
        tiles = tiles_for(grid, self.tile_px)
        tile_ll = {t.id: _tile_lonlat(t) for t in tiles}
        jobs: list[tuple[CacheKey, Callable[[Path], Mapping[str, Any]]]] = []
        per_date: dict[str, list[CacheKey]] = {}
        for acq in acquisitions:
            for tile in tiles:
                if acq.footprints and not any(_overlaps(fp, tile_ll[tile.id]) for fp in acq.footprints):
                    continue
                key = CacheKey(self.name, self.product, tile.id, acq.id)
                jobs.append((key, functools.partial(self.fetch_tile, acq, tile)))
                per_date.setdefault(acq.id, []).append(key)
        self._run(jobs)
        scenes = []
        for acq in acquisitions:
            keys = per_date.get(acq.id, [])
            if not keys:
                continue
            names = self.cached_band_names(keys[0])
            layers = {n: tuple(Layer(str(self.cache.path(k)), i) for k in keys) for i, n in enumerate(names, start=1)}
            baselines = sorted({str(m.get("processing_baseline")) for m in acq.meta if m.get("processing_baseline")})
            ccs = [float(m["cloud_cover_pct"]) for m in acq.meta if m.get("cloud_cover_pct") is not None]
            meta = {
                # pixels were harmonised per item while fetching (see fetch_tile)
                "boa_add_offset": 0,
                "processing_baseline": ";".join(baselines),
                "cloud_cover_pct": round(sum(ccs) / len(ccs), 3) if ccs else "",
                "source_items": ";".join(str(m.get("id")) for m in acq.meta),
            }
            scenes.append(
                Scene(id=f"{self.name}-{acq.id}", date=acq.date, layers=layers, meta=meta, encoding="s2-l2a-dn")
            )
        return scenes

    def cached_band_names(self, key: CacheKey) -> list[str]:
        from karstflow.sources.local import band_descriptions

        return [str(d) for d in band_descriptions(self.cache.path(key))]

    def dem(self, grid: RegionGrid) -> list[str]:
        tiles = tiles_for(grid, self.tile_px)
        jobs = [
            (CacheKey(self.name, self.dem_product, t.id, "static"), lambda p, t=t: self.fetch_dem_tile(t, p))
            for t in tiles
        ]
        self._run(jobs)
        return [str(self.cache.path(k)) for k, _ in jobs]


def group_by_date(
    records: Iterable[tuple[dt.date, Any, dict[str, Any], tuple[float, float, float, float] | None]],
) -> list[Acquisition]:
    """Acquisitions from (date, item, meta, lon/lat bbox) records, sorted by date."""
    by: dict[dt.date, Acquisition] = {}
    for day, item, meta, fp in records:
        acq = by.setdefault(day, Acquisition(day, [], [], []))
        acq.items.append(item)
        acq.meta.append(meta)
        if fp is not None:
            acq.footprints.append(fp)
    return [by[d] for d in sorted(by)]
