"""A loopback STAC API for tests: stac-fastapi-static over a static catalog on disk.

The catalog folder is also mounted as static files (Starlette serves HTTP range
requests), so the COG assets, whose hrefs stac-fastapi-static rewrites to URLs under the
API root, are read over HTTP as from a bucket. The app adds what real catalogues do to a
client:

* a Planetary-Computer-like SAS token endpoint ``GET /api/sas/v1/token/{collection}``
  (``{"token": "sig=loopback&se=...", "msft:expiry": ...}``); files under a ``signed/``
  folder of the catalog answer 403 unless the query string carries ``sig=loopback``;
* scripted faults from the JSON file ``$STAC_FAULTS`` (if set): a list of
  ``{"path": "/search", "kind": "503" | "slow" | "reset", "times": n, "delay_s": 3}``;
  the first ``times`` requests whose path starts with ``path`` fail that way (``slow``
  answers after ``delay_s``; ``reset`` starts a response and breaks the connection);
  counts of requests per rule are served at ``GET /_faults``.

Importable helpers (their signatures are the contract with other test modules)::

    write_cog(path, data, transform, crs, nodata=None, *, scale=None, offset=None, blocksize=128) -> Path
    make_item(item_id, when, bounds, crs, properties=None) -> pystac.Item
    add_cog_asset(item, key, path, data, transform, crs, *, nodata=None, scale=None, offset=None,
                  unit=None, data_type=None, title=None) -> pystac.Asset
    save_catalog(root, collections: dict[str, list[pystac.Item]], collection_assets=None) -> Path  # catalog.json
    serve(catalog_json, *, faults=None) -> ContextManager[str]  # base URL http://127.0.0.1:PORT

``make_item`` writes ``proj:code``/``proj:epsg`` and ``proj:bbox``; ``add_cog_asset``
writes the COG and the asset's ``proj:shape``, ``proj:transform`` and ``raster:bands``
(nodata, scale, offset, data_type, unit), as Earth Search and the Planetary Computer do.

Run by hand with ``CATALOG_HREF=/path/catalog.json uvicorn stac_server:app --app-dir tests``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SIG = "sig=loopback"


# --------------------------------------------------------------------------------------
# writing COGs and items
# --------------------------------------------------------------------------------------


def write_cog(
    path: str | Path,
    data: np.ndarray,
    transform: Any,
    crs: str,
    nodata: float | int | None = None,
    *,
    scale: float | None = None,
    offset: float | None = None,
    blocksize: int = 128,
) -> Path:
    """Write a 2-D (or ``(bands, h, w)``) array as a deflated COG; ``scale``/``offset`` go to
    the GeoTIFF metadata as the providers write them."""
    import rasterio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="deflate",
        blocksize=blocksize,
    ) as dst:
        dst.write(arr)
        if scale is not None or offset is not None:
            dst.scales = [scale if scale is not None else 1.0] * arr.shape[0]
            dst.offsets = [offset if offset is not None else 0.0] * arr.shape[0]
    return path


def lonlat_bounds(bounds: Sequence[float], crs: str) -> list[float]:
    from rasterio.warp import transform_bounds

    return list(transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21))


def make_item(
    item_id: str,
    when: dt.datetime | dt.date,
    bounds: Sequence[float],
    crs: str,
    properties: Mapping[str, Any] | None = None,
) -> Any:
    """A pystac Item over ``bounds`` (in ``crs``) with lon/lat geometry and bbox and the
    projection extension fields of the item (``proj:code``, ``proj:epsg``, ``proj:bbox``)."""
    import pystac
    from pyproj import CRS

    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    bb = lonlat_bounds(bounds, crs)
    geom = {
        "type": "Polygon",
        "coordinates": [[[bb[0], bb[1]], [bb[2], bb[1]], [bb[2], bb[3]], [bb[0], bb[3]], [bb[0], bb[1]]]],
    }
    epsg = CRS.from_user_input(crs).to_epsg()
    props = {"proj:code": f"EPSG:{epsg}", "proj:epsg": epsg, "proj:bbox": list(bounds), **dict(properties or {})}
    item = pystac.Item(id=item_id, geometry=geom, bbox=bb, datetime=when, properties=props)
    item.stac_extensions = [
        "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    ]
    return item


def add_cog_asset(
    item: Any,
    key: str,
    path: str | Path,
    data: np.ndarray,
    transform: Any,
    crs: str,
    *,
    nodata: float | int | None = None,
    scale: float | None = None,
    offset: float | None = None,
    unit: str | None = None,
    data_type: str | None = None,
    title: str | None = None,
) -> Any:
    """Write ``data`` as a COG at ``path`` and add it to ``item`` under ``key`` with
    ``proj:shape``, ``proj:transform`` and ``raster:bands`` (what real assets carry)."""
    import pystac

    write_cog(path, data, transform, crs, nodata, scale=scale, offset=offset)
    band: dict[str, Any] = {"data_type": data_type or np.asarray(data).dtype.name}
    if nodata is not None:
        band["nodata"] = nodata
    if scale is not None:
        band["scale"] = scale
    if offset is not None:
        band["offset"] = offset
    if unit is not None:
        band["unit"] = unit
    arr = np.asarray(data)
    extra = {
        "proj:shape": list(arr.shape[-2:]),
        "proj:transform": list(transform)[:6],
        "raster:bands": [band],
    }
    asset = pystac.Asset(
        href=str(path), media_type=pystac.MediaType.COG, roles=["data"], title=title, extra_fields=extra
    )
    item.add_asset(key, asset)
    return asset


def save_catalog(
    root: str | Path,
    collections: Mapping[str, Sequence[Any]],
    collection_assets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Save ``{collection id: items}`` as a self-contained static catalog under
    ``root/catalog`` (assets keep their absolute paths, which must lie under that folder);
    returns the path of ``catalog.json``."""
    import pystac

    root = Path(root)
    cat = pystac.Catalog(id="karstflow-test", description="loopback test catalog")
    for cid, items in collections.items():
        boxes = [list(i.bbox) for i in items if i.bbox] or [[-180.0, -90.0, 180.0, 90.0]]
        box = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
        extent = pystac.Extent(
            pystac.SpatialExtent([box]), pystac.TemporalExtent([[dt.datetime(1980, 1, 1, tzinfo=dt.UTC), None]])
        )
        coll = pystac.Collection(id=cid, description=cid, extent=extent)
        for key, asset in (collection_assets or {}).get(cid, {}).items():
            coll.add_asset(key, asset)
        cat.add_child(coll)
        for item in items:
            coll.add_item(item)
    cat.normalize_hrefs(str(root / "catalog"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog" / "catalog.json"


# --------------------------------------------------------------------------------------
# serving
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(catalog_json: str | Path, *, faults: Sequence[Mapping[str, Any]] | None = None) -> Iterator[str]:
    """Serve ``catalog_json`` with stac-fastapi-static under uvicorn on 127.0.0.1 (a
    subprocess, ended on exit); yields the base URL. ``faults`` are the scripted faults
    described in the module docstring."""
    catalog_json = Path(catalog_json)
    root = catalog_json.parent
    port = _free_port()
    env = {**os.environ, "CATALOG_HREF": str(catalog_json), "RELOAD": "false", "LOG_LEVEL": "warning"}
    if faults is not None:
        fpath = root.parent / f"faults-{port}.json"
        fpath.write_text(json.dumps(list(faults)))
        env["STAC_FAULTS"] = str(fpath)
    logfile = root.parent / f"server-{port}.log"
    with open(logfile, "w") as log:
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
                    with urllib.request.urlopen(url + "/_faults", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"STAC server did not start: {logfile.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def fault_counts(url: str) -> list[int]:
    """How many requests each scripted fault rule has matched so far."""
    with urllib.request.urlopen(url + "/_faults", timeout=5) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------------------
# the ASGI app (built lazily: importing the helpers needs no CATALOG_HREF)
# --------------------------------------------------------------------------------------


class _Loopback:
    """ASGI middleware: SAS tokens, signed folders, scripted faults."""

    def __init__(self, inner: Any, faults: list[dict[str, Any]]) -> None:
        self.inner = inner
        self.faults = faults
        self.seen = [0] * len(faults)

    async def _send_json(self, send: Any, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio

        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        path, query = scope["path"], scope.get("query_string", b"").decode()
        if path == "/_faults":
            return await self._send_json(send, self.seen)
        if path.startswith("/api/sas/v1/token/"):
            expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
            return await self._send_json(send, {"token": f"{SIG}&se=loopback", "msft:expiry": expiry})
        if "/signed/" in path and SIG not in query:
            return await self._send_json(send, {"detail": "signature required"}, 403)
        for n, rule in enumerate(self.faults):
            if path.startswith(rule["path"]) and self.seen[n] < int(rule.get("times", 1)):
                self.seen[n] += 1
                kind = rule["kind"]
                if kind == "503":
                    return await self._send_json(send, {"detail": "scripted 503"}, 503)
                if kind == "slow":
                    await asyncio.sleep(float(rule.get("delay_s", 3.0)))
                    break
                if kind == "reset":
                    head = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
                    await send({"type": "http.response.start", "status": 200, "headers": head})
                    await send({"type": "http.response.body", "body": b'{"type": "Feat', "more_body": True})
                    raise ConnectionResetError("scripted reset")
        return await self.inner(scope, receive, send)


def _build_app() -> Any:
    from stac_fastapi.static.app import app as stac_app
    from starlette.staticfiles import StaticFiles

    stac_app.mount(
        "/",
        StaticFiles(directory=os.path.dirname(os.path.abspath(os.environ["CATALOG_HREF"]))),
        name="catalog-files",
    )
    faults = json.loads(Path(os.environ["STAC_FAULTS"]).read_text()) if os.environ.get("STAC_FAULTS") else []
    return _Loopback(stac_app, faults)


_APP: Any = None


def __getattr__(name: str) -> Any:
    global _APP
    if name == "app":
        if _APP is None:
            _APP = _build_app()
        return _APP
    raise AttributeError(name)
